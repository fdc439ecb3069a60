"""What the page shows, as plain values: no Flask, no I/O, so it is tested on its own.

The templates only lay these out. Times are shown in the dock's time zone; codes become
the rule table's plain words (appliance/core/rules.py).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo

from appliance.core import inputs, rules
from appliance.core.inputs import FIRST_DAY, LAST_DAY  # noqa: F401  (the page's date bounds)
from appliance.page.i18n import N_, Translator
from appliance.record.store import LOG_KEYS

AFTERCARE_DAYS = 3  # home care matters most in the first 3 days (docs/clinical-basis.md)
REDNESS_HOURS = (3, 48)  # redness can last 3 to 48 hours (docs/clinical-basis.md)

# One date rule for the page, the CLI and the daemon (appliance/core/inputs.py).
BadParameter = inputs.BadInput
parse_day = inputs.parse_day


def _same(text: str) -> str:
    """The translator when none is given: English, the catalogues' source language."""
    return text


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
    "client_interval": N_("Too soon after the last treatment"),
    "interval_short": N_("Sooner than the recommended interval"),
    "course_complete": N_("Course already complete"),
    "checklist_missing": N_("Checklist not complete"),
    "clock_unsynced": N_("Dock clock not confirmed"),
    "over_needling": N_("Over-needling"),
    "depth_high": N_("Deeper than the area's limit"),
    "depth_unmeasured": N_("Depth not measured"),
    "pen_frame_v1": N_("Older pen: no depth recorded"),
    "cartridge_changed": N_("Cartridge changed mid-session"),
    "pen_changed": N_("Pen changed mid-session"),
    "forced_removal": N_("Forced out with the technician's key"),
    "session_overrun": N_("Session overran"),
}


@dataclass(frozen=True)
class Note:
    short: str
    full: str


def note(code: str, overridden: bool = False, tr: Translator = _same) -> Note:
    short = tr(SHORT_WORDS.get(code) or words(code))
    full = tr(words(code))
    if overridden:
        label = tr("Overridden: {what}")
        if label == "Overridden: {what}":  # English: "Overridden: too soon ..." (German keeps its nouns)
            short = short[0].lower() + short[1:]
        return Note(label.format(what=short), tr("{full} Overridden by a manager, reason in the "
                                                                   "audit trail.").format(full=full))
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


OUTCOME_WORDS = {"completed": N_("Completed"), "interrupted": N_("Interrupted"), "open": N_("In progress")}


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
        return "-" if outcome == "open" else N_("not measured")
    return f"{depth_mm:.2f} mm"


def session_row(session: dict, tz: tzinfo, faults=(), tr: Translator = _same, locale: str = "en-GB") -> SessionRow:
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
        outcome_words, outcome_code = N_("No client: not a treatment"), "noclient"
    return SessionRow(
        id=int(session["id"]),
        out=_clock(_local(session.get("started_at"), tz)),
        back=_clock(_local(session.get("ended_at"), tz)) if outcome != "open" else tr("out now"),
        client_ref=client or tr("no client named"),
        area=tr(session.get("area") or "-") if client else "-",
        cartridge=str(session.get("cartridge_serial") or "-"),
        minutes=f"{seconds / 60:.0f}",
        strokes=number(session.get("strokes") or 0, locale),
        depth=tr(_depth(session.get("max_depth_mm"), outcome)) if session.get("max_depth_mm") is None
        else f"{number(session['max_depth_mm'], locale, 2)} mm",
        outcome=tr(outcome_words),
        outcome_code=outcome_code,
        warnings=tuple(note(c, tr=tr) for c in warnings),
        overrides=tuple(note(c, overridden=True, tr=tr) for c in session.get("overrides") or ()),
        next_eligible=session.get("next_eligible_date") or "-",
        recommended=session.get("recommended_date") or "-",
        faults=tuple(Note(tr("Fault at {time}").format(time=e.clock), e.words) for e in faults),
        has_aftercare=bool(client),
    )


def room_rows(sessions: list[dict], tz: tzinfo, tr: Translator = _same,
              locale: str = "en-GB") -> tuple[tuple[str, SessionRow], ...]:
    """The clinic's other docks' sessions (appliance/fleet), each with its room."""
    return tuple((s.get("dock_id") or "-", session_row(s, tz, tr=tr, locale=locale)) for s in sessions)


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


def timeline(sessions: list[dict], day: date, tz: tzinfo, now: datetime, tr: Translator = _same,
             day_words: str = "") -> Timeline:
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
        label = tr("{start} to {end}: {ref}, {area} ({outcome})").format(
            start=_clock(start), end=_clock(end) if outcome != "open" else tr("now"),
            ref=s.get("client_ref") or tr("no client named"), area=tr(s.get("area") or "-"),
            outcome=tr(OUTCOME_WORDS.get(outcome, outcome)))
        ref = s.get("client_ref") or "-"
        short = ref if width >= 12 * len(ref) + 8 else ""
        bars.append(Bar(x0, round(width, 1), kind, label, int(s.get("id") or 0), short))
    step = 1 if last_hour - first_hour <= 10 else 2
    ticks = tuple(
        Tick(x_of(midnight + timedelta(hours=h)), f"{h:02d}:00" if (h - first_hour) % step == 0 else "")
        for h in range(first_hour, last_hour + 1)
    )
    on = day_words or day.isoformat()
    if len(bars) == 1:
        summary = tr("The pen was out once on {day}, {minutes} minutes in all.").format(day=on, minutes=f"{total_minutes:.0f}")
    elif bars:
        summary = tr("The pen was out {count} times on {day}, {minutes} minutes in all.").format(
            count=len(bars), day=on, minutes=f"{total_minutes:.0f}")
    else:
        summary = tr("The pen was not out on {day}.").format(day=on)
    now_x = x_of(local_now) if local_now.date() == day else None
    return Timeline(TIMELINE_WIDTH, tuple(bars), ticks, summary, now_x,
                    tr("now {time}").format(time=_clock(local_now)) if now_x is not None else "")


# -- the live state ----------------------------------------------------------------------

# The dock's light -> the page's state band. Three states a therapist acts on (free, waiting
# for you, stop), plus the pen out on a session and the dock not answering.
LIGHT_TONES = {"green": "free", "amber": "waiting", "red": "stop", "blue": "out", "off": "waiting"}
TONE_WORDS = {"free": N_("FREE"), "waiting": N_("WAITING for you"), "stop": N_("STOP"), "out": N_("IN USE"),
              "down": N_("NOT ANSWERING")}
TONE_TITLES = {"free": N_("Free"), "waiting": N_("Waiting"), "stop": N_("STOP"), "out": N_("In use"),
               "down": N_("No answer")}
CHECKLIST_WORDS = {"screened": N_("Contraindications screened"), "test-area": N_("Test area done")}
RED_CODES = rules.STOP_LOCKS  # the one stop table, also the dock's light and live.js's (data-rules)


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


def out_words(seconds: float, tr: Translator = _same) -> str:
    """'12 min 08 s': a duration that cannot be read as a time of day (live.js: outWords)."""
    seconds = max(0, int(seconds))
    return tr("{minutes} min {seconds} s").format(minutes=seconds // 60, seconds=f"{seconds % 60:02d}")


def timer_note(out_seconds: float, limit_seconds: int, tr: Translator = _same) -> str:
    """What the running timer means, and when time out passes the needling limit (live.js: timerNote)."""
    if out_seconds > limit_seconds:
        text = tr("out longer than the {limit}-minute needling limit: the needling is checked when the pen is back")
    else:
        text = tr("the needling is measured when the pen is back (the {limit}-minute needling limit)")
    return text.format(limit=limit_seconds // 60)


def who_words(status: dict, tr: Translator = _same) -> str:
    """Whom the pen is for, on the band: 'for BK-1042, face' (and ', out 12 min' in use)."""
    session = status.get("session")
    if not status.get("docked") and session:
        minutes = int(session.get("out_seconds") or 0) // 60
        who = tr("for {ref}, {area}").format(ref=session.get("client_ref") or tr("no client named"),
                                            area=tr(session.get("area") or "-"))
        return tr("{who}, out {minutes} min").format(who=who, minutes=minutes)
    nc = status.get("next_client")
    if nc and nc.get("ref"):
        return tr("for {ref}, {area}").format(ref=nc["ref"], area=tr(nc.get("area") or "-"))
    return ""


def next_date_words(status: dict, locale: str, tr: Translator = _same) -> str:
    """For a client held by the interval, the date to rebook on, with its weekday."""
    from appliance.core.dates import long_date

    if "client_interval" not in (status.get("locks") or ()) or not status.get("docked"):
        return ""
    for r in status.get("reasons") or ():
        found = (r.get("detail") or {}).get("next_eligible_date") if r.get("code") == "client_interval" else None
        if found:
            return tr("Next eligible date: {date}").format(date=long_date(found, locale))
    return ""


def number(value: float | int, locale: str = "en-GB", digits: int | None = None) -> str:
    """1234 -> '1,234' (en) or '1.234' (de): the clinic's digit grouping and decimal sign;
    `digits`: exactly so many decimals (0.4 -> '0.40')."""
    from babel.numbers import format_decimal

    pattern = None if digits is None else "#,##0." + "0" * digits
    return format_decimal(value, format=pattern, locale=(locale or "en-GB").replace("-", "_"))


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
    running_out: str = ""  # the timer's words, in the page's language
    running_note: str = ""


def fleet_words(fleet: dict, tr: Translator = _same) -> str:
    """The other docks (the fleet helper's `status.fleet`), tolerant of what is missing."""
    peers = fleet.get("peers")
    if isinstance(peers, list):
        online = sum(1 for p in peers if not isinstance(p, dict) or p.get("online", True))
        text = tr("{online} of {total} others online").format(online=online, total=len(peers))
    else:
        text = tr("sharing history")
    if fleet.get("connected") is False:
        text += tr("; not connected")
    if fleet.get("stale"):
        text += tr("; history may be out of date")
    if int(fleet.get("kicked") or 0) >= 3:
        text += tr("; knocked off the broker {times} times lately (is another device using its login?)").format(
            times=fleet["kicked"])
    return text


def fleet_alarm(fleet: dict, tr: Translator = _same) -> str:
    """An equivocation (a dock's key told two stories: stolen?), never silent (S9)."""
    count = int(fleet.get("equivocations") or 0)
    if count <= 0:
        return ""
    return tr("ALARM: a clinic dock's key signed two different events for one place in its record "
              "({count} seen): its key may be stolen. Both were merged; see `pendock fleet` and "
              "ask the technician to provision that dock again.").format(count=count)


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


def facts_sentence(code: str, facts: dict, tr: Translator, locale: str) -> str:
    """A reason's facts in the page's language, dates with their weekday (the daemon's own
    sentence, appliance/core/reason_facts.py, is English: the CLI's and the English page's)."""
    from appliance.core.dates import long_date

    if not facts:
        return ""
    day = lambda key: long_date(facts.get(key), locale)  # noqa: E731
    if code == "client_interval" and "last_date" in facts:
        return tr("Last treated on {last} ({days} days ago); next eligible date {next}.").format(
            last=day("last_date"), days=facts.get("days_since"), next=day("next_eligible_date"))
    if code == "interval_short" and "last_date" in facts:
        return tr("Last treated on {last} ({days} days ago); recommended date was {date}.").format(
            last=day("last_date"), days=facts.get("days_since"), date=day("recommended_date"))
    if code == "course_complete" and "treatments_in_window" in facts:
        return tr("{count} treatments of this area in the last {days} days (a course is {course}).").format(
            count=facts["treatments_in_window"], days=facts.get("course_window_days"),
            course=facts.get("course_max_treatments"))
    if code == "battery_low" and "battery_percent" in facts:
        return tr("Battery {percent}% ({volts} V), charging in the cradle: about {minutes} minutes to go to the "
                  "{minimum} V minimum; the dock frees the pen by itself then.").format(
            percent=facts["battery_percent"], volts=number(facts["battery_mv"] / 1000, locale, 2),
            minutes=facts.get("charge_minutes", 0), minimum=number(facts.get("min_mv", 0) / 1000, locale, 2))
    if code == "service_due" and "motor_hours_since_service" in facts:
        return tr("{hours} motor hours since the last service (service every {every} hours).").format(
            hours=number(facts["motor_hours_since_service"], locale), every=facts.get("service_interval_hours"))
    if code == "pen_fault" and facts.get("faults"):
        return tr("The pen reports: {faults} (at {celsius} °C).").format(
            faults=", ".join(facts["faults"]), celsius=f"{facts.get('temperature_c', 0):.0f}")
    if code == "cartridge_reused":
        text = tr("Cartridge {serial} has {strokes} strokes on it.").format(
            serial=facts.get("cartridge"), strokes=number(facts.get("cartridge_strokes", 0), locale))
        if "seen_session" in facts:
            text += " " + tr("It was on session {session} on {date}.").format(session=facts["seen_session"],
                                                                           date=day("seen_date"))
        return text
    if code == "checklist_missing" and facts.get("missing"):
        return tr("Not ticked: {items}.").format(items=", ".join(tr(CHECKLIST_WORDS.get(i, i)) for i in facts["missing"]))
    if code == "session_overrun" and "out_minutes" in facts:
        return tr("Out {minutes} minutes (a session should take under {limit}).").format(
            minutes=facts["out_minutes"], limit=facts.get("limit_minutes"))
    return ""


def _reason_of(r: dict, tr: Translator = _same, locale: str = "en-GB") -> Reason:
    from appliance.core.reason_facts import sentence
    from appliance.page.i18n import language_of

    code = r.get("code", "")
    facts = ""
    if language_of(locale) != "en":
        facts = facts_sentence(code, r.get("detail") or {}, tr, locale)
    facts = facts or r.get("detail_words") or sentence(code, r.get("detail") or {})
    return Reason(r.get("kind", "lock"), tr(r.get("words", "")), tr(r.get("action", "")),
                  r.get("shown_undocked", True) is not False, facts, code)


def live_state(status: dict | None, problem: str = "", locale: str = "en-GB", tr: Translator = _same) -> LiveState:
    """The panel on top, from `status --json` (None: the daemon did not answer), in the
    language of `tr` (appliance/page/i18n.py; English when left out).

    live.js draws the same panel from /api/status; keep the two in step.
    """
    if status is None:
        return LiveState("down", tr("Dock not answering"),
                         tr("The page cannot reach the dock, so the pen's state is unknown. The log below is "
                            "still the record. If this lasts, restart the dock or call the technician."),
                         (), (), tr(TONE_WORDS["down"]), tr(TONE_TITLES["down"]))
    reasons = [_reason_of(r, tr, locale) for r in status.get("reasons") or ()]
    reasons += [Reason("overridden", tr(words(code)), tr("Overridden by a manager for this session."), True, "", code)
                for code in status.get("overridden") or ()]
    tone = tone_of(status)
    session = status.get("session")
    running = None
    if not status.get("docked") and session:
        out = int(session.get("out_seconds") or 0)
        running = Running(out, int(session.get("needling_limit_seconds") or 30 * 60),
                          int(session.get("overrun_limit_seconds") or 90 * 60))
        headline = tr("Session in progress")
        detail = tr("{ref}, {area}: out {out}. Put the pen back in the cradle when done.").format(
            ref=session.get("client_ref") or tr("No client named"), area=tr(session.get("area") or "-"),
            out=out_words(out, tr))
        reasons = [r for r in reasons if r.kind != "lock"]
    elif not status.get("docked"):
        headline, detail = tr("No pen in the cradle"), tr("Put the pen in the cradle.")
        reasons = [r for r in reasons if r.shown_undocked]  # the flag: daemon/status.py
    elif status.get("held"):
        locks = [r for r in reasons if r.kind == "lock"]
        if tone == "stop":
            red = [r for r in locks if r.code in RED_CODES] or locks
            headline = tr("Pen held: {words}").format(words=red[0].words if red else tr("see below"))
        else:
            headline = tr("Pen held until you: {action}").format(action=locks[0].action if locks else tr("see below"))
        detail = tr("The pen stays in the cradle until every lock below is cleared.")
    else:
        headline = tr("Pen free to lift")
        detail = tr("All checks passed: lift the pen to start the session.")
    facts = []
    nc = status.get("next_client")
    if nc:
        ticked = ", ".join(tr(CHECKLIST_WORDS.get(c, c)) for c in nc.get("checklist") or ()) or tr("checklist not ticked")
        facts.append((tr("Next client"), tr("{ref}, {area} ({ticked})").format(
            ref=nc.get("ref"), area=tr(nc.get("area") or "-"), ticked=ticked)))
    else:
        facts.append((tr("Next client"), tr("none named")))
    cartridge = status.get("cartridge")
    if cartridge:
        text = tr("{serial} ({strokes} strokes)").format(serial=cartridge["serial"],
                                                         strokes=number(cartridge["strokes"], locale))
        if "authenticated" in cartridge:
            text += tr(", genuine") if cartridge.get("authenticated") else tr(", NOT authenticated")
        facts.append((tr("Cartridge"), text))
    else:
        facts.append((tr("Cartridge"), tr("none fitted")))
    pen = status.get("pen")
    if pen:
        volts = f"{number(pen.get('battery_mv', 0) / 1000, locale, 2)} V"
        if "battery_percent" in pen:
            facts.append((tr("Pen battery"), tr("{percent}% ({volts}), {left} sessions left").format(
                percent=pen["battery_percent"], volts=volts, left=pen.get("sessions_left", 0))))
        else:
            facts.append((tr("Pen battery"), volts))
        if "hours_to_service" in pen:
            hours = pen["hours_to_service"]
            facts.append((tr("Service"), tr("due in {hours} motor hours").format(hours=number(hours, locale))
                          if hours > 0 else tr("due now")))
    clock = (status.get("now") or "")[:16].replace("T", " ")
    trusted = status.get("clock_synced") and status.get("clock_trusted", True)
    facts.append((tr("Dock clock"), clock + ("" if trusted else tr(" (NOT known to be right)"))))
    fleet = status.get("fleet")
    if isinstance(fleet, dict):
        facts.append((tr("Clinic docks"), fleet_words(fleet, tr)))
        if fleet_alarm(fleet):
            facts.append((tr("Clinic alarm"), fleet_alarm(fleet, tr)))
    locks = set(status.get("locks") or ())
    overridable = tuple(code for code in rules.OVERRIDABLE if code in locks)
    return LiveState(tone, headline, detail, tuple(reasons), tuple(facts), tr(TONE_WORDS[tone]), tr(TONE_TITLES[tone]),
                     (status.get("now") or "")[11:19], running, overridable,
                     who_words(status, tr), next_date_words(status, locale, tr),
                     out_words(running.out_seconds, tr) if running else "",
                     timer_note(running.out_seconds, running.needling_limit_seconds, tr) if running else "")


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
        clinic_name=getattr(clinic, "name", ""),  # empty: the card says "the clinic" in its language
        clinic_phone=getattr(clinic, "phone", ""),
    )
