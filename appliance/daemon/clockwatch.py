"""Whether the wall clock can be trusted, worked out from the two clocks and the record.

A Pi has no real-time clock: after a power cut it boots with the last saved time until NTP
answers. So the wall clock is "known right" only after an NTP synchronisation or a person
setting it (`pendock clock set`), and only while it keeps step with the monotonic clock
from that moment. Everything else is a jump the dock does not trust:

- a forward jump the monotonic clock does not confirm: not trusted, and the rules, purge
  and retention never counted it anyway (they count vouched time, below);
- a wall clock behind vouched time an authenticated source grounded: provably wrong, so
  the pen is held (`clock_unsynced` becomes a lock) until the clock is set.

Beside the wall clock it keeps vouched time (appliance/core/vouched.py): the lower bound
of the true time the rules count from (`effective_now`). Only the monotonic clock and the
authenticated sources (NTS, the RTC) move it; NTP and a person set the wall clock, the
date shown.

The result is a `ClockState`, an input to the pure rules. This class only observes; the
dock writes the record (re-anchoring sessions, audit) when `became_right` or
`take_correction` says so.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from appliance.core import vouched
from appliance.core.model import ClockState
from appliance.core.vouched import SourceReading, Vouch

# NTP slews a few ms a second; a step back or forth larger than this is a jump.
TOLERANCE = timedelta(minutes=2)
CONFIRMED_KEY = "clock_confirmed"  # state key: a person's `clock set`, for a daemon restart
KEEP_EVERY = timedelta(minutes=5)  # vouched time is kept this often (lost at a power cut: not counted)


@dataclass(frozen=True)
class _Mark:
    wall: datetime
    mono: float


class ClockWatch:
    """Follows the wall clock against the monotonic clock, one observation at a time."""

    def __init__(self, clock, *, high_water: datetime | None = None,
                 confirmed: dict | None = None, kept: Vouch | None = None,
                 keep: Callable[[Vouch], None] | None = None):
        self.clock = clock
        self.boot_id = _call(clock, "boot_id", "")
        wall, mono = clock.now(), clock.monotonic()
        # Vouched time: carried over from what was kept (a reboot counts as no time), or
        # the wall clock at the very first start.
        self.vouch = (vouched.carried(kept, self.boot_id, mono) if kept is not None
                      else vouched.first(wall, self.boot_id, mono))
        self._keep = keep
        self._kept: Vouch | None = None
        self.correction: timedelta | None = None  # vouched time moved by a trusted source: re-date
        self.sources: tuple[SourceReading, ...] = ()
        self._track = _Mark(wall, mono)  # the last reading that kept step with the monotonic clock
        self._sync = _call(clock, "sync_mark", 1 if clock.synced() else None)
        self.why = "ntp" if self._sync is not None else "unknown"
        if self.why == "unknown" and _still_confirmed(confirmed, self.boot_id, wall, mono):
            self.why = "person"  # the daemon restarted since a person set the clock, same boot
        self.jumped = False
        self.high_water = high_water  # the latest time written while the clock was known right
        self.last_known_right = high_water  # the record's latest trusted time, until now is
        self.became_right = self.why != "unknown"  # re-anchor what the record holds: at start too
        self.state = self.observe()
        self._keep_vouch(force=True)

    def observe(self) -> ClockState:
        """Read both clocks once and say what can be trusted now."""
        wall, mono = self.clock.now(), self.clock.monotonic()
        sync = _call(self.clock, "sync_mark", 1 if self.clock.synced() else None)
        was_right = self.why != "unknown" and not self.jumped
        confirmed = self._track.wall + timedelta(seconds=mono - self._track.mono)
        if sync is not None and sync != self._sync:
            self._accept(wall, mono, "ntp")  # a new NTP synchronisation: its time is right
        elif abs(wall - confirmed) <= TOLERANCE:
            self._track, self.jumped = _Mark(wall, mono), False
        else:
            self.jumped, self.why = True, "unknown"  # trust ends at a jump, until sync or a person
        if sync is None and self.why == "ntp":
            self.why = "unknown"  # NTP lost (the simulated --unsync)
        self._sync = sync
        vouch = self._observe_vouch(wall, mono, sync)
        # Behind: the wall clock reads earlier than the time the dock can vouch for (once
        # an authenticated source grounded it), so it is provably wrong (a lock until set).
        behind = vouch.grounded and wall < vouch.at - TOLERANCE
        right = self.why != "unknown" and not self.jumped and not behind
        if right:
            self.high_water = wall if self.high_water is None else max(self.high_water, wall)
            self.last_known_right = wall
            if not was_right:
                self.became_right = True
        self.state = ClockState(
            wall=wall, effective_now=vouch.at, known_right=right, why=self.why,
            behind_record=behind, jumped=self.jumped, last_known_right=self.last_known_right,
            boot_id=self.boot_id, monotonic=mono, vouched_exact=vouch.exact,
            vouched_source=vouch.source, vouched_grounded=vouch.grounded)
        return self.state

    def _observe_vouch(self, wall: datetime, mono: float, sync) -> Vouch:
        """Carry vouched time by the monotonic clock, then let the authenticated sources
        say; note a correction for the record's dates (`take_correction`)."""
        readings = list(_call(self.clock, "time_sources", []) or [])
        readings.append(SourceReading("ntp", False, wall if sync is not None else None,
                                      "the system's NTP client (not authenticated)"))
        readings.append(SourceReading("person", False, wall if self.why == "person" else None,
                                      "`pendock clock set` this boot (sets the date shown)"))
        self.sources = tuple(readings)
        before = vouched.carried(self.vouch, self.boot_id, mono)
        after, moved = vouched.with_sources(before, readings)
        if after.exact and (not before.exact or abs(moved) > vouched.AGREE):
            self.correction = (self.correction or timedelta(0)) + moved
        self.vouch = after
        self._keep_vouch()
        return after

    def take_correction(self) -> timedelta | None:
        """Once, after a trusted source set vouched time: how far it moved it."""
        found, self.correction = self.correction, None
        return found

    def _keep_vouch(self, force: bool = False) -> None:
        kept, now = self._kept, self.vouch
        if self._keep is None:
            return
        if (force or kept is None or kept.exact != now.exact or kept.boot != now.boot
                or abs(now.at - kept.at) >= KEEP_EVERY or now.source != kept.source):
            try:
                self._keep(now)
            except OSError:
                return  # kept at the next look; a lost value only counts less time
            self._kept = now

    def _accept(self, wall: datetime, mono: float, why: str) -> None:
        self._track, self.jumped, self.why = _Mark(wall, mono), False, why

    def confirm(self, why: str = "person") -> ClockState:
        """A person set (or confirmed) the wall clock just now."""
        self._accept(self.clock.now(), self.clock.monotonic(), why)
        self.became_right = True
        return self.observe()

    def take_became_right(self) -> bool:
        """True once after the clock became known right (the dock then re-anchors)."""
        flag, self.became_right = self.became_right and self.state.known_right, False
        return flag

    def confirmation(self) -> dict:
        """What the record keeps of a person's `clock set`, to survive a daemon restart."""
        return {"boot": self.boot_id, "wall": self._track.wall.isoformat(), "mono": self._track.mono}


def _still_confirmed(confirmed: dict | None, boot_id: str, wall: datetime, mono: float) -> bool:
    if not confirmed or confirmed.get("boot") != boot_id or not boot_id:
        return False
    try:
        then = datetime.fromisoformat(str(confirmed["wall"]))
        expected = then + timedelta(seconds=mono - float(confirmed["mono"]))
    except (KeyError, TypeError, ValueError):
        return False
    return abs(wall - expected) <= TOLERANCE


def _call(clock, name: str, default):
    method = getattr(clock, name, None)
    return method() if callable(method) else default


def describe(state: ClockState) -> str:
    """The clock's state in a sentence, for `pendock clock` at the technician's shell (the
    page's words are the rules' descriptions, without commands)."""
    if state.known_right:
        how = {"ntp": "set by NTP", "person": "set by a person this boot"}.get(state.why, state.why)
        return f"known to be right ({how})"
    if state.behind_record:
        return ("NOT known to be right: it reads earlier than the time the dock can vouch for, so the pen is held. "
                "Set the clock: pendock clock set YYYY-MM-DDTHH:MM --reason TEXT (the date shown), "
                "or connect the dock to NTS (chrony) so vouched time follows")
    if state.jumped:
        return ("NOT known to be right: it jumped without the monotonic clock (the rules keep "
                f"vouched time, {state.effective_now.isoformat(timespec='minutes')}). "
                "Set the clock: pendock clock set YYYY-MM-DDTHH:MM --reason TEXT (the date shown), "
                "or connect the dock to NTS (chrony) so vouched time follows")
    return ("NOT known to be right (no NTP since boot, not set by a person). Set the clock: "
            "pendock clock set YYYY-MM-DDTHH:MM --reason TEXT (the date shown), or connect the dock "
            "to NTS (chrony) so vouched time follows")
