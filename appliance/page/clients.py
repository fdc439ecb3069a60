"""One client's history per area, by booking reference: `GET /api/clients/REF` and the page's
lookup box. Every judgement is the rules' own (appliance/core/rules.py), over the same
history the dock counts (every dock's sessions): counted in the dock's calendar days, the
course counted over the course window. Pure: no I/O.
"""
from __future__ import annotations

from datetime import datetime, tzinfo

from appliance.core import rules
from appliance.core.model import CHECKLIST_ITEMS, History, NextClient, Treatment


def client_history(ref: str, sessions: list[dict], config, now: datetime, tz: tzinfo) -> dict:
    """Per area: treatments in the course window, last date, next eligible and recommended
    dates, how far through the course, and whether the pen would be held for it today.

    `sessions` are every dock's (this dock's and its peers', as the rules count them);
    whether the pen would be held is the rules' own answer (rules.client_codes)."""
    r = config.rules
    ref = rules.canonical_client_ref(ref)
    today = now.astimezone(tz).date()
    by_area: dict[str, list[datetime]] = {}
    for s in sessions:
        if s.get("outcome") == "open" and not s.get("dock_id"):
            continue  # not yet a treatment the rules count (a peer's open one is: next room)
        by_area.setdefault(s.get("area") or "-", []).append(datetime.fromisoformat(s["started_at"]))
    areas = []
    for area, starts in sorted(by_area.items()):
        starts.sort()
        last = starts[-1]
        last_day = last.astimezone(tz).date()
        dates = rules.eligible_dates(last, config)
        in_window = [s for s in starts if rules.course_count((s,), now, config)]
        history = History(treatments=tuple(Treatment(ref, area, s) for s in starts))
        client = NextClient(ref, area, frozenset(CHECKLIST_ITEMS))
        areas.append({
            "area": area,
            "treatments_in_window": rules.course_count(starts, now, config),
            "course_max_treatments": r.course_max_treatments,
            "course_window_days": r.course_window_days,
            "treatments_total": len(starts),
            "last_date": last_day.isoformat(),
            "days_since": rules.calendar_days(last, now, tz),
            "next_eligible_date": dates.next_eligible.isoformat(),
            "recommended_date": dates.recommended.isoformat(),
            "eligible_today": "client_interval" not in rules.client_codes(client, history, config, now),
            "dates": [s.astimezone(tz).date().isoformat() for s in reversed(in_window)],
        })
    return {"client_ref": ref, "today": today.isoformat(), "areas": areas}


def course_words(area: dict) -> str:
    """'3 of 6 in the last 180 days' for the page."""
    return (f"{area['treatments_in_window']} of {area['course_max_treatments']} "
            f"in the last {area['course_window_days']} days")
