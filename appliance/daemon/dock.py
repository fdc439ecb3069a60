"""The dock: turns seat and pen events into decisions, records and actuator states.

This is the imperative shell around `rules`: it reads the hardware, asks the store for
history, asks the rules for a decision, commits the decision durably, and only then moves
the latch. On any doubt (an exception, a write that failed, a pen it cannot read) the
latch stays de-energised, which holds the pen.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from appliance.hardware import frame
from appliance.core import rules
from appliance.core.digest import sha256_hex
from appliance.core.clock import Clock
from appliance.core.config import Config
from appliance.hardware.devices import DockHardware, PenLinkError
from appliance.core.model import Decision, DockState, History, NextClient, OpenSession, PenReading
from appliance.daemon import clockduty
from appliance.core.reason_facts import CartridgeSeen, FactInputs
from appliance.daemon.session_registers import SessionRegisters
from appliance.daemon.cartridge_check import CartridgeCheck
from appliance.daemon.status import present_status
from appliance.record import lookups, migrations
from appliance.record.store import StorageError, Store, StoreError

if TYPE_CHECKING:
    from appliance.fleet.process import LinkProcess

log = logging.getLogger("pendock.dock")

# Locks that light red (a stop); the rest, waiting for the therapist, light amber. One
# table for the light, the page and live.js: rules.STOP_LOCKS.
RED_LOCKS = rules.STOP_LOCKS
DOCK_ACTOR = "dock"


PEN_OUT_WORDS = ("the pen is out of the cradle: dock it so its session closes, then name the "
                 "next client (nothing was changed)")


class ClientRefused(Exception):
    """A client may not be named now (the pen is out of the cradle); nothing was changed."""


@dataclass(frozen=True)
class ReleaseBinding:
    """What the decision that released the pen checked: the session opens with exactly
    these (README, "The moment of release")."""

    client: NextClient | None
    pen_serial: int
    cartridge_serial: int


class Dock:
    """One docking station: hardware, record, rules and the live state between them."""

    def __init__(self, hw: DockHardware, store: Store, config: Config, clock: Clock, *,
                 config_source: object = None):
        self.config_summary = _config_summary(config, config_source)
        self.config_source = config_source  # the config file, read again by first run (daemon/first_run.py)
        self.hw = hw
        self.store = store
        self.config = config
        self.clock = clock
        self.lock = threading.RLock()
        self.seated = False
        self.reading: PenReading | None = None
        self.readout_error: str | None = None
        self.next_client: NextClient | None = None
        self.overrides: dict[str, str] = {}  # code -> reason, for the next client (and area) only
        self.release_binding: ReleaseBinding | None = None  # set while, and only while, released
        self.session: OpenSession | None = None
        self.decision = Decision(locks=("no_pen",))
        self.released = False
        self.storage_ok = True
        self.storage_error = ""  # why the record could not be written, while it cannot
        self.last_session: dict | None = None
        self.forced_by: str | None = None
        self._opened_by = DOCK_ACTOR
        self._next_poll = 0.0
        self._live_warnings: tuple[str, ...] = ()
        # Whether the wall clock can be trusted (NTP, a person, the monotonic clock, the record).
        self.clockwatch = clockduty.watch_clock(clock, store)
        self._history_seen = History()  # the last decision's, for the facts behind its reasons
        self._similar: tuple[object, tuple] = (None, ())  # (ref, day) -> look-alike references
        self._cartridge_seen: tuple[int, CartridgeSeen | None] = (0, None)  # serial -> where seen
        self.registers = SessionRegisters()  # the tag the docked pen's session registers are under
        self.fleet: LinkProcess | None = None  # the clinic's link (appliance/fleet), set by start_dock
        # The fitted cartridge's chip, asked once per fitting (hw/cartridge_auth.toml).
        self.chips = CartridgeCheck(hw.pen, store, config.cartridges.makers_dir)

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        """Hold the pen, close what a crash left open, and take the first look."""
        with self.lock:
            self.hw.latch.hold()
            self.hw.light.show("amber")
            now = self.clock.now()
            self._write(lambda: self.store.interrupt_open_sessions(now))
            # The next client is not carried over a restart: the therapist names them again,
            # so a dock that restarted holds the pen until someone has looked at it.
            self._write(lambda: self.store.audit(
                DOCK_ACTOR, "daemon_start", {"version": _version(), **clockduty.decision_clock(self.clockwatch)},
                now, self.observe_clock()))
            self._anchor_chain(now)
            self._write(lambda: self.store.audit(
                DOCK_ACTOR, "config_loaded", self.config_summary, now, self.observe_clock()))
            self._write(lambda: self.store.audit(
                DOCK_ACTOR, "cartridge_makers", self.chips.summary(), now, self.observe_clock()))
            self._write(lambda: self._audit_client_ref_merges(now))
        self.settle()

    def _audit_client_ref_merges(self, now: datetime) -> None:
        """The spellings of one booking reference that migration 9 merged into one client,
        on the audit trail once, with the state key it left cleared in the same commit."""
        merges = self.store.get_state(migrations.CLIENT_REF_MERGES_KEY)
        if not merges:
            return
        with self.store.transaction("the merged client references"):
            self.store.audit(DOCK_ACTOR, "client_refs_merged", {"merged": merges}, now,
                             self.observe_clock())
            self.store.set_state(migrations.CLIENT_REF_MERGES_KEY, None)

    def close(self) -> None:
        with self.lock:
            self.hw.latch.hold()
            self.hw.light.show("off")

    # -- the loop --------------------------------------------------------------------
    def tick(self) -> None:
        """One look at the dock: call it often; it reads the pen only when due."""
        with self.lock:
            try:
                self._tick()
            except Exception:
                self.hw.latch.hold()
                self.released, self.release_binding = False, None
                log.exception("dock tick failed; the pen is held")
                raise

    def settle(self, timeout: float = 2.0) -> None:
        """Wait for the seat to settle, then read and decide at once (the sim verbs use it)."""
        deadline = time.monotonic() + timeout
        while self.hw.seat.settled() is None and time.monotonic() < deadline:
            time.sleep(max(0.001, self.hw.seat.seconds_to_settle()))
        with self.lock:
            self._next_poll = 0.0
            self._tick()

    def seconds_to_next_tick(self) -> float:
        poll = self.config.dock.poll_interval_s
        pending = self.hw.seat.seconds_to_settle()
        return min(poll, pending) if pending > 0 else poll

    def _tick(self) -> None:
        level = self.hw.seat.settled()
        if level is None:
            return
        if not self.storage_ok:
            self._probe_storage()
        if level and not self.seated:
            self.seated = True
            self._read_pen()
            self._close_session_if_back()
            self._open_pen_session()
        elif not level and self.seated:
            self._on_lifted()
        elif level and self.clock.monotonic() >= self._next_poll:
            self._read_pen()
            self._close_session_if_back()
            self._open_pen_session()
        elif not level and self.session is not None:
            out = self.clock.monotonic() - self.session.started_monotonic
            self._live_warnings = rules.live_warnings(self.session, out, self.config)
        self._refresh()

    # -- reading the pen ------------------------------------------------------------
    def _read_pen(self) -> None:
        self._next_poll = self.clock.monotonic() + self.config.dock.poll_interval_s
        try:
            self.reading, self.readout_error = self.hw.pen.read(), None
        except (PenLinkError, frame.FrameError) as error:
            if not self.hw.seat.raw():
                # The pen left during the read: the broken frame is the lift, not a fault.
                # Keep the last good reading so the lift opens the session it starts.
                return
            self.reading, self.readout_error = None, str(error)
            return
        try:
            self.chips.check(self.reading)
        except StorageError as error:
            self._storage_failed(error)

    def _open_pen_session(self) -> None:
        """Zero the docked pen's session registers for its next session (frame v2) while it
        can still hear the dock, never while a session waits to be closed; a read shows
        whether the tag took, and a pen that did not take it is told again next poll."""
        if self.session is not None or not self.registers.needs_opening(self.reading):
            return
        try:
            self.registers.open(self.hw.pen)
        except Exception as error:  # the link failed: the session records no depth, nothing worse
            log.warning("could not open the pen's session registers: %s", error)
            return
        self._read_pen()

    # -- sessions -----------------------------------------------------------------------
    def _on_lifted(self) -> None:
        """The pen left the cradle: after a release that opens the session."""
        was_released, binding = self.released, self.release_binding
        self.hw.latch.hold()
        self.released, self.release_binding = False, None
        self.seated = False
        if self.session is None and self.reading is not None:
            self._open_session(forced=not was_released, binding=binding if was_released else None)
        elif self.session is None:
            # Lifted while held and unread (a readout error): no counters to open a session
            # with, but the removal itself is on the record.
            self._write(lambda: self.store.audit(
                self.forced_by or DOCK_ACTOR, "forced_removal",
                {"readout_error": self.readout_error}, self.clock.now(), self.observe_clock()))
            self.forced_by = None
        self.reading, self.readout_error = None, None
        self.registers.forget()  # whichever pen docks next gets a fresh tag
        self.chips.forget()  # whatever comes back is asked again

    def name_client(self, client: NextClient | None) -> None:
        """Name (or, with None, forget) the next client. The latch is held again before
        anything else, so the pen is released only by a decision for this client; an
        override stays only for the same client and area. While the pen is out of the
        cradle (a session open, or the seat already saw it leave) nothing changes:
        ClientRefused. Call with the dock's lock held, then settle() to decide again."""
        self.hold_for_naming()
        before = self.next_client
        if client is None or before is None or (client.ref, client.area) != (before.ref, before.area):
            self.overrides = {}  # an override is for the client and area it was given for
        self.next_client = client
        self._similar = (None, ())  # look-alike references are read again for this naming

    def hold_for_naming(self) -> None:
        """The first step of naming a client: the latch held, the release forgotten; or,
        while the pen is out, ClientRefused with nothing changed."""
        if self.pen_is_out():
            raise ClientRefused(PEN_OUT_WORDS)
        self.hw.latch.hold()
        self.released, self.release_binding = False, None

    def pen_is_out(self) -> bool:
        """A session is open, or the seat already saw the pen leave (it settles soon)."""
        return self.session is not None or (self.seated and not self.hw.seat.raw())

    def storage_failed(self, error: Exception) -> None:
        """A write elsewhere (a command's audit entry) failed: hold the pen and show
        storage_error until a write succeeds again."""
        with self.lock:
            self._storage_failed(error)
            self._refresh()

    def note_forced_removal(self, actor) -> None:
        """Who used the technician's key, for the audit entry of the forced removal."""
        self.forced_by = getattr(actor, "actor", str(actor))

    def _open_session(self, *, forced: bool, binding: ReleaseBinding | None = None) -> None:
        """A released pen's session is the releasing decision's: its client, area, pen and
        cartridge, whatever was named since. A forced one's is the client named then."""
        reading = self.reading
        client = binding.client if binding is not None else None if not forced else self.next_client
        now = self.clock.now()
        auth = self.chips.auth_for(reading)
        session = OpenSession(
            id=0,
            started_at=now,
            client_ref=client.ref if client else "",
            area=client.area if client else self.config.areas.default_area,
            pen_serial=binding.pen_serial if binding else reading.pen_serial if reading else 0,
            cartridge_serial=binding.cartridge_serial if binding else reading.cartridge_serial if reading else 0,
            strokes_start=reading.strokes if reading else 0,
            motor_seconds_start=reading.motor_seconds if reading else 0,
            started_monotonic=self.clock.monotonic(),
            warnings=self.decision.warnings,
            overrides=self.decision.overridden,
            checklist=client.checklist if client else frozenset(),
            forced=forced,
            session_tag=self.registers.tag_for_session(reading),
            cartridge_auth=auth.verdict if auth else None,
            cartridge_counter=auth.counter if auth else None,
        )
        self._opened_by = self.forced_by or DOCK_ACTOR
        self.forced_by = None
        self.session = session
        self.next_client = None
        self.overrides = {}
        self._record_session_start()

    def _record_session_start(self) -> bool:
        """Write the open session (id 0 until written). If the record cannot be written
        now, the session waits in memory and is written as soon as writing works again:
        nothing that left the dock stays unlogged."""
        session = self.session
        if session is None or session.id:
            return True
        known_right = self.observe_clock()

        def write() -> int:
            with self.store.transaction("the new session"):
                opened = self.store.open_session(
                    started_at=session.started_at, client_ref=session.client_ref, area=session.area,
                    pen_serial=session.pen_serial, cartridge_serial=session.cartridge_serial,
                    strokes_start=session.strokes_start, motor_seconds_start=session.motor_seconds_start,
                    warnings=session.warnings, overrides=session.overrides,
                    checklist=sorted(session.checklist), forced=session.forced,
                    actor=self._opened_by, clock_synced=known_right, tz=self.config.tz,
                    cartridge_auth=session.cartridge_auth, cartridge_counter=session.cartridge_counter)
                # Beside the wall time: the boot and monotonic time, to re-anchor it later,
                # and the vouched time it began at, which its client's interval counts from.
                vouched_at, exact = clockduty.vouched_start(self.clockwatch, session.started_monotonic)
                self.store.mark_session_clock(opened, self.clockwatch.boot_id,
                                              session.started_monotonic, known_right,
                                              vouched_at, exact)
                return opened

        session_id = self._write(write)
        if session_id is _FAILED:
            return False
        self.session = replace(session, id=session_id)
        return True

    def _close_session_if_back(self) -> None:
        session, reading = self.session, self.reading
        if session is None or reading is None:
            return
        outcome = rules.session_outcome(session, reading)
        out = self.clock.monotonic() - session.started_monotonic
        # The end is the start plus the monotonic time out: a wall clock that jumped while
        # the pen was out cannot make a session end before it began, or last a year.
        ended_at = session.started_at + timedelta(seconds=out)
        result = rules.with_clock_warning(
            rules.session_result(session, reading, self.config, ended_at, out), self.observe_clock())
        dates = rules.session_dates(session, self.config)
        if not self._record_session_start():
            return  # keep it in memory; the pen is held by storage_error until writing works
        session_id = self.session.id
        same_pen = outcome == "completed"
        done = self._write(lambda: self.store.close_session(
            session_id, result, outcome, reading.strokes if same_pen else None,
            reading.motor_seconds if same_pen else None,
            dates.next_eligible if dates else None, dates.recommended if dates else None,
        ))
        if done is _FAILED:
            return  # keep it open; the pen is held by storage_error until writing works
        self.last_session = self.store.session(session_id)
        self.session = None
        self._live_warnings = ()

    # -- deciding ------------------------------------------------------------------------
    def dock_state(self) -> DockState:
        return DockState(
            docked=self.seated,
            reading=self.reading,
            readout_error=self.readout_error,
            next_client=self.next_client,
            overrides=frozenset(self.overrides),
            storage_ok=self.storage_ok,
            clock_synced=self.observe_clock(),
            clock_behind_record=self.clockwatch.state.behind_record,
            fleet_stale=self.fleet is not None and self.fleet.stale(),
            cartridge_auth=self.chips.auth_for(self.reading),
        )

    def _history(self, now: datetime) -> History:
        if self.reading is None:
            return History()
        ref = self.next_client.ref if self.next_client else None
        try:
            history = self.store.history(self.reading, ref, now, self.config.rules.course_window_days)
            # The chip's counter is judged against the record as it was BEFORE its answer.
            return replace(history, cartridge_counter_floor=self.chips.floor_for(self.reading),
                           similar_treatments=self._similar_treatments(ref, now))
        except StorageError as error:
            self._storage_failed(error)
            return History()

    def _similar_treatments(self, ref: str | None, now: datetime) -> tuple:
        """Other references like the named one (client_ref_similar), read once per client
        and day: a naming is rare, decisions are many (bar P1)."""
        if not ref:
            return ()
        key = (ref, now.astimezone(self.config.tz).date())
        if self._similar[0] != key:
            since = now - timedelta(days=self.config.rules.course_window_days)
            self._similar = (key, self.store.similar_treatments(ref, since))
        return self._similar[1]

    def rules_now(self) -> datetime:
        """The time the rules count from: the wall clock, unless it jumped where the
        monotonic clock did not follow (clockwatch.py)."""
        return self.clockwatch.observe().effective_now

    def decide(self, history: History | None = None) -> Decision:
        now = self.rules_now()
        history = self._history(now) if history is None else history
        return rules.decide(self.dock_state(), history, self.config, now)

    def _refresh(self) -> None:
        """Decide, commit what changed in one durable transaction, then set latch and light."""
        self.clockwatch.observe()
        if self.storage_ok and self.clockwatch.take_became_right():
            if self._write(lambda: clockduty.reanchor(self, DOCK_ACTOR)) is _FAILED:
                self.clockwatch.became_right = True  # again once the record can be written
        correction = self.clockwatch.take_correction() if self.storage_ok else None
        if correction is not None:
            if self._write(lambda: clockduty.revouch(self, DOCK_ACTOR, correction)) is _FAILED:
                self.clockwatch.correction = correction  # again once the record can be written
        history = self._history(self.rules_now())
        decision = self.decide(history)
        self._note_facts(history, decision)
        release = self.seated and not decision.held
        changed = (decision != self.decision) or (release != self.released)
        pen_write = self._pen_write(decision, history)
        chip_write = self.storage_ok and self.chips.needs_recording()
        if changed or pen_write or chip_write:
            if self._write(lambda: self._record(decision, release, changed, pen_write, chip_write)) is _FAILED:
                decision = self.decide(history)  # now with storage_error
                release = False
            else:
                self.chips.committed(counter=chip_write, audited=changed)
        reading = self.reading
        binding = ReleaseBinding(self.next_client, reading.pen_serial, reading.cartridge_serial) \
            if release and reading is not None else None
        self._drive(decision, release and binding is not None, binding)

    def _note_facts(self, history: History, decision: Decision) -> None:
        """Keep what the status's facts need: the decision's history and, for a reused
        cartridge, where the record saw it (looked up once per cartridge)."""
        self._history_seen = history
        reading = self.reading
        if reading is None or "cartridge_reused" not in decision.locks:
            return
        if self._cartridge_seen[0] != reading.cartridge_serial:
            try:
                seen = lookups.cartridge_seen(self.store, reading.cartridge_serial)
            except StoreError:
                seen = None
            self._cartridge_seen = (reading.cartridge_serial, seen)

    def _pen_write(self, decision: Decision, history: History) -> str | None:
        """"register" for a pen never seen, "counters" when its counters moved on (never
        after a rollback), else None. The pen's record comes with the decision's history."""
        reading = self.reading
        if reading is None or not self.storage_ok or "counter_rollback" in decision.locks:
            return None
        known = history.pen
        if known is None:
            return "register"
        moved = (reading.strokes, reading.motor_seconds) != (known.last_strokes, known.last_motor_seconds)
        return "counters" if moved else None

    def _record(self, decision: Decision, release: bool, changed: bool, pen_write: str | None,
                chip_write: bool = False) -> None:
        reading = self.reading
        now, synced = self.clock.now(), self.observe_clock()
        with self.store.transaction("the dock's decision"):
            if pen_write == "register":
                self.store.register_pen(reading, now, DOCK_ACTOR, synced)
            elif pen_write == "counters":
                self.store.record_pen_counters(reading.pen_serial, reading.strokes, reading.motor_seconds)
            if chip_write:
                self.chips.record()
            if changed:
                detail = {
                    "locks": list(decision.locks),
                    "warnings": list(decision.warnings),
                    "overridden": list(decision.overridden),
                    "pen": reading.pen_serial if reading else None,
                    "cartridge": reading.cartridge_serial if reading else None,
                    "client": self.next_client.ref if self.next_client else None,
                        "area": self.next_client.area if self.next_client and release else None,
                    **self.chips.audit_detail(reading),
                }
                # An absent key means none: seven entries a session, kept for years (P6).
                detail = {key: value for key, value in detail.items() if value not in (None, [])}
                detail.update(clockduty.decision_clock(self.clockwatch))
                self.store.audit(DOCK_ACTOR, "release" if release else "lock", detail, now, synced)

    def _drive(self, decision: Decision, release: bool, binding: ReleaseBinding | None = None) -> None:
        was_released = self.released
        if release:
            self.hw.latch.release()
        else:
            self.hw.latch.hold()
        self.decision, self.released = decision, release
        self.release_binding = binding if release else None
        if release:
            self.hw.light.show("green")
            if not was_released:
                self.hw.beep(1)
        elif not self.seated:
            self.hw.light.show("blue" if self.session is not None else "off")
        elif self._stop(decision):
            self.hw.light.show("red")
        else:
            self.hw.light.show("amber")

    def _stop(self, decision: Decision) -> bool:
        """Red, not amber: a lock that is a real stop. The cartridge of the session that
        just ended, still fitted, is the normal wait between clients (fit a new one), not
        a reuse: amber, or every session's end would be an alarm."""
        red = RED_LOCKS.intersection(decision.locks)
        last, reading = self.last_session, self.reading
        if red == {"cartridge_reused"} and last and reading is not None \
                and reading.cartridge_serial == last.get("cartridge_serial"):
            return False
        return bool(red)

    # -- storage ------------------------------------------------------------------------
    def _write(self, action):
        """Run a store write; a failure marks storage_error (the pen is held) instead of raising."""
        try:
            return action()
        except StorageError as error:
            self._storage_failed(error)
            return _FAILED

    def _storage_failed(self, error: Exception) -> None:
        if self.storage_ok:
            log.error("the record cannot be written, holding the pen: %s", error)
        self.storage_ok = False
        self.storage_error = str(error)
        self.hw.latch.hold()
        self.released, self.release_binding = False, None

    def _probe_storage(self) -> None:
        try:
            self.store.audit(DOCK_ACTOR, "storage_recovered", {"error": self.storage_error},
                             self.clock.now(), self.observe_clock())
        except StorageError:
            return
        self.storage_ok = True
        log.warning("the record can be written again")
        self._record_session_start()  # a session that began while the record was unwritable

    def _anchor_chain(self, now: datetime) -> None:
        """The chain's anchor beside the record (record/anchor.py). A record that had a
        chain before it had an anchor says so in the trail: anchored late, not at its start."""
        try:
            written = self.store.anchor_chain(now)
        except OSError as error:
            log.error("the audit chain's anchor could not be written: %s", error)
            return
        first = self.store.audit_entries(1, before_id=2)
        if written and first and first[0].action != "daemon_start":
            self._write(lambda: self.store.audit(DOCK_ACTOR, "audit_anchored", {"late": True}, now,
                                                 self.observe_clock()))

    def observe_clock(self) -> bool:
        """Look at the wall clock (the watch remembers what it saw, so this is not a pure
        query) and say whether it is known right: NTP or a person set it this boot, it keeps
        step with the monotonic clock since, and it is not behind the record (clockwatch.py)."""
        return self.clockwatch.observe().known_right

    # -- what the page and the CLI see ----------------------------------------------------
    def status(self) -> dict:
        """The `status --json` object of the README (appliance/daemon/status.py presents it)."""
        with self.lock:
            session = self.session
            now = self.clock.now()
            out = (self.clock.monotonic() - session.started_monotonic) if session else 0.0
            reading = self.reading
            seen = self._cartridge_seen
            facts = FactInputs(  # dated as the rules date them (a clock jump is not trusted)
                config=self.config, now=self.rules_now(), reading=reading, history=self._history_seen,
                next_client=self.next_client, readout_error=self.readout_error,
                storage_error=self.storage_error, out_seconds=out if session else None, wall_now=now,
                cartridge_seen=seen[1] if reading is not None and seen[0] == reading.cartridge_serial else None)
            return present_status(
                docked=self.seated, released=self.released, decision=self.decision,
                live_warnings=self._live_warnings, reading=self.reading, session=session,
                out_seconds=out,
                next_client=self.next_client, last_session=self.last_session,
                readout_error=self.readout_error, clock_synced=self.observe_clock(),
                storage_ok=self.storage_ok, light=self.hw.light.colour, now=now,
                tz=self.config.tz, pin_factory=self.hw.factory_name, facts=facts,
                session_registers=self.registers.tag_for_session(self.reading) is not None,
                cartridge_auth=self.chips.auth_for(self.reading))


class _Failed:
    def __repr__(self):
        return "<failed>"


_FAILED = _Failed()


def _config_summary(config, source) -> dict:
    """What the audit keeps of a loaded config: where from, its hash, and the rule values."""
    from dataclasses import asdict
    from pathlib import Path

    path = Path(source) if source else None
    text = path.read_bytes() if path and path.is_file() else b""
    return {
        "path": str(path) if path else None,
        "sha256": sha256_hex(text) if text else None,
        "defaults": not text,
        "rules": asdict(config.rules),
    }


def _version() -> str:
    from appliance import __version__

    return __version__
