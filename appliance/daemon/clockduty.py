"""The dock's clock duties on the record: watch the clock from what the record holds, and
re-anchor sessions dated by an unknown clock once the clock is known right.

Kept out of dock.py so the dock's loop stays about the pen; the dock calls these with
itself (its clock, store, config and open session).
"""
from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from pathlib import Path

from appliance.core import rules
from appliance.daemon import clockvouch
from appliance.daemon.clockwatch import CONFIRMED_KEY, ClockWatch
from appliance.record.clocked import reanchored_start
from appliance.record.errors import StorageError

log = logging.getLogger("pendock.clock")


def watch_clock(clock, store) -> ClockWatch:
    """A ClockWatch that knows the latest trusted time on the record and a person's
    confirmation of this boot (a daemon restart keeps it). A record it cannot read gives
    no high water: the clock then cannot be behind it, and storage_error holds the pen."""
    try:
        high_water = store.trusted_high_water()
        confirmed = store.get_state(CONFIRMED_KEY)
    except StorageError as error:
        log.error("the record could not be read for the clock's checks: %s", error)
        high_water, confirmed = None, None
    kept_at = clockvouch.path_for(Path(store.path).parent)
    return ClockWatch(clock, high_water=high_water, confirmed=confirmed,
                      kept=clockvouch.load(kept_at), keep=lambda vouch: clockvouch.save(kept_at, vouch))


def vouched_start(watch: ClockWatch, started_mono: float) -> tuple[datetime, bool]:
    """The vouched time at a session's start (monotonic `started_mono`, this boot), and
    whether it was exact then."""
    state = watch.observe()
    return (state.effective_now - timedelta(seconds=max(0.0, state.monotonic - started_mono)),
            state.vouched_exact)


def decision_clock(watch: ClockWatch) -> dict:
    """The boot and monotonic time beside a decision's wall time (8 characters of the
    boot id tell this dock's boots apart; the sessions table keeps it whole)."""
    state = watch.state
    return {"boot": state.boot_id[:8], "mono": round(state.monotonic, 1)}


def reanchor(dock, actor: str) -> None:
    """Move every session dated by an unknown clock to where it belongs, now that the clock
    is known right; the open session in memory moves with its row."""
    state = dock.clockwatch.state
    if not state.known_right:
        return
    pending = dock.store.unanchored_sessions()
    if not pending:
        return
    moves = []
    for session in pending:
        to, how = reanchored_start(session, state.boot_id, state.wall, state.monotonic)
        moves.append({**session, "to": to, "how": how})

    def dates(start: datetime) -> tuple[str, str]:
        found = rules.eligible_dates(start, dock.config)
        return found.next_eligible.isoformat(), found.recommended.isoformat()

    dock.store.reanchor_sessions(moves, dock.config.tz, dates, actor, state.wall)
    moved = {move["id"]: move["to"] for move in moves}
    if dock.session is not None and dock.session.id in moved:
        dock.session = replace(dock.session, started_at=moved[dock.session.id])
    log.warning("the clock is known right again: %d sessions re-anchored", len(moves))


def revouch(dock, actor: str, correction) -> None:
    """A trusted source set vouched time (by `correction`): every session dated on the
    old vouched time (this boot's, and those carried over a reboot) moves by the same
    step, so what the dock measured between it and now is kept and nothing it did not
    measure is added; a session dated later than the
    time now vouched for (a forward mistake, a restored record) comes back to now. The
    date shown moves with it. One audited transaction (record/clocked.py)."""
    state = dock.clockwatch.state

    def dates(start: datetime) -> tuple[str, str]:
        found = rules.eligible_dates(start, dock.config)
        return found.next_eligible.isoformat(), found.recommended.isoformat()

    moved = dock.store.revouch_sessions(correction, state.effective_now, state.boot_id, dock.config.tz, dates,
                                        actor, state.wall, source=state.vouched_source)
    if dock.session is not None and dock.session.id in moved:
        dock.session = replace(dock.session, started_at=moved[dock.session.id])
    if moved:
        log.warning("a trusted time source corrected vouched time by %s: %d sessions re-dated",
                    correction, len(moved))
