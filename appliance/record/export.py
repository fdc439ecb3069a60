"""A day's sessions as CSV: one shape for `pendock log --csv` and the page's export."""
from __future__ import annotations

import csv
import io

from appliance.record.sessions import LOG_KEYS

CSV_COLUMNS = LOG_KEYS  # the same columns, in the same order, as `pendock log --json`
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def sessions_csv(sessions: list[dict]) -> str:
    """The `log --json` keys as columns; lists as space-separated codes; no cell a spreadsheet would run."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for s in sessions:
        row = []
        for column in CSV_COLUMNS:
            value = s.get(column)
            if isinstance(value, list):
                value = " ".join(value)
            text = "" if value is None else str(value)
            if text[:1] in _FORMULA_STARTS and column == "client_ref":
                text = "'" + text  # never let a spreadsheet run a cell
            row.append(text)
        writer.writerow(row)
    return out.getvalue()
