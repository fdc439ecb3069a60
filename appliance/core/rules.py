"""The treatment rules: may this pen go onto this client now, and how did the session go.

Pure functions of plain values (appliance/core/model.py) and the config: no I/O, no clock
reads, no state. The daemon feeds them what it read and what the record says, and acts
on the answer. Each code is a stable string; DESCRIPTIONS says it in a therapist's words.
Basis of every default: docs/clinical-basis.md (repeated next to each value in
appliance/core/pendock.toml).
"""
from __future__ import annotations

import re
from dataclasses import replace
from datetime import date, datetime, timedelta, tzinfo
from typing import Iterable, NamedTuple

from appliance.core import inputs
from appliance.core.config import Config
from appliance.core.model import (
    CHECKLIST_ITEMS,
    CartridgeAuth,
    Decision,
    DockState,
    EligibleDates,
    History,
    NextClient,
    OpenSession,
    PenReading,
    SessionResult,
    Treatment,
)


class CodeText(NamedTuple):
    """A code's kind and plain words (what `describe(code)` returns)."""

    kind: str  # "lock" or "warning"
    words: str  # what is wrong, in plain words
    action: str  # what the therapist should do


# Every code, in the order of the README's rule table: the order codes are reported in.
DESCRIPTIONS: dict[str, CodeText] = {
    "no_pen": CodeText(
        "lock", "No pen is in the cradle.", "Put the pen in the cradle."),
    "readout_error": CodeText(
        "lock", "The dock cannot read the pen.",
        "Lift the pen, wipe its contacts and dock it again; if this keeps happening, call the technician."),
    "no_cartridge": CodeText(
        "lock", "No needle cartridge is fitted.", "Fit a new sterile cartridge."),
    "cartridge_reused": CodeText(
        "lock", "This cartridge has been used before.",
        "Fit a new sterile cartridge; a used cartridge can never be released."),
    "cartridge_unauthentic": CodeText(
        "lock", "The cartridge's chip did not prove that it is a genuine cartridge from a trusted "
        "maker with uses left: it may be forged, copied or used up.",
        "Take this cartridge off and fit a new sterile one from a trusted supplier; if genuine "
        "cartridges are refused too, call the technician (the dock may lack the maker's key)."),
    "cartridge_unverified": CodeText(
        "warning", "This pen cannot have its cartridge's chip checked, so the dock only knows the "
        "serial number the cartridge reports.",
        "Make sure the cartridge is new, sterile and from a trusted supplier; ask the technician "
        "about pen firmware that checks cartridges."),
    "client_missing": CodeText(
        "lock", "No client is named for the next session.",
        "Enter the client's booking reference (never a name) and the treatment area."),
    "client_ref_similar": CodeText(
        "warning", "This booking reference differs from one treated recently only by a dash, "
        "underscore, dot or leading zero: it may be the same client typed another way.",
        "Check the booking: if it is the same client, name the reference already on record so "
        "the interval rules count the earlier treatment."),
    "client_interval": CodeText(
        "lock", "This client had this area treated too recently: the skin has not had time to heal "
        "(at least 3 weeks are needed).",
        "Book the client for the next eligible date, or a manager may override with a written reason."),
    "interval_short": CodeText(
        "warning", "This area was treated sooner than the recommended interval (about a month).",
        "The session may go ahead; consider keeping to the recommended date next time."),
    "course_complete": CodeText(
        "warning", "This client has already had a full course on this area in the last six months.",
        "Check the treatment plan: after a course, treatments twice a year are usually enough."),
    "pen_fault": CodeText(
        "lock", "The pen reports a fault (motor stall, overheating or cartridge chip error).",
        "Let the pen cool and refit the cartridge; if the fault stays, call the technician."),
    "counter_rollback": CodeText(
        "lock", "The pen's counters went backwards since it was last seen: it may have been "
        "tampered with or repaired.",
        "Call the technician: only a technician can check the pen and re-baseline it."),
    "service_due": CodeText(
        "lock", "The pen is due for its service.",
        "Call the technician to service the pen and reset its service counter."),
    "battery_low": CodeText(
        "lock", "The pen's battery is too low for a full session.",
        "Leave the pen charging in the cradle: the dock frees it by itself once the battery reaches "
        "the minimum (the minutes to go are shown)."),
    "storage_error": CodeText(
        "lock", "The dock cannot write its records, so no session can start.",
        "Call the technician; the pen stays held until the records can be written."),
    "clock_unsynced": CodeText(
        "warning", "The dock's clock is not known to be right, so the dates it shows and writes may "
        "be wrong (it holds the pen when it reads earlier than the time the dock can vouch for). "
        "The interval checks count only time the dock can vouch for.",
        "Ask a manager to confirm the date and time on the dock's page (or the technician), or "
        "connect the dock to the clinic's network so a trusted time source sets it."),
    "checklist_missing": CodeText(
        "warning", "The pre-session checklist (contraindications screened, test area done) is not complete.",
        "Screen the client for contraindications, do a test area, and tick both before the session."),
    "over_needling": CodeText(
        "warning", "This session had more needling time than the recommended maximum.",
        "Note it in the client's record: over-needling can make the skin's collagen response lazy."),
    "depth_high": CodeText(
        "warning", "The needle was set deeper than the limit for this area.",
        "Check the depth before the next session: deeper needling does not improve the result."),
    "depth_unmeasured": CodeText(
        "warning", "The pen could not show that its deepest depth belongs to this session, so no depth "
        "was recorded.",
        "Note the depth used in the client's record; if it happens with a current pen, call the technician."),
    "pen_frame_v1": CodeText(
        "warning", "This pen speaks the older link (frame version 1): the dock cannot tie its depth "
        "reading to a session, so its sessions are recorded without a depth.",
        "Note the depth used in the client's record; have the pen's firmware updated at its next service."),
    "cartridge_changed": CodeText(
        "warning", "A different cartridge came back than the one the session started with.",
        "Check that every cartridge used was new and sterile, and note it in the client's record."),
    "pen_changed": CodeText(
        "warning", "A different pen came back than the one the session started with.",
        "Dock the pen that was used; this session's needling time and strokes could not be measured."),
    "forced_removal": CodeText(
        "warning", "The pen was taken out with the technician's key while it was held.",
        "The technician should record why; check this session before the next client."),
    "session_overrun": CodeText(
        "warning", "The pen has been out of the cradle longer than a session should take.",
        "Finish the session and put the pen back in the cradle."),
    "fleet_stale": CodeText(
        "warning", "This dock has not heard from the clinic's other docks for a while, so sessions "
        "given in other rooms may be missing from its history.",
        "Check the client's last treatment with the other rooms before going ahead, and ask the "
        "technician to reconnect the dock to the clinic's network."),
}
CODES: tuple[str, ...] = tuple(DESCRIPTIONS)

# Locks that mean "stop" (red): something is wrong with the pen, the cartridge or the dock,
# or this client may not be treated yet. The other locks (amber) wait for the therapist.
# The one table: the dock's light, the page and live.js (served to it by the page) use it.
STOP_LOCKS = frozenset({
    "readout_error", "cartridge_reused", "cartridge_unauthentic", "pen_fault", "counter_rollback",
    "service_due", "storage_error", "client_interval",
})

# Locks a manager may lift for one session, with a written reason: code -> role.
OVERRIDABLE: dict[str, str] = {"client_interval": "manager", "checklist_missing": "manager"}
# Cleared only by the technician verbs (rebaseline, service-reset), which change the pen record.
TECHNICIAN_ONLY = frozenset({"counter_rollback", "service_due"})
NEVER_OVERRIDABLE = frozenset({"cartridge_reused", "cartridge_unauthentic", "cartridge_unverified"})

DEPTH_STEP_MM = 0.05  # the pen reports depth in 0.05 mm units
_CLIENT_REF = inputs.NAME


class NotOverridable(ValueError):
    """A known lock that no override lifts (a rule says no, not a typing mistake)."""


def describe(code: str) -> CodeText:
    """Plain words for a code; an unknown code is a ValueError naming the known ones."""
    try:
        return DESCRIPTIONS[code]
    except KeyError:
        raise ValueError(f"unknown rule code {code!r}; known codes: {', '.join(CODES)}") from None


# --- before a session: may the pen be released? ------------------------------------------


def decide(state: DockState, history: History, config: Config, now: datetime) -> Decision:
    """Locks keep the pen held, warnings release it; an override moves its lock aside."""
    _require_aware(now, "now")
    if not state.docked:
        return Decision(locks=("no_pen",))  # nothing else can be judged without the pen
    found = _ordered(_findings(state, history, config, now))
    locks = [c for c in found if _is_lock(c, config, state)]
    warnings = [c for c in found if not _is_lock(c, config, state)]
    overridden = [c for c in locks if c in OVERRIDABLE and c in state.overrides]
    return Decision(
        locks=tuple(c for c in locks if c not in overridden),
        warnings=tuple(warnings),
        overridden=tuple(overridden),
    )


def _findings(state: DockState, history: History, config: Config, now: datetime) -> Iterable[str]:
    reading = state.reading
    if reading is None:
        yield "readout_error"  # the client, record and clock can still be judged
    else:
        yield from _cartridge_findings(reading, history)
        yield from _chip_findings(reading, state.cartridge_auth, history)
        yield from _pen_findings(reading, history, config)
    yield from _client_findings(state.next_client, history, config, now)
    if not state.storage_ok:
        yield "storage_error"
    if not state.clock_synced or state.clock_behind_record:
        yield "clock_unsynced"
    if state.fleet_stale:
        yield "fleet_stale"


def _cartridge_findings(reading: PenReading, history: History) -> Iterable[str]:
    if reading.cartridge_serial == 0:
        yield "no_cartridge"
    elif history.cartridge_used_before or reading.cartridge_strokes > 0:
        yield "cartridge_reused"  # single-use sterile cartridges


def _chip_findings(reading: PenReading, auth: CartridgeAuth | None, history: History) -> Iterable[str]:
    """What the cartridge's chip proved (hw/cartridge_auth.toml): a cartridge the dock
    cannot tell from a copy is never new."""
    if reading.cartridge_serial == 0:
        return
    if auth is None or auth.verdict == "unverified":
        yield "cartridge_unverified"
    elif not auth.authenticated or auth.cartridge_id != reading.cartridge_serial:
        yield "cartridge_unauthentic"  # incl. a pen reporting another serial than the chip proves
    elif history.cartridge_counter_floor is not None and (auth.counter or 0) >= history.cartridge_counter_floor:
        yield "cartridge_reused"  # the counter did not go down: a reset or cloned chip


def _pen_findings(reading: PenReading, history: History, config: Config) -> Iterable[str]:
    if reading.faults:
        yield "pen_fault"
    if reading.session_tag is None and reading.frame_version < 2:
        yield "pen_frame_v1"
    if reading.battery_mv < config.rules.battery_min_mv:
        yield "battery_low"
    pen = history.pen
    if pen is None:
        return  # a pen never seen cannot roll back or be due
    if pen.serial != reading.pen_serial:
        raise ValueError(f"history is for pen {pen.serial}, but pen {reading.pen_serial} is docked")
    if reading.strokes < pen.last_strokes or reading.motor_seconds < pen.last_motor_seconds:
        yield "counter_rollback"  # tamper or a swapped board
    if reading.motor_seconds - pen.service_motor_seconds > config.rules.service_interval_hours * 3600:
        yield "service_due"


def _client_findings(client: NextClient | None, history: History, config: Config,
                     now: datetime) -> Iterable[str]:
    if client is None:
        yield "client_missing"
        return
    rules = config.rules
    # Earlier sessions of the same client AND area; a date in the future (the clock went
    # back) counts as "just now", which holds the pen rather than releasing it.
    same = same_client_starts(client, history)
    if same:
        # Counted in calendar days of the dock's time zone, so the pen frees on the morning
        # of the "next eligible date" the page shows, not at the hour of the last session.
        last = max(same)
        days = calendar_days(last, now, config.tz)
        if last > now or days < rules.min_interval_days:
            yield "client_interval"
        elif days < rules.recommended_interval_days:
            yield "interval_short"
    if course_count(same, now, config) >= rules.course_max_treatments:
        yield "course_complete"  # this session would be one more than a full course
    if similar_treatment(client, history) is not None:
        yield "client_ref_similar"
    if not set(CHECKLIST_ITEMS) <= client.checklist:
        yield "checklist_missing"


def client_codes(client: NextClient, history: History, config: Config, now: datetime) -> tuple[str, ...]:
    """What the rules find for this client and area alone (the interval, the course, the
    checklist): the page's client lookup asks this, so it cannot disagree with the dock."""
    _require_aware(now, "now")
    return _ordered(_client_findings(client, history, config, now))


def course_count(starts: Iterable[datetime], now: datetime, config: Config) -> int:
    """How many of these treatments fall in the course window before `now`."""
    window = timedelta(days=config.rules.course_window_days)
    return sum(1 for started in starts if now - started <= window)


_SEPARATORS = re.compile(r"[-_.]")
_LEADING_ZEROS = re.compile(r"(?<![0-9])0+(?=[0-9])")


def ref_likeness(ref: str) -> str:
    """A reference without its separators (-_.) and the leading zeros of its digits:
    `BK-01042`, `bk_1042` and `BK1042` share one, the likeness client_ref_similar compares."""
    return _SEPARATORS.sub("", _LEADING_ZEROS.sub("", canonical_client_ref(ref)))


def similar_treatment(client: NextClient, history: History) -> Treatment | None:
    """The latest treatment of ANOTHER reference with this one's likeness, if any."""
    ref = canonical_client_ref(client.ref)
    likeness = ref_likeness(ref)
    found = [t for t in history.similar_treatments
             if canonical_client_ref(t.client_ref) != ref and ref_likeness(t.client_ref) == likeness]
    return max(found, key=lambda t: t.started_at) if found else None


def calendar_days(earlier: datetime, later: datetime, tz: tzinfo) -> int:
    """Whole calendar days from one moment to another in the clinic's zone: what the
    interval rule counts (1 Nov 20:00 to 22 Nov 08:00 is 21 days)."""
    return (later.astimezone(tz).date() - earlier.astimezone(tz).date()).days


def within_min_interval(one: datetime, other: datetime, min_days: int, tz: tzinfo) -> bool:
    """Two sessions of one client and area closer than the minimum interval, in calendar
    days of the clinic's zone: the interval rule's own count, for the fleet's conflict check."""
    first, second = sorted((one, other))
    return calendar_days(first, second, tz) < min_days


def same_client_starts(client: NextClient, history: History) -> list[datetime]:
    """When this client had this area treated, compared in canonical form only."""
    ref = canonical_client_ref(client.ref)
    return [t.started_at for t in history.treatments
            if canonical_client_ref(t.client_ref) == ref and t.area == client.area]


def _is_lock(code: str, config: Config, state: DockState | None = None) -> bool:
    if code == "clock_unsynced":
        # A clock behind the record would date this session before ones already given.
        return state is not None and state.clock_behind_record
    if code == "checklist_missing":
        return config.rules.checklist_required
    if code == "fleet_stale":
        return config.fleet.stale_is_lock
    if code == "cartridge_unverified":
        return config.cartridges.require_authentication
    return describe(code).kind == "lock"


# --- during and after a session --------------------------------------------------------


def live_warnings(session: OpenSession, out_seconds: float, config: Config) -> tuple[str, ...]:
    """Warnings while the pen is out of the cradle."""
    if out_seconds > config.rules.session_overrun_minutes * 60:
        return ("session_overrun",)
    return ()


def close_warnings(session: OpenSession, reading: PenReading | None, config: Config,
                   out_seconds: float) -> tuple[str, ...]:
    """Everything to note on the closed session, its start warnings included."""
    found = list(session.warnings)
    if reading is not None and reading.pen_serial != session.pen_serial:
        found.append("pen_changed")  # another pen's counters say nothing about this session
    elif reading is not None:
        if _needling_seconds(session, reading) > config.rules.max_needling_minutes * 60:
            found.append("over_needling")
        if not depth_measured(session, reading):
            found.append("depth_unmeasured")  # a stale register proves nothing, high or low
        elif _depth_steps(reading.max_depth_mm) > _depth_steps(area_depth_limit(session.area, config)):
            found.append("depth_high")
        if reading.cartridge_serial != session.cartridge_serial:
            found.append("cartridge_changed")
        if reading.strokes < session.strokes_start or reading.motor_seconds < session.motor_seconds_start:
            found.append("counter_rollback")
    if session.forced:
        found.append("forced_removal")
    found.extend(live_warnings(session, out_seconds, config))
    return _ordered(found)


def session_result(session: OpenSession, reading: PenReading | None, config: Config,
                   ended_at: datetime, out_seconds: float) -> SessionResult:
    """What the closed session adds up to: counter deltas, never negative."""
    same_pen = reading if reading is not None and reading.pen_serial == session.pen_serial else None
    return SessionResult(
        ended_at=ended_at,
        needling_seconds=_needling_seconds(session, same_pen) if same_pen else 0,
        strokes=max(0, same_pen.strokes - session.strokes_start) if same_pen else 0,
        max_depth_mm=same_pen.max_depth_mm if same_pen and depth_measured(session, same_pen) else None,
        warnings=close_warnings(session, reading, config, out_seconds),
    )


def depth_measured(session: OpenSession, reading: PenReading) -> bool:
    """The close reading's depth belongs to this session: the pen reports the tag the dock
    zeroed its session registers under when the session opened (frame v2)."""
    return session.session_tag is not None and reading.session_tag == session.session_tag


def _needling_seconds(session: OpenSession, reading: PenReading) -> int:
    return max(0, reading.motor_seconds - session.motor_seconds_start)


def area_depth_limit(area: str, config: Config) -> float:
    """The area's deepest allowed depth; an area no longer configured gets the shallowest."""
    depths = config.areas.max_depth_mm
    return depths.get(area, min(depths.values()))


def _depth_steps(depth_mm: float) -> int:
    """Depth in the pen's own 0.05 mm units, so float noise cannot flip a comparison."""
    return round(depth_mm / DEPTH_STEP_MM)


def eligible_dates(started_at: datetime, config: Config) -> EligibleDates:
    """The client's next eligible and recommended dates, in the dock's time zone."""
    _require_aware(started_at, "started_at")
    day = started_at.astimezone(config.tz).date()
    return EligibleDates(
        next_eligible=day + timedelta(days=config.rules.min_interval_days),
        recommended=day + timedelta(days=config.rules.recommended_interval_days),
    )


def session_outcome(session: OpenSession, reading: PenReading) -> str:
    """How a session ends when a pen is docked: "completed" when it is the pen that left.
    Another pen in the cradle: the one that left cannot be read, so its session ends as
    "interrupted" (pen_changed), and the pen now docked is judged on its own."""
    return "completed" if reading.pen_serial == session.pen_serial else "interrupted"


def with_clock_warning(result: SessionResult, clock_synced: bool) -> SessionResult:
    """A session closed while the wall clock is not trusted says so on the record: its
    dates rest on that clock."""
    if clock_synced or "clock_unsynced" in result.warnings:
        return result
    return replace(result, warnings=result.warnings + ("clock_unsynced",))


def session_dates(session: OpenSession, config: Config) -> EligibleDates | None:
    """The dates a closed session gives its client; None when no client was named (a
    forced removal): there is no client to date."""
    if not session.client_ref:
        return None
    return eligible_dates(session.started_at, config)


class PurgeRefused(ValueError):
    """Retention may not delete what was asked; the message says why and what to do."""


def purge_cutoff(today: date, asked: date | None, config: Config) -> date:
    """What retention may delete: finished sessions of days before the returned date.

    `asked` is the technician's --before day, else the config's retention_days apply. No
    day the interval and course rules still count (Rules.history_days) may be purged.
    """
    if asked is not None:
        before = asked
    elif config.store.retention_days:
        before = today - timedelta(days=config.store.retention_days)
    else:
        raise PurgeRefused("retention_days is 0 (keep forever) in the config: give --before "
                           "YYYY-MM-DD to purge")
    keep_from = today - timedelta(days=config.rules.history_days)
    if before > keep_from:
        raise PurgeRefused(f"sessions since {keep_from.isoformat()} are needed by the interval "
                           f"and course rules and cannot be purged")
    return before


# --- what the therapist types ----------------------------------------------------------


def canonical_client_ref(ref: str) -> str:
    """The one spelling of a booking reference the record keeps and the rules compare:
    upper case, so `bk-1042`, `Bk-1042` and `BK-1042` are one client (README, "Booking
    references"). References are ASCII (inputs.NAME), so upper() cannot change a length."""
    return (ref or "").upper()


def validate_client_ref(ref: str) -> str:
    """A booking reference, never a name: refuse anything that could hold one. Returns
    its canonical form (canonical_client_ref), which every door passes on."""
    if not _CLIENT_REF.fullmatch(ref or ""):
        if not ref:
            why = "it is empty"
        elif len(ref) > 32:
            why = f"it is {len(ref)} characters long"
        elif any(ch.isspace() for ch in ref):
            why = "it contains a space (client names are never recorded)"
        else:
            bad = "".join(sorted({ch for ch in ref if not _CLIENT_REF.fullmatch(ch)}))
            why = f"it contains {bad!r}"
        raise ValueError(f"client reference {ref!r} refused: {why}. Use the booking code "
                         f"(never a name): {inputs.NAME_RULE}")
    return canonical_client_ref(ref)


def validate_area(area: str | None, config: Config) -> str:
    """A configured treatment area; None means the default area."""
    if area is None:
        return config.areas.default_area
    name = area.strip().lower()
    if name not in config.areas.max_depth_mm:
        raise ValueError(f"unknown treatment area {area!r}; the areas are: "
                         f"{', '.join(config.areas.max_depth_mm)}")
    return name


def parse_checklist(text: str) -> frozenset[str]:
    """'screened,test-area' -> the ticked items; an unknown item is refused."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    unknown = [item for item in items if item not in CHECKLIST_ITEMS]
    if unknown:
        raise ValueError(f"unknown checklist item {unknown[0]!r}; the items are: "
                         f"{', '.join(CHECKLIST_ITEMS)} (comma-separated)")
    return frozenset(items)


def validate_override(code: str) -> str:
    """The role that may override `code`; a ValueError says why it cannot be overridden."""
    describe(code)
    if code in OVERRIDABLE:
        return OVERRIDABLE[code]
    if code in NEVER_OVERRIDABLE:
        raise NotOverridable(f"{code} can never be overridden: {describe(code).action}")
    if code in TECHNICIAN_ONLY:
        verb = "rebaseline" if code == "counter_rollback" else "service-reset"
        raise NotOverridable(f"{code} cannot be overridden; a technician clears it with "
                         f"'pendock {verb} --reason TEXT'")
    raise ValueError(f"{code} cannot be overridden; the overridable codes are: {', '.join(OVERRIDABLE)}")


# --- helpers -----------------------------------------------------------------------------


def _ordered(codes: Iterable[str]) -> tuple[str, ...]:
    """No duplicates, in DESCRIPTIONS order (codes from elsewhere keep theirs, at the end)."""
    unique = list(dict.fromkeys(codes))
    rank = {code: i for i, code in enumerate(CODES)}
    return tuple(sorted(unique, key=lambda c: rank.get(c, len(CODES))))


def _require_aware(moment: datetime, name: str) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {moment!r}")
