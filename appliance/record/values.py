"""How values are written as SQLite text: aware times as ISO 8601, lists as JSON.

Times keep their UTC offset so a row read back is the instant it was written. What the
record writes as a fact's time is to the whole second (`to_second`): the order of facts is
their ids' and durations come from the monotonic clock, so microseconds were only bytes,
seven a time, on every audit entry and session kept for years (P6).
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime


def iso(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone: pass an aware datetime")
    return moment.isoformat()


def to_second(moment: datetime) -> datetime:
    """A fact's time as the record keeps it: to the whole second (the second it began in)."""
    return moment.replace(microsecond=0)


def json_list(values: Iterable[str]) -> str:
    """A list of codes as compact JSON text (no spaces: P6)."""
    return json.dumps(sorted(values) if isinstance(values, (set, frozenset)) else list(values),
                      separators=(",", ":"))


def merged(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Both lists, in order, each code once."""
    return list(dict.fromkeys([*first, *second]))
