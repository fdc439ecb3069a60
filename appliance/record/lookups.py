"""Read-only look-ups the page and the status facts need beyond the rules' own history.

Each reads a handful of rows through an index (or, for the audit trail, a binary search
over its ids), so five years of records cost what one day costs.
"""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta, tzinfo

from appliance.core.model import AuditEntry
from appliance.core.rules import canonical_client_ref
from appliance.core.reason_facts import CartridgeSeen

# The audit trail is in id order, which is time order unless the clock was stepped. A
# day's entries are found by bisecting the ids on time, then this many ids either side are
# read too and cut exactly by time, so a clock step back of a few entries loses none.
AUDIT_MARGIN = 200


def cartridge_seen(store, serial: int) -> CartridgeSeen | None:
    """The newest session this cartridge was on (index idx_sessions_cartridge)."""
    if not serial:
        return None
    rows = store._read("SELECT id, started_at, client_ref FROM sessions WHERE cartridge_serial = ? "
                       "ORDER BY id DESC LIMIT 1", (serial,))
    if rows:
        return CartridgeSeen(rows[0][0], datetime.fromisoformat(rows[0][1]), rows[0][2] or "")
    first = store._read("SELECT first_used FROM spent_cartridges WHERE serial = ?", (serial,))
    if first and first[0][0]:
        return CartridgeSeen(0, datetime.fromisoformat(first[0][0]))
    return None


def client_sessions(store, ref: str) -> list[dict]:
    """Every finished or open session of one client, newest first, on this dock and on
    the clinic's other docks (`dock_id` set; what the rules count too), in canonical
    spelling (indexes idx_sessions_client, idx_fleet_sessions_client)."""
    ref = canonical_client_ref(ref)
    rows = store._read(
        "SELECT id, area, started_at, outcome, needling_seconds, warnings, overrides, "
        "next_eligible_date, recommended_date, NULL FROM sessions WHERE client_ref = ? "
        "UNION ALL SELECT session, area, started_at, outcome, needling_seconds, warnings, "
        "overrides, NULL, NULL, dock_id FROM fleet_sessions WHERE client_ref = ? "
        "ORDER BY 3 DESC, 1 DESC LIMIT 1000", (ref, ref))
    keys = ("id", "area", "started_at", "outcome", "needling_seconds", "warnings", "overrides",
            "next_eligible_date", "recommended_date", "dock_id")
    found = []
    for row in rows:
        item = dict(zip(keys, row, strict=True))
        for key in ("warnings", "overrides"):
            item[key] = json.loads(item[key]) if item[key] else []
        found.append(item)
    return sorted(found, key=lambda s: (datetime.fromisoformat(s["started_at"]), s["id"]), reverse=True)


def _at_of(store, entry_id: int) -> datetime | None:
    rows = store._read("SELECT at FROM audit WHERE id = ?", (entry_id,))
    if not rows:
        return None
    try:
        return datetime.fromisoformat(rows[0][0])
    except (TypeError, ValueError):
        return None


def _first_id_at_or_after(store, moment: datetime, low: int, high: int) -> int:
    """Bisect ids low..high+1 for the first entry at or after `moment` (ids in time order)."""
    while low <= high:
        middle = (low + high) // 2
        at = _at_of(store, middle)
        if at is not None and at < moment:
            low = middle + 1
        else:
            high = middle - 1
    return low


def audit_on(store, day: date, tz: tzinfo) -> list[AuditEntry]:
    """Every audit entry of one dock-local day, oldest first (by time, then by id): none
    is cut (the page and /api/events page through them, appliance/page/history.py)."""
    start = datetime.combine(day, time.min, tz)
    end = start + timedelta(days=1)
    bounds = store._read("SELECT min(id), max(id) FROM audit")
    low, high = bounds[0] if bounds else (None, None)
    if low is None:
        return []
    first = _first_id_at_or_after(store, start, low, high)
    last = _first_id_at_or_after(store, end, first, high)
    rows = store._read(
        "SELECT id, at, actor, action, detail, clock_synced FROM audit WHERE id BETWEEN ? AND ? ORDER BY id",
        (max(low, first - AUDIT_MARGIN), min(high, last + AUDIT_MARGIN)))
    found = []
    for entry_id, at_text, actor, action, detail_text, synced in rows:
        try:
            at = datetime.fromisoformat(at_text)
        except (TypeError, ValueError):
            continue
        if not start <= at < end:
            continue
        try:
            detail = json.loads(detail_text)
        except (TypeError, ValueError):
            detail = {}
        found.append(AuditEntry(id=entry_id, at=at, actor=actor, action=action,
                                detail=detail if isinstance(detail, dict) else {}, clock_synced=bool(synced)))
    return sorted(found, key=lambda e: (e.at, e.id))
