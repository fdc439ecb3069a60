"""The facts behind each reason the pen is held or warned about: `detail` in `status.reasons`.

A therapist told "treated too recently" needs the date; told "battery too low", how low
and how many sessions are left. Pure: every fact comes from values the dock already has
(the reading, the decision's history, the config, now), so this is tested on its own.
Every date and count of a client is the rules' own (appliance/core/rules.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from appliance.core import rules as treatment_rules
from appliance.core.config import Config
from appliance.core.model import CHECKLIST_ITEMS, History, NextClient, PenReading

# The pen's cell (a single Li-ion): empty and full under load, for a share to show.
BATTERY_EMPTY_MV = 3300
BATTERY_FULL_MV = 4200
# What one 30-minute session takes from the cell, for "sessions left" (a rough guide).
SESSION_DRAW_MV = 100
# What the cradle's charger puts back while the pen is seated (hw/README "Charging"): about
# 1 % of the cell's range a minute, for "about N minutes to go" (a rough guide, as above).
CRADLE_CHARGE_MV_PER_MINUTE = 9


@dataclass(frozen=True)
class CartridgeSeen:
    """Where the record last saw a cartridge serial: its session and when it started."""

    session_id: int
    at: datetime
    client_ref: str = ""


@dataclass(frozen=True)
class FactInputs:
    """Everything the facts are computed from; all of it the dock already holds."""

    config: Config
    now: datetime
    reading: PenReading | None = None
    history: History = History()
    next_client: NextClient | None = None
    readout_error: str | None = None
    storage_error: str = ""
    cartridge_seen: CartridgeSeen | None = None
    out_seconds: float | None = None  # the open session's time out of the cradle
    wall_now: datetime | None = None  # the date shown; `now` is vouched time (core/vouched.py)


def battery_share(battery_mv: int) -> int:
    """0..100: where the cell sits between empty and full."""
    share = (battery_mv - BATTERY_EMPTY_MV) / (BATTERY_FULL_MV - BATTERY_EMPTY_MV)
    return round(100 * min(1.0, max(0.0, share)))


def sessions_left(battery_mv: int, min_mv: int) -> int:
    """Whole sessions before the cell falls under the dock's minimum."""
    return max(0, (battery_mv - min_mv) // SESSION_DRAW_MV)


def charge_minutes(battery_mv: int, min_mv: int) -> int:
    """Whole minutes in the cradle before the cell reaches the dock's minimum (0: there)."""
    return max(0, -(-(min_mv - battery_mv) // CRADLE_CHARGE_MV_PER_MINUTE))


def motor_hours_since_service(reading: PenReading, history: History) -> float | None:
    if history.pen is None:
        return 0.0  # a pen never seen: first sight counts as its last service
    return max(0, reading.motor_seconds - history.pen.service_motor_seconds) / 3600


def _day(moment: datetime, config: Config) -> date:
    return moment.astimezone(config.tz).date()


def client_facts(inputs: FactInputs) -> dict[str, Any]:
    """The named client's same-area history: last date, days since, next eligible date."""
    client, config = inputs.next_client, inputs.config
    if client is None:
        return {}
    same = treatment_rules.same_client_starts(client, inputs.history)
    facts: dict[str, Any] = {"client_ref": client.ref, "area": client.area}
    if not same:
        return facts
    last = max(same)
    dates = treatment_rules.eligible_dates(last, config)
    facts.update(
        last_date=_day(last, config).isoformat(),
        days_since=treatment_rules.calendar_days(last, inputs.now, config.tz),
        min_interval_days=config.rules.min_interval_days,
        next_eligible_date=dates.next_eligible.isoformat(),
        recommended_date=dates.recommended.isoformat(),
        treatments_in_window=treatment_rules.course_count(same, inputs.now, config),
        course_max_treatments=config.rules.course_max_treatments,
        course_window_days=config.rules.course_window_days,
    )
    if inputs.wall_now is not None:
        shown_days = treatment_rules.calendar_days(last, inputs.wall_now, config.tz)
        if facts["days_since"] < config.rules.min_interval_days <= shown_days:
            # The date shown says the interval is over; the time the dock can vouch for does not.
            facts.update(vouched_until=inputs.now.isoformat(timespec="minutes"),
                         shown_days_since=shown_days)
    return facts


def detail(code: str, inputs: FactInputs) -> dict[str, Any]:
    """The facts for one reason code ({} when there is nothing more to say)."""
    config, reading, history = inputs.config, inputs.reading, inputs.history
    rules = config.rules
    if code in ("client_interval", "interval_short", "course_complete"):
        return client_facts(inputs)
    if code == "client_ref_similar" and inputs.next_client is not None:
        other = treatment_rules.similar_treatment(inputs.next_client, history)
        return {} if other is None else {
            "client_ref": inputs.next_client.ref, "similar_ref": other.client_ref,
            "similar_area": other.area, "last_date": _day(other.started_at, config).isoformat()}
    if code == "checklist_missing":
        ticked = inputs.next_client.checklist if inputs.next_client else frozenset()
        return {"missing": [item for item in CHECKLIST_ITEMS if item not in ticked],
                "required": rules.checklist_required}
    if code == "readout_error":
        return {"error": inputs.readout_error or ""}
    if code == "storage_error":
        return {"error": inputs.storage_error}
    if code == "clock_unsynced":
        return {"dock_clock": inputs.now.isoformat()}
    if code == "session_overrun" and inputs.out_seconds is not None:
        return {"out_minutes": int(inputs.out_seconds // 60), "limit_minutes": rules.session_overrun_minutes}
    if reading is None:
        return {}
    if code == "battery_low":
        return {"battery_mv": reading.battery_mv, "battery_percent": battery_share(reading.battery_mv),
                "min_mv": rules.battery_min_mv,
                "sessions_left": sessions_left(reading.battery_mv, rules.battery_min_mv),
                "charge_minutes": charge_minutes(reading.battery_mv, rules.battery_min_mv)}
    if code == "service_due":
        hours = motor_hours_since_service(reading, history) or 0.0
        return {"motor_hours_since_service": round(hours, 1),
                "service_interval_hours": rules.service_interval_hours,
                "hours_over": round(hours - rules.service_interval_hours, 1)}
    if code == "pen_fault":
        return {"faults": sorted(reading.faults), "temperature_c": reading.temperature_c}
    if code == "counter_rollback" and history.pen is not None:
        return {"recorded_strokes": history.pen.last_strokes, "read_strokes": reading.strokes,
                "recorded_motor_seconds": history.pen.last_motor_seconds,
                "read_motor_seconds": reading.motor_seconds}
    if code == "cartridge_reused":
        found: dict[str, Any] = {"cartridge": reading.cartridge_serial, "cartridge_strokes": reading.cartridge_strokes}
        seen = inputs.cartridge_seen
        if seen is not None:
            found.update(seen_session=seen.session_id, seen_at=seen.at.isoformat(),
                         seen_date=_day(seen.at, config).isoformat())
        return found
    if code == "no_cartridge":
        return {"pen": reading.pen_serial}
    return {}


def pen_facts(inputs: FactInputs) -> dict[str, Any]:
    """Battery share, sessions left and hours to service, shown whether or not they hold the pen."""
    reading, rules = inputs.reading, inputs.config.rules
    if reading is None:
        return {}
    hours = motor_hours_since_service(reading, inputs.history) or 0.0
    return {
        "battery_percent": battery_share(reading.battery_mv),
        "sessions_left": sessions_left(reading.battery_mv, rules.battery_min_mv),
        "hours_to_service": round(rules.service_interval_hours - hours, 1),
    }


# The words each fact is shown with on the page, in the reason's own sentence.
def sentence(code: str, facts: dict[str, Any]) -> str:
    """One plain sentence of the facts (the page and the CLI show it under the reason)."""
    if not facts:
        return ""
    if code == "client_interval" and "vouched_until" in facts:
        return (f"The dock can vouch for the time only up to "
                f"{facts['vouched_until'].replace('T', ' ')[:16]}; {facts['client_ref']}/{facts['area']} "
                f"was treated on {facts['last_date']}, {facts['days_since']} days before that (the "
                f"dock's clock shows {facts['shown_days_since']}). The pen is free once a trusted time "
                f"source (NTS on the internet, or the dock's battery clock) confirms the time, or when a "
                f"manager overrides with a written reason.")
    if code == "client_interval" and "last_date" in facts:
        return (f"Last treated on {facts['last_date']} ({facts['days_since']} days ago); "
                f"next eligible date {facts['next_eligible_date']}.")
    if code == "interval_short" and "last_date" in facts:
        return (f"Last treated on {facts['last_date']} ({facts['days_since']} days ago); "
                f"recommended date was {facts['recommended_date']}.")
    if code == "course_complete" and "treatments_in_window" in facts:
        return (f"{facts['treatments_in_window']} treatments of this area in the last "
                f"{facts['course_window_days']} days (a course is {facts['course_max_treatments']}).")
    if code == "client_ref_similar" and "similar_ref" in facts:
        return (f"{facts['similar_ref']} was treated on {facts['last_date']} ({facts['similar_area']}); "
                f"is {facts['client_ref']} the same client?")
    if code == "battery_low" and "battery_percent" in facts:
        return (f"Battery {facts['battery_percent']}% ({facts['battery_mv'] / 1000:.2f} V), charging in the "
                f"cradle: about {facts.get('charge_minutes', 0)} minutes to go to the "
                f"{facts['min_mv'] / 1000:.2f} V minimum; the dock frees the pen by itself then.")
    if code == "service_due" and "motor_hours_since_service" in facts:
        return (f"{facts['motor_hours_since_service']} motor hours since the last service "
                f"(service every {facts['service_interval_hours']} hours).")
    if code == "pen_fault" and facts.get("faults"):
        return f"The pen reports: {', '.join(facts['faults'])} (at {facts['temperature_c']:.0f} °C)."
    if code == "cartridge_reused":
        seen = (f" It was on session {facts['seen_session']} on {facts['seen_date']}."
                if "seen_session" in facts else "")
        return f"Cartridge {facts.get('cartridge')} has {facts.get('cartridge_strokes', 0):,} strokes on it.{seen}"
    if code == "counter_rollback" and "recorded_strokes" in facts:
        return (f"Recorded {facts['recorded_strokes']:,} strokes, the pen now says "
                f"{facts['read_strokes']:,}.")
    if code == "checklist_missing" and facts.get("missing"):
        return f"Not ticked: {', '.join(facts['missing'])}."
    if code in ("readout_error", "storage_error") and facts.get("error"):
        return f"The dock says: {facts['error']}"
    if code == "session_overrun" and "out_minutes" in facts:
        return f"Out {facts['out_minutes']} minutes (a session should take under {facts['limit_minutes']})."
    return ""
