"""The manager's export (`/export.csv?from=&to=`): the sessions of a range of days, every
room of the clinic, as a spreadsheet reads them. Pure: sessions and audit entries in, text out.

The dialect (README, "The manager's export"): RFC 4180 CSV, comma-separated, every field
quoted only when needed, CRLF line ends, UTF-8 with a byte-order mark (so Excel shows "ü"),
a header row; numbers with a "." decimal point and no thousands separator; times in the
dock's zone as "YYYY-MM-DD HH:MM:SS" (which spreadsheets read as date-times) with the zone's
offset beside them. A German Excel opens it through Data > From Text (comma, "." decimal).
"""
from __future__ import annotations

import csv
import io
from datetime import datetime, timezone, tzinfo

from typing import Callable

from appliance.page import view
from appliance.page.i18n import N_

MAX_DAYS = 366  # a year's export at most per file
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _same(text: str) -> str:
    return text


def _local(text: str | None, tz: tzinfo) -> datetime | None:
    try:
        return datetime.fromisoformat(text).astimezone(tz) if text else None
    except (TypeError, ValueError):
        return None


def _offset(moment: datetime) -> str:
    text = moment.strftime("%z")  # +0100
    return f"{text[:3]}:{text[3:]}" if text else ""


def _who(actor: str) -> str:
    return actor[len("page user "):] if actor.startswith("page user ") else actor


def therapist_of(session: dict, entries: list) -> str:
    """Who named this session's client: the last `next_client` for its reference before it began."""
    start = _local(session.get("started_at"), timezone.utc)
    ref = session.get("client_ref")
    if not start or not ref:
        return ""
    named = [e for e in entries if e.action == "next_client" and (e.detail or {}).get("ref") == ref and e.at <= start]
    return _who(named[-1].actor) if named else ""


def overrides_of(session: dict, entries: list, tr: Callable[[str], str] = _same) -> str:
    """Each of the session's overrides with the manager who gave it and the written reason."""
    start = _local(session.get("started_at"), timezone.utc)
    found = []
    for code in session.get("overrides") or ():
        given = [e for e in entries if e.action == "override" and (e.detail or {}).get("code") == code
                 and (e.detail or {}).get("client") == session.get("client_ref") and start and e.at <= start]
        if given:
            found.append(tr("{what} - by {who}: {reason}").format(
                what=tr(view.words(code)), who=_who(given[-1].actor), reason=(given[-1].detail or {}).get("reason", "")))
        else:
            found.append(tr("{what} - by a manager (not in this dock's audit trail)").format(what=tr(view.words(code))))
    return " | ".join(found)


def _safe(text: str) -> str:
    return "'" + text if text[:1] in _FORMULA_STARTS else text  # a spreadsheet never runs a cell


# The header row in the clinic's language (English: the column names above, as documented).
HEADER_WORDS = (
    N_("room"), N_("session"), N_("started"), N_("ended"), N_("utc_offset"), N_("client_ref"), N_("area"),
    N_("therapist"), N_("needling_minutes"), N_("strokes"), N_("max_depth_mm"), N_("outcome"),
    N_("warning_codes"), N_("warnings"), N_("override_codes"), N_("overrides"), N_("cartridge_serial"),
    N_("pen_serial"), N_("next_eligible_date"), N_("recommended_date"),
)


def manager_csv(sessions: list[dict], entries: list, tz: tzinfo, here: str, tr: Callable[[str], str] = _same) -> str:
    """`sessions` oldest first, each with `dock_id` (None: this dock, named `here`);
    `entries`: this dock's audit entries of the range (therapists and overrides)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([tr(name) for name in HEADER_WORDS])
    for s in sessions:
        start, end = _local(s.get("started_at"), tz), _local(s.get("ended_at"), tz)
        own = not s.get("dock_id")
        warnings = list(s.get("warnings") or ())
        depth = s.get("max_depth_mm")
        writer.writerow([
            s.get("dock_id") or here, s.get("id"),
            start.strftime("%Y-%m-%d %H:%M:%S") if start else "", end.strftime("%Y-%m-%d %H:%M:%S") if end else "",
            _offset(start) if start else "",
            _safe(s.get("client_ref") or ""), s.get("area") or "",
            _safe(therapist_of(s, entries)) if own else "",
            f"{(s.get('needling_seconds') or 0) / 60:.1f}", s.get("strokes") or 0,
            "" if depth is None else f"{depth:.2f}", s.get("outcome") or "",
            " ".join(warnings), "; ".join(tr(view.words(c)) for c in warnings),
            " ".join(s.get("overrides") or ()), _safe(overrides_of(s, entries, tr)) if own else
            "; ".join(tr(view.words(c)) for c in s.get("overrides") or ()),
            s.get("cartridge_serial") or "", s.get("pen_serial") or "",
            s.get("next_eligible_date") or "", s.get("recommended_date") or "",
        ])
    return out.getvalue()
