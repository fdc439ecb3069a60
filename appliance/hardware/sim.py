"""The simulated pen and clock: the only place where simulation lives.

The pen is a gpiozero `MockSPIDevice` on the pin map's SPI lines that answers the same
frames a real pen does; the seat is the mock pin under the cradle; the wall clock can be
moved on. The daemon, the rules and the store cannot tell this from a Pi: they run the
same code. The pen's state is kept in a small JSON file in the data folder, so a restarted
simulated dock meets the same pen (as a real dock would).
"""
from __future__ import annotations

import json
import os
import random
import re
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gpiozero.pins import SPI
from gpiozero.pins.mock import MockFactory, MockSPIDevice, MockSPIInterface, MockSPIInterfaceShared

from appliance.hardware import frame, session_link, simchip
from appliance.core.inputs import flag
from appliance.core.model import FAULTS, PenReading
from appliance.core.reason_facts import BATTERY_FULL_MV, CRADLE_CHARGE_MV_PER_MINUTE
from appliance.hardware.pinmap import PinMap

STROKES_PER_SECOND = 120  # a typical pen runs at 120 strokes a second
FAULT_NAMES = ("crc", "stall", "overtemp", "battery-low", "chip")


class SimRefused(Exception):
    """The simulated pen cannot do that (the latch is real, even here)."""


class SimUsage(ValueError):
    """A sim verb's arguments are wrong."""


def parse_duration(text: str) -> float:
    """'90m', '21d', '2h', '30s', '-1d' -> seconds."""
    match = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*([smhd])\s*", str(text))
    if not match:
        raise SimUsage(f"duration {text!r} is not understood: use a number and a unit, e.g. 90m, 21d, 2h, 30s")
    number, unit = float(match.group(1)), match.group(2)
    return number * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


MAX_OFFSET_S = 100 * 366 * 86400  # the simulated clock stays within a century of the real one


class SimClock:
    """A wall clock and a monotonic clock that can be moved on together (or the wall alone).

    Each SimClock is one simulated boot: its own boot id, its monotonic clock from zero.
    `synced` and `sync_mark` play systemd-timesyncd: each --sync is a new synchronisation.
    """

    def __init__(self, tz: ZoneInfo, *, wall_offset: float = 0.0, mono_offset: float = 0.0, synced: bool = True):
        self.tz = tz
        self.wall_offset = wall_offset
        self.mono_offset = mono_offset
        self._mono_zero = time.monotonic()
        self._boot_id = f"sim-{uuid.uuid4()}"
        self._syncs = 1
        self.is_synced = synced
        self.authenticated = False  # the wall clock set by an authenticated source (NTS) this boot

    def now(self) -> datetime:
        return datetime.now(self.tz) + timedelta(seconds=self.wall_offset)

    def monotonic(self) -> float:
        return time.monotonic() - self._mono_zero + self.mono_offset

    def boot_id(self) -> str:
        return self._boot_id

    def synced(self) -> bool:
        return self.is_synced

    def sync_mark(self) -> int | None:
        return self._syncs if self.is_synced else None

    def set_synced(self, synced: bool, authenticated: bool = False) -> None:
        """--sync is a new synchronisation (as timesyncd touching its flag); --unsync loses it.
        --sync --authenticated: the wall clock now reads what an authenticated source (NTS)
        says, until the wall clock alone jumps or the synchronisation is lost."""
        if synced:
            self._syncs += 1
        self.is_synced = synced
        self.authenticated = synced and authenticated

    def time_sources(self) -> list:
        """The sources beside plain NTP, as the real clock gives them (hardware/clock.py)."""
        from appliance.core.vouched import SourceReading

        return [SourceReading("nts", True, self.now() if self.authenticated else None,
                              "simulated NTS (sim clock --sync --authenticated)")]

    def set_wall(self, moment: datetime) -> None:
        """`pendock clock set` under the demo: the simulated wall clock reads `moment` now."""
        offset = (moment - datetime.now(self.tz)).total_seconds()
        self._check_offset(offset)
        self.wall_offset = offset
        self.authenticated = False  # a person's time, not the authenticated source's

    def advance(self, seconds: float) -> None:
        """Time passes: both clocks move."""
        if seconds < 0:
            raise SimUsage("time only moves forward with --advance; use --jump to set the wall clock back")
        self._check_offset(self.wall_offset + seconds)
        self.wall_offset += seconds
        self.mono_offset += seconds

    def jump(self, seconds: float) -> None:
        """Only the wall clock jumps (a bad RTC-less boot, a wrong NTP answer)."""
        self._check_offset(self.wall_offset + seconds)
        self.wall_offset += seconds
        self.authenticated = False  # the jumped wall clock is no longer what NTS said

    @staticmethod
    def _check_offset(offset: float) -> None:
        if abs(offset) > MAX_OFFSET_S:
            raise SimUsage(f"the simulated clock would be {abs(offset) / 86400:.0f} days off the real one; "
                           f"it stays within {MAX_OFFSET_S // 86400} days (nothing was changed)")


@dataclass
class PenState:
    """Everything the simulated pen would report, in human units."""

    pen_serial: int = 0x5EED0001
    firmware: str = "1.4"
    strokes: int = 250_000
    motor_seconds: int = 36_000
    cartridge_serial: int = 0
    cartridge_strokes: int = 0
    max_depth_mm: float = 0.0
    battery_mv: int = 4050
    temperature_c: float = 24.5
    faults: list = field(default_factory=list)  # subset of FAULTS
    crc_fault: str = ""  # "", "persistent" or "intermittent"
    docked: bool = True
    frame_version: int = frame.FRAME_VERSION  # 1: an older pen, without session registers
    session_tag: int = 0  # the tag of the last session-open it took; 0 = none
    # The fitted cartridge's simulated chip (appliance/hardware/simchip.py); false
    # chip_link: a pen whose link has no chip exchange (firmware from before it).
    chip_link: bool = True
    chip: dict = field(default_factory=dict)
    chip_counters: dict = field(default_factory=dict)  # genuine serial -> counter, for refits
    charge_carry_mv: float = 0.0  # the part of a millivolt the charger put in, not reported yet

    def charge(self, seconds: float) -> None:
        """The cradle's charger (hw/README "Charging") while the pen is seated: the cell rises
        at CRADLE_CHARGE_MV_PER_MINUTE up to full; out of the cradle nothing charges it."""
        if not self.docked or self.battery_mv >= BATTERY_FULL_MV:
            self.charge_carry_mv = 0.0
            return
        gained = self.charge_carry_mv + CRADLE_CHARGE_MV_PER_MINUTE * seconds / 60
        whole = int(gained)
        self.battery_mv = min(BATTERY_FULL_MV, self.battery_mv + whole)
        self.charge_carry_mv = gained - whole if self.battery_mv < BATTERY_FULL_MV else 0.0

    def open_session(self, tag: int) -> bool:
        """A session-open from the dock: zero the session registers, keep the tag. A
        version-1 pen does not know the command and ignores it."""
        if self.frame_version < 2:
            return False
        self.max_depth_mm = 0.0
        self.session_tag = tag
        return True

    def reading(self) -> PenReading:
        return PenReading(
            frame_version=self.frame_version,
            session_tag=(self.session_tag or None) if self.frame_version >= 2 else None,
            pen_serial=self.pen_serial, firmware=self.firmware, strokes=self.strokes,
            motor_seconds=self.motor_seconds, cartridge_serial=self.cartridge_serial,
            cartridge_strokes=self.cartridge_strokes, max_depth_mm=self.max_depth_mm,
            battery_mv=self.battery_mv, temperature_c=self.temperature_c,
            faults=frozenset(self.faults),
        )


class SimulatedPen(MockSPIDevice):
    """The pen's SPI slave: after the read command it clocks out one frame."""

    def __init__(self, pinmap: PinMap, state: PenState, *, pin_factory: MockFactory):
        spi = pinmap.spi
        # The pen's side of the bus speaks the map's SPI mode, as a real pen's slave must.
        super().__init__(
            spi.clock, spi.mosi, spi.miso, spi.select, clock_polarity=bool(spi.mode & 2),
            clock_phase=bool(spi.mode & 1), pin_factory=pin_factory,
        )
        self.state = state
        self.reads = 0
        self.intermittent_from = 0  # the read count when an intermittent CRC fault was set
        self._lock = threading.Lock()
        self._factory = pin_factory
        self.chip_side = simchip.PenChipSide()

    def frame_bytes(self) -> bytes:
        data = bytearray(frame.encode(self.state.reading()))
        # Intermittent: every other read from the one after the fault was set, so the first
        # read after `sim fault crc-intermittent` is always a bad one, however many came before.
        corrupt = self.state.crc_fault == "persistent" or (
            self.state.crc_fault == "intermittent" and (self.reads - self.intermittent_from) % 2 == 0
        )
        if corrupt:
            data[-1] ^= 0x5A
        return bytes(data)

    def forget_pin_history(self) -> None:
        """gpiozero's MockPin keeps every state change for tests' assert_states; the SPI
        clock alone adds hundreds per frame, so a long-running demo grew ~0.3 MB a
        session. Nothing here asserts them: keep none."""
        for pin in list(self._factory.pins.values()):
            pin.clear_states()

    def take_session_open(self) -> bool:
        """After the session-open's last bit: a good one zeroes the session registers.
        True when these bits were a session-open (good or not), so nothing else reads them."""
        length = session_link.SESSION_OPEN.length
        received = self.rx_word().to_bytes(length, "big")
        if received[0] != session_link.SESSION_OPEN.command:
            return False
        tag = session_link.parse(received)
        if tag is not None and self.state.docked:
            with self._lock:
                self.state.open_session(tag)
        return True

    def on_bit(self):
        if self.rx_bit == 8 * session_link.SESSION_OPEN.length and self.take_session_open():
            return
        if self.rx_bit == 8 and self.rx_word() == frame.READ_COMMAND:
            self.forget_pin_history()
            with self._lock:
                reply = self.frame_bytes() if self.state.docked else b""
                self.reads += 1
            for byte in reply:
                self.tx_word(byte)
        elif self.state.docked:
            self.chip_side.on_bit(self, self.state)


class SimulatedHardwareSPI(SPI):
    """The pen link as a Pi's hardware SPI does it (spidev): whole transfers, a mode and a
    rate the dock sets, and no bit-banging on the CPU.

    gpiozero's mock factory bit-bangs SPI over mock pins, toggling the clock pin in Python
    for each of the 392 bits of a read: about 2.5 ms of CPU a frame, which on a tenth of a
    core (quality bar P10) is the simulation, not the dock, eating the dock's budget. On a
    Pi the SPI controller does that work. Here the simulated pen on the chip select line
    (a MockSPIDevice) sees the same bits in the same order through the same `on_start`,
    `rx_buf`, `tx_buf` and `on_bit`, without the pins being toggled. A mode that does not
    match the pen's reads as garbage (all 0xFF), as on a real bus.
    """

    def __init__(self, clock_pin, mosi_pin, miso_pin, select_pin, *, pin_factory):
        super().__init__(pin_factory=pin_factory)
        self._select_pin = select_pin
        self._mode = 0
        self._rate = 500_000  # spidev's default, as LocalPiHardwareSPI sets it
        self._lock = threading.Lock()
        self._closed = False

    def _pen(self) -> MockSPIDevice | None:
        """The simulated pen on our chip select line, if one is (MockSPIDevice puts itself there)."""
        for info, pin in self.pin_factory.pins.items():
            if self._select_pin in getattr(info, "names", ()):  # "GPIO8" as gpiozero passes it
                return getattr(pin, "spi_device", None)
        return None

    def transfer(self, data):
        pen = self._pen()
        with self._lock:
            if pen is None:
                return [0] * len(data)  # nothing on the bus: MISO reads low
            pen.on_start()  # chip select asserted
            received = []
            for word in data:
                read = 0
                for shift in range(7, -1, -1):
                    pen.rx_bit += 1
                    pen.rx_buf.append(bool(word >> shift & 1))
                    read = read << 1 | bool(pen.tx_buf.pop(0) if pen.tx_buf else 0)
                    pen.on_bit()
                received.append(read)
        if (bool(self._mode & 2), bool(self._mode & 1)) != (pen.clock_polarity, pen.clock_phase):
            return [0xFF] * len(data)  # the two ends sample on different edges
        return received

    def close(self):
        self._closed = True
        super().close()

    @property
    def closed(self):
        return self._closed

    def _get_clock_mode(self):
        return self._mode

    def _set_clock_mode(self, value):
        if not 0 <= value < 4:
            raise ValueError(f"{value} is not an SPI mode")
        self._mode = value

    def _get_rate(self):
        return self._rate

    def _set_rate(self, value):
        self._rate = int(value)


class SimFactory(MockFactory):
    """gpiozero's mock factory, with the hardware SPI pins as a hardware SPI bus (as a Pi's
    factory gives them) instead of bit-banged mock pins; every other pin is a mock pin."""

    def _get_spi_class(self, shared, hardware):
        if hardware:
            return SimulatedHardwareSPI
        return MockSPIInterfaceShared if shared else MockSPIInterface


class Simulator:
    """The simulated pen in its cradle, and the sim verbs of `pendock sim`.

    Build it on a `MockFactory` BEFORE the dock's devices, so the SPI clock pin is the
    mock SPI kind; then `register(server, dock)` adds the sim verbs to the control socket.
    """

    def __init__(self, pinmap: PinMap, factory: MockFactory, clock: SimClock, state_file: Path | None = None,
                 chips: simchip.SimChips | None = None):
        self.pinmap = pinmap
        self.chips = chips or simchip.SimChips()  # the maker of the genuine simulated cartridges
        self.clock = clock
        self.state_file = state_file
        self.pen = SimulatedPen(pinmap, self._load_state(), pin_factory=factory)
        seat = pinmap.pins["seat"]
        self.seat_pin = factory.pin(seat.bcm)
        self._seat_active_low = not seat.active_high
        self._drive_seat(self.pen.state.docked)

    # -- persistence -------------------------------------------------------------
    def _load_state(self) -> PenState:
        if self.state_file and self.state_file.exists():
            try:
                saved = json.loads(self.state_file.read_text())
                clock = saved.pop("_clock", {})
                self.clock.wall_offset = float(clock.get("wall_offset", 0.0))
                self.clock.is_synced = bool(clock.get("synced", True))
                state = PenState(**saved)
                if state.cartridge_serial and not state.chip:  # a state file from before chips
                    state.chip = self.chips.genuine(state.cartridge_serial)
                return state
            except (ValueError, TypeError):
                pass  # a broken sim file: start a fresh pen, the dock will notice the swap
        return PenState()

    def save(self) -> None:
        if not self.state_file:
            return
        data = asdict(self.pen.state)
        data["_clock"] = {"wall_offset": self.clock.wall_offset, "synced": self.clock.is_synced}
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.state_file)

    # -- the physical world --------------------------------------------------------
    def _drive_seat(self, docked: bool) -> None:
        # The hall switch pulls its line to its active level while the pen is seated.
        active = docked
        level_high = (not active) if self._seat_active_low else active
        if level_high:
            self.seat_pin.drive_high()
        else:
            self.seat_pin.drive_low()

    def bounce_seat(self, final: bool, flips: int = 6, gap_s: float = 0.002) -> None:
        """A pen rocking in the cradle: the switch chatters, then rests at `final`."""
        for i in range(flips):
            self._drive_seat(i % 2 == 0)
            time.sleep(gap_s)
        self.pen.state.docked = final
        self._drive_seat(final)

    def dock(self) -> None:
        self.pen.state.docked = True
        self._drive_seat(True)

    def undock(self, *, latch_held: bool, force: bool = False) -> bool:
        """Lift the pen; True when it was forced out past the held latch (the technician's
        key), which the dock must record as a forced removal."""
        if not self.pen.state.docked:
            raise SimRefused("the pen is not in the cradle (it was lifted already)")
        if latch_held and not force:
            raise SimRefused(
                "the latch holds the pen, so it cannot be lifted: clear the reasons shown by "
                "`pendock status`, or use --force (the technician's key; the dock records it)"
            )
        self.pen.state.docked = False
        self._drive_seat(False)
        forced_past_latch = latch_held and force
        return forced_past_latch

    def fit_cartridge(self, serial: int | None = None, strokes: int = 0, *, forged: bool = False,
                      clone_of: int | None = None) -> int:
        """A genuine cartridge (refitting serial S brings back S's chip, counter and all),
        a forged one, or a clone of genuine cartridge `clone_of` (which reports its serial)."""
        if clone_of is not None:
            if serial is not None or forged:
                raise SimUsage("--clone-of SERIAL takes the serial of the copied cartridge: no --serial or --forged with it")
            serial = clone_of
        if serial is None:
            serial = random.randint(1, 0xFFFFFFFF)
        if not 1 <= serial <= 0xFFFFFFFF:
            raise SimUsage(f"cartridge serial {serial} is out of range: use 1 to {0xFFFFFFFF}")
        if strokes < 0:
            raise SimUsage("cartridge strokes cannot be negative")
        state = self.pen.state
        if clone_of is not None:
            chip = self.chips.clone_of(serial)
        elif forged:
            chip = self.chips.forged(serial)
        else:
            chip = self.chips.genuine(serial, counter=state.chip_counters.get(str(serial)))
        state.cartridge_serial, state.cartridge_strokes, state.chip = serial, strokes, chip
        return serial

    def remove_cartridge(self) -> None:
        self.pen.state.cartridge_serial = 0
        self.pen.state.cartridge_strokes = 0
        self.pen.state.chip = {}

    def reset_counter(self) -> int:
        """A remanufacturer's work on the fitted cartridge: its chip's use counter back to
        new and its stroke count to zero."""
        state = self.pen.state
        if not state.cartridge_serial or not state.chip:
            raise SimRefused("no cartridge is fitted: fit one first (`pendock sim cartridge`)")
        serial = state.cartridge_serial
        state.cartridge_strokes = 0
        state.chip = self.chips.genuine(serial) if state.chip.get("kind") == "genuine" else {
            **state.chip, "counter": simchip.DEFAULT_USES}
        state.chip_counters.pop(str(serial), None)
        return serial

    def pass_time(self, seconds: float) -> None:
        """`sim clock --advance`: both clocks move on, and a seated pen charges meanwhile."""
        self.clock.advance(seconds)
        with self.pen._lock:
            self.pen.state.charge(seconds)

    def needle(self, minutes: float, depth_mm: float | None = None, strokes: int | None = None) -> None:
        state = self.pen.state
        if state.docked:
            raise SimRefused("the pen is in the cradle: lift it first (`pendock sim undock`)")
        if minutes <= 0:
            raise SimUsage("--minutes must be more than 0")
        if state.cartridge_serial == 0:
            raise SimRefused("no cartridge is fitted: the pen cannot needle")
        seconds = round(minutes * 60)
        if strokes is None:
            strokes = seconds * STROKES_PER_SECOND
        if strokes < 0:
            raise SimUsage("--strokes cannot be negative")
        if depth_mm is not None:
            if not 0 < depth_mm <= 3.0:
                raise SimUsage("--depth must be between 0 and 3.0 mm")
            state.max_depth_mm = max(state.max_depth_mm, depth_mm)
        state.motor_seconds += seconds
        state.strokes += strokes
        state.cartridge_strokes += strokes
        self.clock.advance(seconds)

    def set_fault(self, name: str) -> None:
        state = self.pen.state
        if name == "clear":
            state.faults, state.crc_fault, state.battery_mv = [], "", 4050
        elif name == "crc":
            state.crc_fault = "persistent"
        elif name == "crc-intermittent":
            state.crc_fault = "intermittent"
            self.pen.intermittent_from = self.pen.reads
        elif name == "battery-low":
            state.battery_mv = 3300
        elif name in FAULTS:
            state.faults = sorted(set(state.faults) | {name})
        else:
            raise SimUsage(
                f"unknown fault {name!r}: use one of {', '.join(FAULT_NAMES)}, crc-intermittent, or clear"
            )

    # -- the sim verbs on the control socket --------------------------------------
    def register(self, server, dock) -> None:
        """Add the `pendock sim` verbs to the daemon's control server."""
        # The dock's seat input set its pull when it was built; put the pen back where it is.
        self._drive_seat(self.pen.state.docked)

        def settled(result: dict) -> dict:
            self.save()
            dock.settle()
            result["status"] = dock.status()
            return result

        def sim_dock(args, peer):
            if flag(args, "bounce"):
                self.bounce_seat(True)
            else:
                self.dock()
            return settled({"done": "pen seated"})

        def sim_undock(args, peer):
            with dock.lock:  # the latch holds or the pen leaves: one moment, as in the cradle
                forced = self.undock(latch_held=dock.hw.latch.is_held, force=flag(args, "force"))
            if forced:
                dock.note_forced_removal(peer)
            return settled({"done": "pen lifted" + (" with the technician's key" if forced else "")})

        def sim_cartridge(args, peer):
            if flag(args, "remove"):
                self.remove_cartridge()
                return settled({"done": "cartridge removed"})
            fitted = self.pen.state.cartridge_serial
            if flag(args, "reset_counter"):
                serial = self.reset_counter()
                done = f"cartridge {serial} taken off, its chip's counter reset, fitted again"
            else:
                clone_of = _int_arg(args, "clone_of")
                serial = self.fit_cartridge(_int_arg(args, "serial"), _int_arg(args, "strokes") or 0,
                                            forged=flag(args, "forged"), clone_of=clone_of)
                kind = "forged " if flag(args, "forged") else f"clone of {clone_of}, " if clone_of else ""
                done = f"{kind}cartridge {serial} fitted"
            if serial == fitted:
                # The same serial again means the cartridge came off and back on: show the
                # dock the empty pen in between, as the pen's own contacts would.
                chip, strokes = self.pen.state.chip, self.pen.state.cartridge_strokes
                self.remove_cartridge()
                dock.settle()
                self.pen.state.cartridge_serial, self.pen.state.cartridge_strokes = serial, strokes
                self.pen.state.chip = chip
            return settled({"done": done, "cartridge_serial": serial})

        def sim_needle(args, peer):
            minutes = args.get("minutes")
            if minutes is None:
                raise SimUsage("needle needs --minutes M")
            try:
                minutes = float(minutes)
                depth = None if args.get("depth") is None else float(args["depth"])
            except (TypeError, ValueError):
                raise SimUsage("--minutes and --depth take numbers, e.g. --minutes 25 --depth 1.0") from None
            self.needle(minutes, depth, _int_arg(args, "strokes"))
            return settled({"done": f"needled for {minutes:g} minutes"})

        def sim_fault(args, peer):
            self.set_fault(str(args.get("name", "")))
            return settled({"done": f"fault {args.get('name')}"})

        def sim_clock(args, peer):
            if args.get("advance") is not None:
                self.pass_time(parse_duration(args["advance"]))
            elif args.get("jump") is not None:
                self.clock.jump(parse_duration(args["jump"]))
            elif args.get("synced") is not None:
                self.clock.set_synced(flag(args, "synced"), flag(args, "authenticated"))
            else:
                raise SimUsage("clock needs --advance DURATION (or --jump DURATION, --unsync, --sync)")
            return settled({"done": "clock moved", "now": self.clock.now().isoformat()})

        for name, handler in (
            ("sim.dock", sim_dock), ("sim.undock", sim_undock), ("sim.cartridge", sim_cartridge),
            ("sim.needle", sim_needle), ("sim.fault", sim_fault), ("sim.clock", sim_clock),
        ):
            server.register(name, handler, errors={SimRefused: "refused", SimUsage: "usage"})


def _int_arg(args: dict, key: str) -> int | None:
    value = args.get(key)
    if value is None:
        return None
    try:
        return int(str(value), 0)
    except ValueError:
        raise SimUsage(f"--{key.replace('_', '-')} takes a whole number, got {value!r}") from None
