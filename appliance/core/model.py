"""Plain values that flow between the dock's parts.

Everything here is immutable data: the hardware shell produces a `PenReading`, the store
produces a `History`, the rules turn them into a `Decision`. No I/O, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

# Fault bit names as the pen reports them (see hw/pen_frame.toml).
FAULTS = ("stall", "overtemp", "chip")

# The pre-session checklist items (docs/clinical-basis.md: screening and a test area first).
CHECKLIST_ITEMS = ("screened", "test-area")


@dataclass(frozen=True)
class PenReading:
    """One valid frame read from the pen, in human units."""

    pen_serial: int
    firmware: str  # "major.minor"
    strokes: int  # lifetime stroke counter
    motor_seconds: int  # lifetime motor seconds
    cartridge_serial: int  # 0 when no cartridge is fitted
    cartridge_strokes: int  # the fitted cartridge's own stroke count
    max_depth_mm: float  # deepest depth set since the last dock
    battery_mv: int
    temperature_c: float
    faults: frozenset[str] = frozenset()  # subset of FAULTS
    frame_version: int = 2
    # Frame v2: the session the pen's session registers (max_depth_mm) belong to, as the
    # dock tagged it with session_open; None for a v1 pen or when none was opened.
    session_tag: int | None = None


# What the dock made of the fitted cartridge's chip (hw/cartridge_auth.toml).
AUTH_VERDICTS = ("authentic", "unauthentic", "unverified")


@dataclass(frozen=True)
class CartridgeAuth:
    """The verdict on one challenge answered by the cartridge's chip.

    "authentic": a trusted maker's certificate and a good signature over this dock's
    fresh nonce; "unauthentic": anything else the chip (or something posing as it) said;
    "unverified": the pen's link does not carry the exchange (a pen from before it).
    """

    verdict: str  # one of AUTH_VERDICTS
    cartridge_id: int | None = None  # from the certificate, once its maker's signature held
    counter: int | None = None  # uses left, as the chip signed it
    maker: str = ""  # the trusted maker whose key signed the certificate
    reason: str = ""  # why it is not authentic, for the technician

    @property
    def authenticated(self) -> bool:
        return self.verdict == "authentic"


@dataclass(frozen=True)
class NextClient:
    """Who the next session is for, as the therapist named them."""

    ref: str  # booking reference, never a name
    area: str
    checklist: frozenset[str] = frozenset()  # subset of CHECKLIST_ITEMS


@dataclass(frozen=True)
class Treatment:
    """An earlier session of one client, as the interval and course rules need it."""

    client_ref: str
    area: str
    started_at: datetime


@dataclass(frozen=True)
class PenRecord:
    """What the store remembers of one pen, by serial."""

    serial: int
    last_strokes: int  # counters of the last valid reading of this pen
    last_motor_seconds: int
    service_motor_seconds: int  # motor seconds at the last service (or first sight)


@dataclass(frozen=True)
class History:
    """The part of the record the rules need for one decision."""

    pen: PenRecord | None = None  # None: a pen never seen before
    cartridge_used_before: bool = False  # this cartridge serial is on an earlier session
    treatments: tuple[Treatment, ...] = ()  # earlier sessions of the named client
    # The lowest use counter this cartridge's chip showed this dock BEFORE the answer being
    # judged (None: never seen). An answer not below it is a reset or cloned chip.
    cartridge_counter_floor: int | None = None
    # Other references treated in the course window (any area), latest session each, that
    # the rules compare for client_ref_similar (found once per naming: appliance/record/history.py).
    similar_treatments: tuple[Treatment, ...] = ()


@dataclass(frozen=True)
class DockState:
    """What the dock knows right now, apart from the record."""

    docked: bool
    reading: PenReading | None = None  # None when not docked or no valid frame
    readout_error: str | None = None  # why the last read failed, if it did
    next_client: NextClient | None = None
    overrides: frozenset[str] = frozenset()  # codes a manager overrode for the next session
    storage_ok: bool = True
    clock_synced: bool = True
    clock_behind_record: bool = False  # the wall clock reads earlier than the record: a lock
    fleet_stale: bool = False  # a clinic's dock that has not heard the broker for too long
    cartridge_auth: CartridgeAuth | None = None  # None: the chip has not been asked yet


@dataclass(frozen=True)
class ClockState:
    """What the dock knows about its wall clock, worked out by the shell (daemon/clockwatch.py).

    The rules never read a clock: they get `effective_now` as their "now" and the flags
    in DockState. A Pi has no real-time clock, so "unknown" is the normal state after a
    power cut until NTP answers or a person sets the clock.
    """

    wall: datetime  # what the wall clock reads: the date shown and written
    effective_now: datetime  # the time the rules use: vouched time (appliance/core/vouched.py)
    known_right: bool  # NTP synced or set by a person this boot, tracking the monotonic clock
    why: str  # "ntp", "person" or "unknown"
    behind_record: bool = False  # reads earlier than what the record already holds
    jumped: bool = False  # moved away from the monotonic clock without a sync or a person
    last_known_right: datetime | None = None
    boot_id: str = ""
    monotonic: float = 0.0
    vouched_exact: bool = False  # an authenticated source set vouched time this boot
    vouched_source: str = ""  # what last set vouched time ("nts", "rtc", "reboot", ...)
    vouched_grounded: bool = False  # vouched time descends from an authenticated source


@dataclass(frozen=True)
class Decision:
    """The rules' answer: locks keep the pen held, warnings are shown and logged."""

    locks: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    overridden: tuple[str, ...] = ()  # locks that an override lifted for this session

    @property
    def held(self) -> bool:
        return bool(self.locks)


@dataclass(frozen=True)
class OpenSession:
    """A session between the pen leaving the cradle and coming back."""

    id: int
    started_at: datetime
    client_ref: str
    area: str
    pen_serial: int
    cartridge_serial: int
    strokes_start: int
    motor_seconds_start: int
    started_monotonic: float  # for durations; never compared across restarts
    warnings: tuple[str, ...] = ()
    overrides: tuple[str, ...] = ()
    checklist: frozenset[str] = frozenset()
    forced: bool = False  # the pen left while held (the technician's key)
    session_tag: int | None = None  # the pen's session registers were zeroed for this session under it
    cartridge_auth: str | None = None  # the chip's verdict when the session started
    cartridge_counter: int | None = None  # and its counter


@dataclass(frozen=True)
class SessionResult:
    """What a closed session adds up to."""

    ended_at: datetime
    needling_seconds: int
    strokes: int
    max_depth_mm: float | None  # None: unmeasured (the pen's registers not tied to this session)
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class EligibleDates:
    next_eligible: date
    recommended: date


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: datetime
    actor: str
    action: str
    detail: dict[str, Any] = field(default_factory=dict)
    clock_synced: bool = True
    prev_hash: str = ""
    hash: str = ""
