"""One client's history per area, by booking reference: `GET /api/clients/REF` and the page's
lookup box. Dates follow the same rules as the dock (appliance/core/rules.py): counted in
the dock's calendar days, the course counted over the course window. Pure: no I/O.
"""
from __future__ import annotations

from datetime import datetime, timedelta, tzinfo

from appliance.core import rules


def client_history(ref: str, sessions: list[dict], config, now: datetime, tz: tzinfo) -> dict:
    """Per area: treatments in the course window, last date, next eligible and recommended
    dates, how far through the course, and whether the pen would be held for it today."""
    r = config.rules
    window = timedelta(days=r.course_window_days)
    today = now.astimezone(tz).date()
    by_area: dict[str, list[dict]] = {}
    for s in sessions:
        if s.get("outcome") == "open":
            continue  # not yet a treatment the rules count
        by_area.setdefault(s.get("area") or "-", []).append(s)
    areas = []
    for area, found in sorted(by_area.items()):
        starts = sorted(datetime.fromisoformat(s["started_at"]) for s in found)
        last = starts[-1]
        last_day = last.astimezone(tz).date()
        dates = rules.eligible_dates(last, config)
        in_window = [s for s in starts if now - s <= window]
        days = (today - last_day).days
        areas.append({
            "area": area,
            "treatments_in_window": len(in_window),
            "course_max_treatments": r.course_max_treatments,
            "course_window_days": r.course_window_days,
            "treatments_total": len(starts),
            "last_date": last_day.isoformat(),
            "days_since": days,
            "next_eligible_date": dates.next_eligible.isoformat(),
            "recommended_date": dates.recommended.isoformat(),
            "eligible_today": not (last > now or days < r.min_interval_days),
            "dates": [s.astimezone(tz).date().isoformat() for s in reversed(in_window)],
        })
    return {"client_ref": ref, "today": today.isoformat(), "areas": areas}


def course_words(area: dict) -> str:
    """'3 of 6 in the last 180 days' for the page."""
    return (f"{area['treatments_in_window']} of {area['course_max_treatments']} "
            f"in the last {area['course_window_days']} days")
