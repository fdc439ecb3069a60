"""The clock's commands on the control socket: `clock` (what the dock thinks of its wall
clock, and why) and `clock_set` (a person confirms the date and time, audited).

`clock_set` is how a clinic without internet keeps working after a power cut: the Pi has
no RTC. It is open to the socket's group like `override` (the page lets only a manager
use it); it never sets the clock earlier than the record, and never overrules NTP.
"""
from __future__ import annotations

import re
from datetime import datetime

from appliance.core.inputs import MAX_REASON, MIN_REASON
from appliance.daemon import clockwatch
from appliance.daemon.control import BadRequest, Refused
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
    }


def register(server, dock) -> None:
    def clock_status(args, peer):
        return report(dock)

    def clock_set(args, peer):
        reason = reason_of(args)
        moment = parse_minute(args.get("at"), dock.config.tz)
        watch = dock.clockwatch
        with dock.lock:
            state = watch.observe()
            if watch.high_water is not None and moment < watch.high_water - clockwatch.TOLERANCE:
                raise Refused(
                    f"{moment.isoformat(timespec='minutes')} is earlier than the record, which "
                    f"already holds {watch.high_water.isoformat(timespec='minutes')} written while the "
                    f"clock was known right; check the time (the dock's zone is {dock.config.tz})")
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
                    dock.store.audit(peer.actor, "clock_set", {
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
