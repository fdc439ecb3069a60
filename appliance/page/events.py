"""What happened at the dock, from the audit trail: `GET /api/events` and the page's list.

The daemon already audits every hold and release (with codes), override (who and why),
forced removal, session, technician action and start-up; this turns each entry into one
event a therapist can read: at, kind, codes, actor, words. Pure: no Flask, no I/O.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable
from datetime import datetime, timedelta, tzinfo

from appliance.core import rules
from appliance.page.i18n import N_

# Audit actions -> event kind. Anything else is kind "other", with its action named.
TECHNICIAN_ACTIONS = frozenset({
    "service_reset", "rebaseline", "backup", "restore", "restored", "sessions_purged", "purge",
    "user_added", "token_created", "audit_verify", "user_removed", "user_password_changed",
    "token_revoked", "audit_anchored",
})
DOCK_ACTIONS = frozenset({"daemon_start", "config_loaded", "storage_recovered"})
SESSION_ACTIONS = {"session_opened": "session", "session_closed": "session",
                   "session_interrupted": "session"}
FAULT_CODES = frozenset({"pen_fault", "readout_error", "counter_rollback", "storage_error"})
KINDS = ("hold", "release", "fault", "override", "forced_removal", "clock", "technician",
         "session", "client", "login", "dock", "other")
# A fault read when the pen comes back belongs to the session that just ended: the dock
# reads the pen as it is seated, so within a few seconds of its end; later, to none.
FAULT_AFTER_SESSION = timedelta(seconds=5)


@dataclass(frozen=True)
class Event:
    at: str  # ISO 8601 with offset, as recorded
    kind: str
    codes: tuple[str, ...]
    actor: str
    words: str
    clock: str = ""  # HH:MM in the dock's zone, for the page

    def contract(self) -> dict:
        """The keys the README lists for an event, in its order."""
        return {"at": self.at, "kind": self.kind, "codes": list(self.codes), "actor": self.actor,
                "words": self.words}


def _same(text: str) -> str:
    return text


def _short(code: str, tr: Callable[[str], str] = _same) -> str:
    try:
        words = rules.describe(code).words
    except ValueError:
        return code.replace("_", " ")
    return tr(words).rstrip(".")


def _listed(codes, tr: Callable[[str], str] = _same) -> str:
    return "; ".join(_short(c, tr) for c in codes)


def _who(actor: str) -> str:
    """'page user boss' -> 'boss'; others as recorded."""
    return actor[len("page user "):] if actor.startswith("page user ") else actor


def event_of(action: str, detail: dict, actor: str, at: datetime, tz: tzinfo,
             tr: Callable[[str], str] = _same) -> Event:
    """One audit entry as an event, its words in the language of `tr` (English by default:
    `/api/events` and the logs stay English)."""
    codes: tuple[str, ...] = ()
    kind, words = "other", action.replace("_", " ").capitalize() + "."
    client = detail.get("client")
    for_client = tr(" (next client {ref})").format(ref=client) if client else ""
    if action == "lock":
        codes = tuple(detail.get("locks") or ())
        kind = "fault" if FAULT_CODES.intersection(codes) else "hold"
        words = (tr("Held: {reasons}{client}.").format(reasons=_listed(codes, tr), client=for_client)
                 if codes else tr("Held."))
    elif action == "release":
        codes = tuple(detail.get("overridden") or ()) + tuple(detail.get("warnings") or ())
        kind = "release"
        words = tr("Released{client}.").format(client=for_client)
        if detail.get("overridden"):
            words += " " + tr("Overridden: {reasons}.").format(reasons=_listed(detail["overridden"], tr))
        if detail.get("warnings"):
            words += " " + tr("Noted: {reasons}.").format(reasons=_listed(detail["warnings"], tr))
    elif action == "override":
        codes = (str(detail.get("code", "")),)
        kind = "override"
        who = tr("Manager {name}").format(name=detail["manager"]) if detail.get("manager") else _who(actor)
        words = tr('{who} overrode "{what}"{client}, reason: {reason}').format(
            who=who, what=_short(codes[0], tr), client=for_client, reason=detail.get("reason", ""))
    elif action == "forced_removal":
        kind, codes = "forced_removal", ("forced_removal",)
        words = tr("The pen was taken out with the technician's key while it was held.")
    elif action == "session_opened":
        kind = "session"
        codes = tuple(detail.get("warnings") or ()) + tuple(detail.get("overrides") or ())
        who = detail.get("client_ref") or tr("no client named")
        words = tr("Session {id} began: {ref}, {area}.").format(id=detail.get("session"), ref=who,
                                                               area=tr(detail.get("area") or "-"))
        if detail.get("forced"):
            kind, codes = "forced_removal", codes + ("forced_removal",)
            words = tr("Forced out with the technician's key: session {id} began ({ref}).").format(
                id=detail.get("session"), ref=who)
    elif action in SESSION_ACTIONS:
        kind = "session"
        codes = tuple(detail.get("warnings") or ())
        outcome = detail.get("outcome") or ("interrupted" if action == "session_interrupted" else "")
        words = tr("Session {id} ended: {outcome}").format(id=detail.get("session"), outcome=tr(outcome))
        if "needling_seconds" in detail:
            words += tr(", {minutes} min needling").format(minutes=int(detail["needling_seconds"]) // 60)
        words += (". " + tr("Noted: {reasons}.").format(reasons=_listed(codes, tr))) if codes else "."
    elif action == "next_client":
        kind = "client"
        words = tr("Next client named: {ref}, {area}.").format(ref=detail.get("ref"), area=tr(detail.get("area") or "-"))
    elif action == "next_client_cleared":
        kind = "client"
        words = tr("Next client cleared (was {ref}).").format(ref=detail.get("ref") or tr("none"))
    elif action in ("login", "login_failed", "login_throttled"):
        kind = "login"
        what = {"login": N_("Logged in: {user}."), "login_failed": N_("Wrong password: {user}."),
                "login_throttled": N_("Logins slowed down: {user}.")}
        words = tr(what[action]).format(user=detail.get("user", ""))
    elif action == "clock_set":
        kind = "clock"
        words = tr("{who} set the dock's clock to {to} (it read {was}), reason: {reason}").format(
            who=_who(actor), to=str(detail.get("to", ""))[:16].replace("T", " "),
            was=str(detail.get("was", ""))[:16].replace("T", " "), reason=detail.get("reason", ""))
    elif action == "clock_reanchored":
        kind = "clock"
        moved = detail.get("sessions") or []
        words = tr("The dock's clock is known right again: {count} session(s) timed while it was not were "
                   "re-dated, their old dates kept in the audit trail.").format(count=len(moved))
    elif "clock" in action:
        kind = "clock"
        words = tr("The dock's clock changed: {what}.").format(
            what=", ".join(f"{k} {v}" for k, v in sorted(detail.items())))
    elif action == "pen_registered":
        kind = "dock"
        words = tr("A pen was seen for the first time: its counters now are its baseline.")
    elif action in TECHNICIAN_ACTIONS:
        kind = "technician"
        reason = tr(", reason: {reason}").format(reason=detail["reason"]) if detail.get("reason") else ""
        words = tr("Technician: {action}{reason}.").format(action=action.replace("_", " "), reason=reason)
    elif action in DOCK_ACTIONS:
        kind = "dock"
        words = tr({"daemon_start": N_("The dock started (the pen is held until it has been looked at)."),
                    "config_loaded": N_("The dock's settings were loaded."),
                    "storage_recovered": N_("The record can be written again.")}[action])
    elif action == "first_run":
        kind = "technician"
        words = tr("First run: {manager} set up the dock for {clinic}.").format(
            manager=detail.get("manager", ""), clinic=detail.get("clinic", ""))
    local = at.astimezone(tz)
    return Event(at.isoformat(), kind, codes, actor, words, local.strftime("%H:%M"))


def events(entries, tz: tzinfo, tr: Callable[[str], str] = _same) -> list[Event]:
    """Audit entries (oldest first) as events, oldest first."""
    return [event_of(e.action, e.detail or {}, e.actor, e.at, tz, tr) for e in entries]


def faults_by_session(sessions: list[dict], day_events: list[Event]) -> dict[int, tuple[Event, ...]]:
    """Fault events that happened while a session's pen was out (or as it came back)."""
    found: dict[int, tuple[Event, ...]] = {}
    faults = [(datetime.fromisoformat(e.at), e) for e in day_events if e.kind == "fault"]
    if not faults:
        return found
    for s in sessions:
        try:
            start = datetime.fromisoformat(s["started_at"])
            end = datetime.fromisoformat(s["ended_at"]) if s.get("ended_at") else None
        except (KeyError, TypeError, ValueError):
            continue
        last = (end or start) + FAULT_AFTER_SESSION if end else None
        during = tuple(e for at, e in faults if at >= start and (last is None or at <= last))
        if during:
            found[int(s["id"])] = during
    return found


# -- the page's list: one line per meaningful change ---------------------------------------

FLOW_KINDS = ("hold", "release")  # the held/free back-and-forth of every ordinary session
# The page's filter: kind -> the kinds it shows ("hold" shows the releases too).
FILTERS = {"hold": FLOW_KINDS, "fault": ("fault",), "override": ("override",),
           "forced_removal": ("forced_removal",), "session": ("session",), "client": ("client",),
           "clock": ("clock",), "technician": ("technician", "dock", "other"), "login": ("login",)}


def _collapsed(run: list[Event], tr: Callable[[str], str] = _same) -> Event:
    """A run of holds and releases as its last state, saying what it held for before."""
    last = run[-1]
    if len(run) == 1:
        return last
    earlier = []
    for e in run[:-1]:
        earlier += [c for c in e.codes if c not in last.codes and c not in earlier]
    words = last.words
    if earlier:
        words = tr("{words} (since {time}; before that also: {reasons}).").format(
            words=words.rstrip("."), time=run[0].clock, reasons=_listed(earlier, tr))
    return Event(last.at, last.kind, last.codes, last.actor, words, last.clock)


def readable(found: list[Event], kind: str = "", tr: Callable[[str], str] = _same) -> list[Event]:
    """The page's events (oldest first). By default every meaningful change once: runs of
    holds and releases collapsed to one line each, logins left out (the technician's
    view: kind "login"). A known `kind` shows only that kind, uncollapsed; `/api/events`
    keeps every event."""
    if kind in FILTERS:
        return [e for e in found if e.kind in FILTERS[kind]]
    shown: list[Event] = []
    run: list[Event] = []
    for e in found:
        if e.kind == "login":
            continue
        if e.kind == "hold" and set(e.codes) == {"no_pen"} and shown and shown[-1].kind in ("session", "forced_removal"):
            continue  # the pen lifted for the session that just began: that line says it
        if e.kind in FLOW_KINDS:
            run.append(e)
            continue
        if run:
            shown.append(_collapsed(run, tr))
            run = []
        shown.append(e)
    if run:
        shown.append(_collapsed(run, tr))
    return shown
