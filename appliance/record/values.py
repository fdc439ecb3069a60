"""How values are written as SQLite text: aware times as ISO 8601, lists as JSON.

Times keep their UTC offset so a row read back is the instant it was written.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime


def iso(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone: pass an aware datetime")
    return moment.isoformat()


def json_list(values: Iterable[str]) -> str:
    return json.dumps(sorted(values) if isinstance(values, (set, frozenset)) else list(values))


def merged(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Both lists, in order, each code once."""
    return list(dict.fromkeys([*first, *second]))
