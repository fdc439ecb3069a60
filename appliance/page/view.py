"""What the page shows, as plain values: no Flask, no I/O, so it is tested on its own.

The templates only lay these out. Times are shown in the dock's time zone; codes become
the rule table's plain words (appliance/core/rules.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from appliance.core import inputs, rules
from appliance.core.inputs import FIRST_DAY, LAST_DAY  # noqa: F401  (the page's date bounds)
from appliance.record.store import LOG_KEYS

AFTERCARE_DAYS = 3  # home care matters most in the first 3 days (docs/clinical-basis.md)
REDNESS_HOURS = (3, 48)  # redness can last 3 to 48 hours (docs/clinical-basis.md)

# One date rule for the page, the CLI and the daemon (appliance/core/inputs.py).
BadParameter = inputs.BadInput
parse_day = inputs.parse_day


def contract_session(session: dict) -> dict:
    """Only the `log --json` keys the README lists (LOG_KEYS), in their order."""
    return {key: session.get(key) for key in LOG_KEYS}


def words(code: str) -> str:
    try:
        return rules.describe(code).words
    except ValueError:
        return code.replace("_", " ")


# Short labels for the log table (the full words are its tooltip and the live panel's).
SHORT_WORDS = {
    "client_interval": "Too soon after the last treatment",
    "interval_short": "Sooner than the recommended interval",
    "course_complete": "Course already complete",
    "checklist_missing": "Checklist not complete",
    "clock_unsynced": "Dock clock not confirmed",
    "over_needling": "Over-needling",
    "depth_high": "Deeper than the area's limit",
    "depth_unmeasured": "Depth not measured",
    "pen_frame_v1": "Older pen: no depth recorded",
    "cartridge_changed": "Cartridge changed mid-session",
    "pen_changed": "Pen changed mid-session",
    "forced_removal": "Forced out with the technician's key",
    "session_overrun": "Session overran",
}


@dataclass(frozen=True)
class Note:
    short: str
    full: str


def note(code: str, overridden: bool = False) -> Note:
    short = SHORT_WORDS.get(code) or words(code)
    full = words(code)
    if overridden:
        return Note(f"Overridden: {short[0].lower()}{short[1:]}", f"{full} Overridden by a manager, reason in the audit trail.")
    return Note(short, full)


def _local(text: str | None, tz: tzinfo) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).astimezone(tz)
    except (TypeError, ValueError):
        return None


def _clock(moment: datetime | None) -> str:
    return moment.strftime("%H:%M") if moment else "-"


OUTCOME_WORDS = {"completed": "Completed", "interrupted": "Interrupted", "open": "In progress"}


@dataclass(frozen=True)
class SessionRow:
    id: int
    out: str
    back: str
    client_ref: str
    area: str
    cartridge: str
    minutes: str
    strokes: str
    depth: str
    outcome: str
    outcome_code: str
    warnings: tuple[Note, ...]
    overrides: tuple[Note, ...]
    next_eligible: str
    recommended: str
    faults: tuple[Note, ...] = ()
    has_aftercare: bool = True  # False: no client was named, so no care card to give


def _depth(depth_mm: float | None, outcome: str) -> str:
    """A closed session's depth; null means the pen could not show it belongs to the session."""
    if depth_mm is None:
        return "-" if outcome == "open" else "not measured"
    return f"{depth_mm:.2f} mm"


def session_row(session: dict, tz: tzinfo, faults=()) -> SessionRow:
    """One row of the log; `faults` are the day's fault events while its pen was out."""
    seconds = session.get("needling_seconds") or 0
    outcome = session.get("outcome") or "open"
    client = session.get("client_ref")
    warnings = list(session.get("warnings") or ())
    if session.get("forced") and "forced_removal" not in warnings:
        warnings.append("forced_removal")
    outcome_words = OUTCOME_WORDS.get(outcome, outcome)
    outcome_code = outcome if outcome in OUTCOME_WORDS else "other"
    if not client and outcome != "open":
        # No client named (a technician's key, a test): the pen was out, nobody was treated.
        outcome_words, outcome_code = "No client: not a treatment", "noclient"
    return SessionRow(
        id=int(session["id"]),
        out=_clock(_local(session.get("started_at"), tz)),
        back=_clock(_local(session.get("ended_at"), tz)) if outcome != "open" else "out now",
        client_ref=client or "no client named",
        area=(session.get("area") or "-") if client else "-",
        cartridge=str(session.get("cartridge_serial") or "-"),
        minutes=f"{seconds / 60:.0f}",
        strokes=f"{session.get('strokes') or 0:,}",
        depth=_depth(session.get("max_depth_mm"), outcome),
        outcome=outcome_words,
        outcome_code=outcome_code,
        warnings=tuple(note(c) for c in warnings),
        overrides=tuple(note(c, overridden=True) for c in session.get("overrides") or ()),
        next_eligible=session.get("next_eligible_date") or "-",
        recommended=session.get("recommended_date") or "-",
        faults=tuple(Note(f"Fault at {e.clock}", e.words) for e in faults),
        has_aftercare=bool(client),
    )


def room_rows(sessions: list[dict], tz: tzinfo) -> tuple[tuple[str, SessionRow], ...]:
    """The clinic's other docks' sessions (appliance/fleet), each with its room."""
    return tuple((s.get("dock_id") or "-", session_row(s, tz)) for s in sessions)


# -- the day's timeline, drawn on the server --------------------------------------------

TIMELINE_WIDTH = 1000
TIMELINE_LEFT = 32
TIMELINE_RIGHT = 968
DAY_START_HOUR, DAY_END_HOUR = 7, 20  # a clinic's usual day; widened to fit any session
MIN_BAR = 4


@dataclass(frozen=True)
class Bar:
    x: float
    width: float
    kind: str  # completed, interrupted, open, warned
    label: str
    session_id: int = 0
    short: str = ""  # the client's reference, drawn on the bar when it fits


@dataclass(frozen=True)
class Tick:
    x: float
    label: str  # empty: a tick without a label


@dataclass(frozen=True)
class Timeline:
    width: int
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    summary: str  # the picture in words, for screen readers and the printed page
    now_x: float | None = None  # the "now" marker, on today's timeline only
    now_label: str = ""


def timeline(sessions: list[dict], day: date, tz: tzinfo, now: datetime) -> Timeline:
    """When the pen was out on `day`: one bar per session on an hour axis."""
    spans = []
    for s in sessions:
        start = _local(s.get("started_at"), tz)
        if start is None:
            continue
        end = _local(s.get("ended_at"), tz)
        if end is None:
            end = max(start, now.astimezone(tz)) if s.get("outcome") == "open" else start
        spans.append((start, end, s))
    midnight = datetime.combine(day, datetime.min.time(), tz)
    first_hour, last_hour = DAY_START_HOUR, DAY_END_HOUR
    local_now = now.astimezone(tz)
    if local_now.date() == day:  # today's axis reaches now, so the "now" marker is on it
        spans_and_now = spans + [(local_now, local_now, None)]
    else:
        spans_and_now = spans
    for start, end, _ in spans_and_now:
        first_hour = min(first_hour, max(0, int((start - midnight).total_seconds() // 3600)))
        last_hour = max(last_hour, min(24, -int(-(end - midnight).total_seconds() // 3600)))
    span_seconds = (last_hour - first_hour) * 3600
    scale = (TIMELINE_RIGHT - TIMELINE_LEFT) / span_seconds

    def x_of(moment: datetime) -> float:
        seconds = (moment - midnight).total_seconds() - first_hour * 3600
        return round(TIMELINE_LEFT + min(max(seconds, 0), span_seconds) * scale, 1)

    bars = []
    total_minutes = 0
    for start, end, s in sorted(spans, key=lambda item: item[0]):
        x0, x1 = x_of(start), x_of(end)
        width = max(MIN_BAR, x1 - x0)
        x0 = min(x0, TIMELINE_RIGHT - width)
        outcome = s.get("outcome") or "open"
        kind = outcome if outcome in ("interrupted", "open") else ("warned" if s.get("warnings") else "completed")
        total_minutes += max(0, (end - start).total_seconds()) / 60
        label = (f"{_clock(start)} to {_clock(end) if outcome != 'open' else 'now'}: "
                 f"{s.get('client_ref') or 'no client'}, {s.get('area') or '-'} ({OUTCOME_WORDS.get(outcome, outcome)})")
        ref = s.get("client_ref") or "-"
        short = ref if width >= 12 * len(ref) + 8 else ""
        bars.append(Bar(x0, round(width, 1), kind, label, int(s.get("id") or 0), short))
    step = 1 if last_hour - first_hour <= 10 else 2
    ticks = tuple(
        Tick(x_of(midnight + timedelta(hours=h)), f"{h:02d}:00" if (h - first_hour) % step == 0 else "")
        for h in range(first_hour, last_hour + 1)
    )
    if bars:
        summary = (f"The pen was out {len(bars)} time{'s' if len(bars) != 1 else ''} on {day.isoformat()}, "
                   f"{total_minutes:.0f} minutes in all.")
    else:
        summary = f"The pen was not out on {day.isoformat()}."
    now_x = x_of(local_now) if local_now.date() == day else None
    return Timeline(TIMELINE_WIDTH, tuple(bars), ticks, summary, now_x,
                    f"now {_clock(local_now)}" if now_x is not None else "")


# -- the live state ----------------------------------------------------------------------

# The dock's light -> the page's state band. Three states a therapist acts on (free, waiting
# for you, stop), plus the pen out on a session and the dock not answering.
LIGHT_TONES = {"green": "free", "amber": "waiting", "red": "stop", "blue": "out", "off": "waiting"}
TONE_WORDS = {"free": "FREE", "waiting": "WAITING for you", "stop": "STOP", "out": "IN USE",
              "down": "NOT ANSWERING"}
TONE_TITLES = {"free": "Free", "waiting": "Waiting", "stop": "STOP", "out": "In use", "down": "No answer"}
RED_CODES = frozenset({"readout_error", "cartridge_reused", "pen_fault", "counter_rollback",
                       "service_due", "storage_error", "client_interval"})


@dataclass(frozen=True)
class Reason:
    kind: str  # lock, warning, overridden
    words: str
    action: str
    shown_undocked: bool = True  # False: the "No pen in the cradle" headline says it already
    facts: str = ""  # the reason's facts in a sentence (the date, the share, the hours)
    code: str = ""

    @property
    def tone(self) -> str:
        """A lock that is a stop (red) or a wait for the therapist (amber); else its kind."""
        if self.kind != "lock":
            return self.kind
        return "stop" if self.code in RED_CODES else "wait"


@dataclass(frozen=True)
class Running:
    """The session in progress. The dock sees only the time out of the cradle while the pen
    is out; the needling itself is read from the pen when it is back, so the timer says
    the one and never claims the other."""

    out_seconds: int
    needling_limit_seconds: int
    overrun_limit_seconds: int

    @property
    def out(self) -> str:
        return out_words(self.out_seconds)

    @property
    def note(self) -> str:
        return timer_note(self.out_seconds, self.needling_limit_seconds)


def out_words(seconds: float) -> str:
    """'12 min 08 s': a duration that cannot be read as a time of day (live.js: outWords)."""
    seconds = max(0, int(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s"


def timer_note(out_seconds: float, limit_seconds: int) -> str:
    """What the running timer means, and when time out passes the needling limit (live.js: timerNote)."""
    limit = f"{limit_seconds // 60}-minute needling limit"
    if out_seconds > limit_seconds:
        return f"out longer than the {limit}: the needling is checked when the pen is back"
    return f"the needling is measured when the pen is back (the {limit})"


def who_words(status: dict) -> str:
    """Whom the pen is for, on the band: 'for BK-1042, face' (and ', out 12 min' in use)."""
    session = status.get("session")
    if not status.get("docked") and session:
        minutes = int(session.get("out_seconds") or 0) // 60
        return f"for {session.get('client_ref') or 'no client named'}, {session.get('area') or '-'}, out {minutes} min"
    nc = status.get("next_client")
    if nc and nc.get("ref"):
        return f"for {nc['ref']}, {nc.get('area') or '-'}"
    return ""


def next_date_words(status: dict, locale: str) -> str:
    """For a client held by the interval, the date to rebook on, with its weekday."""
    from appliance.core.dates import long_date

    if "client_interval" not in (status.get("locks") or ()) or not status.get("docked"):
        return ""
    for r in status.get("reasons") or ():
        found = (r.get("detail") or {}).get("next_eligible_date") if r.get("code") == "client_interval" else None
        if found:
            return f"Next eligible date: {long_date(found, locale)}"
    return ""


@dataclass(frozen=True)
class LiveState:
    tone: str  # free, waiting, stop, out, down
    headline: str
    detail: str
    reasons: tuple[Reason, ...]
    facts: tuple[tuple[str, str], ...]
    word: str = ""  # the band's big word
    title: str = ""  # the state in the tab title
    updated: str = ""  # the dock's clock, 24-hour
    running: Running | None = None
    overridable: tuple[str, ...] = ()  # locks holding the pen that a manager may override
    who: str = ""  # whom the pen is for: "for BK-1042, face"
    next_date: str = ""  # an interval hold's date to rebook on, with its weekday


def fleet_words(fleet: dict) -> str:
    """The other docks (the fleet helper's `status.fleet`), tolerant of what is missing."""
    peers = fleet.get("peers")
    if isinstance(peers, list):
        online = sum(1 for p in peers if not isinstance(p, dict) or p.get("online", True))
        text = f"{online} of {len(peers)} others online"
    else:
        text = "sharing history"
    if fleet.get("connected") is False:
        text += "; not connected"
    if fleet.get("stale"):
        text += "; history may be out of date"
    return text


def tone_of(status: dict) -> str:
    """The band's state: the dock's own light when it says, else worked out the same way."""
    light = status.get("light")
    if light in LIGHT_TONES:
        return LIGHT_TONES[light]
    if not status.get("docked"):
        return "out" if status.get("session") else "waiting"
    if not status.get("held"):
        return "free"
    return "stop" if RED_CODES.intersection(status.get("locks") or ()) else "waiting"


def _reason_of(r: dict) -> Reason:
    from appliance.core.reason_facts import sentence

    code = r.get("code", "")
    facts = r.get("detail_words") or sentence(code, r.get("detail") or {})
    return Reason(r.get("kind", "lock"), r.get("words", ""), r.get("action", ""),
                  r.get("shown_undocked", True) is not False, facts, code)


def live_state(status: dict | None, problem: str = "", locale: str = "en-GB") -> LiveState:
    """The panel on top, from `status --json` (None: the daemon did not answer).

    live.js draws the same panel from /api/status; keep the two in step.
    """
    if status is None:
        return LiveState("down", "Dock not answering",
                         "The page cannot reach the dock, so the pen's state is unknown. The log below is "
                         "still the record. If this lasts, restart the dock or call the technician.",
                         (), (), TONE_WORDS["down"], TONE_TITLES["down"])
    reasons = [_reason_of(r) for r in status.get("reasons") or ()]
    reasons += [Reason("overridden", f"{words(code)}", "Overridden by a manager for this session.", True, "", code)
                for code in status.get("overridden") or ()]
    tone = tone_of(status)
    session = status.get("session")
    running = None
    if not status.get("docked") and session:
        out = int(session.get("out_seconds") or 0)
        running = Running(out, int(session.get("needling_limit_seconds") or 30 * 60),
                          int(session.get("overrun_limit_seconds") or 90 * 60))
        headline = "Session in progress"
        detail = (f"{session.get('client_ref') or 'No client named'}, {session.get('area') or '-'}: "
                  f"out {running.out}. Put the pen back in the cradle when done.")
        reasons = [r for r in reasons if r.kind != "lock"]
    elif not status.get("docked"):
        headline, detail = "No pen in the cradle", "Put the pen in the cradle."
        reasons = [r for r in reasons if r.shown_undocked]  # the flag: daemon/status.py
    elif status.get("held"):
        locks = [r for r in reasons if r.kind == "lock"]
        if tone == "stop":
            red = [r for r in locks if r.code in RED_CODES] or locks
            headline = "Pen held: " + (red[0].words if red else "see below")
        else:
            headline = "Pen held until you: " + (locks[0].action if locks else "see below")
        detail = "The pen stays in the cradle until every lock below is cleared."
    else:
        headline = "Pen free to lift"
        detail = "All checks passed: lift the pen to start the session."
    facts = []
    nc = status.get("next_client")
    if nc:
        ticked = ", ".join(nc.get("checklist") or ()) or "checklist not ticked"
        facts.append(("Next client", f"{nc.get('ref')}, {nc.get('area')} ({ticked})"))
    else:
        facts.append(("Next client", "none named"))
    cartridge = status.get("cartridge")
    if cartridge:
        text = f"{cartridge['serial']} ({cartridge['strokes']:,} strokes)"
        if "authenticated" in cartridge:
            text += ", genuine" if cartridge.get("authenticated") else ", NOT authenticated"
        facts.append(("Cartridge", text))
    else:
        facts.append(("Cartridge", "none fitted"))
    pen = status.get("pen")
    if pen:
        volts = f"{pen.get('battery_mv', 0) / 1000:.2f} V"
        if "battery_percent" in pen:
            facts.append(("Pen battery", f"{pen['battery_percent']}% ({volts}), "
                                         f"{pen.get('sessions_left', 0)} sessions left"))
        else:
            facts.append(("Pen battery", volts))
        if "hours_to_service" in pen:
            hours = pen["hours_to_service"]
            facts.append(("Service", f"due in {hours:g} motor hours" if hours > 0 else "due now"))
    clock = (status.get("now") or "")[:16].replace("T", " ")
    trusted = status.get("clock_synced") and status.get("clock_trusted", True)
    facts.append(("Dock clock", clock + ("" if trusted else " (NOT known to be right)")))
    fleet = status.get("fleet")
    if isinstance(fleet, dict):
        facts.append(("Clinic docks", fleet_words(fleet)))
    locks = set(status.get("locks") or ())
    overridable = tuple(code for code in rules.OVERRIDABLE if code in locks)
    return LiveState(tone, headline, detail, tuple(reasons), tuple(facts), TONE_WORDS[tone], TONE_TITLES[tone],
                     (status.get("now") or "")[11:19], running, overridable,
                     who_words(status), next_date_words(status, locale))



# -- the aftercare card --------------------------------------------------------------------

@dataclass(frozen=True)
class Aftercare:
    session_id: int
    client_ref: str
    area: str
    treated_on: str  # ISO, for links
    care_until: str  # the clinic's words from here on, with the weekday
    next_eligible: str
    recommended: str
    treated_words: str = ""
    clinic_name: str = "the clinic"
    clinic_phone: str = ""


def aftercare(session: dict, tz: tzinfo, clinic=None) -> Aftercare:
    from appliance.core.dates import long_date

    locale = getattr(clinic, "locale", "en-GB")
    start = _local(session.get("started_at"), tz)
    treated = start.date() if start else None
    return Aftercare(
        session_id=int(session["id"]),
        client_ref=session.get("client_ref") or "-",
        area=session.get("area") or "-",
        treated_on=treated.isoformat() if treated else "-",
        care_until=long_date(treated + timedelta(days=AFTERCARE_DAYS - 1), locale) if treated else "-",
        next_eligible=long_date(session.get("next_eligible_date"), locale),
        recommended=long_date(session.get("recommended_date"), locale),
        treated_words=long_date(treated, locale),
        clinic_name=getattr(clinic, "name", "") or "the clinic",
        clinic_phone=getattr(clinic, "phone", ""),
    )
