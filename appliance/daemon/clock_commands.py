"""The clock's commands on the control socket: `clock` (what the dock thinks of its wall
clock and its vouched time, and why) and `clock_set` (a person confirms the date and
time, audited).

`clock_set` is how a clinic without internet keeps its dates right after a power cut. It
sets the date shown and written, never vouched time, so it cannot free a pen early. Who
may use it is checked here, by the daemon: a technician (root, the daemon's user, the
technicians' group), or a manager whose name and password the page passes on and the
daemon checks against the record; never the page process on its own authority. It never
sets the clock earlier than vouched time an authenticated source grounded (the true time
is never earlier), and never overrules NTP.
"""
from __future__ import annotations

import re
from datetime import datetime

from appliance.core import vouched
from appliance.core.inputs import MAX_REASON, MIN_REASON
from appliance.daemon import clockwatch
from appliance.daemon import authority
from appliance.daemon.control import BadRequest, Denied, Refused
from appliance.hardware.clock import ClockSetError
from appliance.record.errors import StorageError

_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def parse_minute(text: object, tz) -> datetime:
    """'YYYY-MM-DDTHH:MM' in the dock's time zone; anything else is a BadRequest."""
    if not isinstance(text, str) or not _MINUTE.fullmatch(text):
        raise BadRequest(f"time {str(text)[:40]!r} is not understood: give the dock's local "
                         f"date and time as YYYY-MM-DDTHH:MM, e.g. 2026-03-14T09:30")
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M").replace(tzinfo=tz)
    except ValueError:
        raise BadRequest(f"time {text!r} is not a real date and time: give YYYY-MM-DDTHH:MM, "
                         f"e.g. 2026-03-14T09:30") from None


def reason_of(args: dict) -> str:
    reason = args.get("reason")
    reason = reason.strip() if isinstance(reason, str) else ""
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        raise BadRequest(f"a written reason of {MIN_REASON} to {MAX_REASON} characters is needed, "
                         f"e.g. --reason \"checked against the clinic's phone\"")
    return reason


def report(dock) -> dict:
    """The `pendock clock --json` object."""
    with dock.lock:
        state = dock.clockwatch.observe()
        high_water = dock.clockwatch.high_water
        sources = dock.clockwatch.sources
    return {
        "now": state.wall.isoformat(),
        "timezone": str(dock.config.tz),
        "known_right": state.known_right,
        "why": state.why,
        "last_known_right": state.last_known_right.isoformat() if state.last_known_right else None,
        "behind_record": state.behind_record,
        "jumped": state.jumped,
        "effective_now": state.effective_now.isoformat(),
        "record_latest": high_water.isoformat() if high_water else None,
        "boot_id": state.boot_id,
        "words": clockwatch.describe(state),
        "vouched_until": state.effective_now.isoformat(),
        "vouched_exact": state.vouched_exact,
        "vouched_by": state.vouched_source,
        "vouched_grounded": state.vouched_grounded,
        "sources": [present_source(reading) for reading in sources],
    }


def present_source(reading) -> dict:
    """One source of time in `clock --json`: whether the dock can authenticate it, and
    whether it moves vouched time (README "The clock")."""
    return {"name": reading.name, "authenticated": reading.authenticated,
            "has_time": reading.at is not None,
            "at": reading.at.isoformat() if reading.at is not None else None,
            "moves_vouched_time": reading.name in vouched.TRUSTED and reading.authenticated,
            "detail": reading.detail}


def clock_setter(args: dict, peer, store) -> str:
    """Who sets the clock, as the audit trail names them; Denied for anyone else. A
    technician's peer is the kernel's word; a manager's is their password, checked here."""
    if peer.technician:
        return peer.actor
    name, password = args.get("manager"), args.get("password")
    if isinstance(name, str) and isinstance(password, str) and name and password:
        try:  # the one manager check (role table, password, wrong guesses capped)
            manager = authority.manager_for({"manager": name, "manager_password": password}, peer, store,
                                            "set_clock", page_may=False)
        except Denied as error:
            raise Denied(f"the clock was not set: {error}") from None
        return f"{manager} (manager, via {peer.user})"
    raise Denied("setting the clock is for a manager (from the page, with their password) or a "
                 f"technician; {peer.user} is neither")


def register(server, dock) -> None:
    def clock_status(args, peer):
        return report(dock)

    def clock_set(args, peer):
        reason = reason_of(args)
        moment = parse_minute(args.get("at"), dock.config.tz)
        actor = clock_setter(args, peer, dock.store)
        watch = dock.clockwatch
        with dock.lock:
            state = watch.observe()
            floor = state.effective_now.replace(second=0, microsecond=0)
            if state.vouched_grounded and moment < floor - clockwatch.TOLERANCE:
                raise Refused(
                    f"{moment.isoformat(timespec='minutes')} is earlier than the time the dock can "
                    f"vouch for, {floor.isoformat(timespec='minutes')} (its record and its monotonic "
                    f"clock show that much time has passed); check the time (the dock's zone is "
                    f"{dock.config.tz})")
            if state.known_right and state.why == "ntp" and abs(moment - state.wall) > clockwatch.TOLERANCE:
                raise Refused(f"NTP keeps this clock right ({state.wall.isoformat(timespec='minutes')}); "
                              f"a person's time does not overrule it")
            stepped = abs(moment - state.wall) > clockwatch.TOLERANCE
            if stepped:
                try:
                    dock.clock.set_wall(moment)
                except ClockSetError as error:
                    raise Refused(str(error)) from None
            before = state.wall
            state = watch.confirm("person")
            try:
                with dock.store.transaction("the clock set by a person"):
                    dock.store.audit(actor, "clock_set", {
                        "to": state.wall.isoformat(), "was": before.isoformat(),
                        "stepped": stepped, "reason": reason, "boot": state.boot_id,
                    }, state.wall, True)
                    dock.store.set_state(clockwatch.CONFIRMED_KEY, watch.confirmation())
            except StorageError as error:
                raise Refused(f"the clock setting was not recorded: {error}") from None
        dock.settle()
        return report(dock)

    server.register("clock", clock_status, errors={StorageError: "refused"})
    server.register("clock_set", clock_set, errors={StorageError: "refused"})
