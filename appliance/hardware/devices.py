"""The dock's hardware, as gpiozero devices built from the pin map in hw/.

Whatever pin factory the devices are given (lgpio or RPi.GPIO on a Pi, the mock factory off it)
drives the same classes: the simulation lives in the pin factory, not here. Every pin
number comes from hw/pinmap.toml through `PinMap`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from gpiozero import (
    LED,
    Buzzer,
    Button,
    DigitalInputDevice,
    DigitalOutputDevice,
    SPIDevice,
)
from gpiozero.exc import SPIFixedRate

from appliance.hardware import chipauth, frame, session_link
from appliance.core.model import PenReading
from appliance.hardware.pinmap import PinMap, PinSpec, SpiSpec

# Light colours (r, g, b) by meaning. Amber: held for a reason the therapist can fix;
# red: held for a fault or a never-overridable reason; green: released; blue: service.
COLOURS = {
    "off": (0, 0, 0),
    "green": (0, 1, 0),
    "amber": (1, 1, 0),  # red + green: on/off pins cannot mix a true amber
    "red": (1, 0, 0),
    "blue": (0, 0, 1),
    "white": (1, 1, 1),
}


def active_state(pull_up: bool | None, active_high: bool) -> bool | None:
    """gpiozero's `active_state`: only an input without an internal pull takes one (with a
    pull, gpiozero derives it: pulled up is active low). The pin map has checked they agree."""
    return active_high if pull_up is None else None


def input_active_state(spec: PinSpec) -> bool | None:
    return active_state(spec.pull_up, spec.active_high)


class PenLinkError(Exception):
    """No valid frame from the pen after the retries; the message says why."""


class Latch:
    """The solenoid that holds the pen. De-energised means held.

    Only `release()` energises it; `hold()` is the answer to everything else, including
    an exception in the caller (use it as a context manager) and closing.
    """

    def __init__(self, pin: int, *, active_high: bool = True, pin_factory=None):
        self._device = DigitalOutputDevice(
            pin, active_high=active_high, initial_value=False, pin_factory=pin_factory
        )

    @property
    def is_held(self) -> bool:
        return not self._device.value

    @property
    def pin(self):
        return self._device.pin

    def hold(self) -> None:
        self._device.off()

    def release(self) -> None:
        self._device.on()

    def __enter__(self) -> "Latch":
        return self

    def __exit__(self, *exc) -> None:
        self.hold()

    def close(self) -> None:
        if not self._device.closed:
            self.hold()
            self._device.close()


class SeatSensor:
    """The hall-effect switch under the cradle, debounced.

    gpiozero's bounce time drops the contact chatter of an edge; `settled()` then asks
    that the level has stayed put for `settle_s`, so a pen rocking in the cradle gives
    one dock and one undock, not a burst of them.
    """

    def __init__(self, pin: int, *, pull_up: bool | None, active_high: bool = False, settle_s: float = 0.05,
                 pin_factory=None, clock: Callable[[], float] = time.monotonic):
        self._device = DigitalInputDevice(
            pin, pull_up=pull_up, active_state=active_state(pull_up, active_high), bounce_time=None,
            pin_factory=pin_factory,
        )
        self.settle_s = settle_s
        self._clock = clock  # monotonic; a test holds it still while the switch chatters
        self._lock = threading.Lock()
        self._level = self._device.is_active
        self._since = clock()
        self.changed = threading.Event()
        self._device.when_activated = self._edge
        self._device.when_deactivated = self._edge

    @property
    def pin(self):
        return self._device.pin

    def _edge(self, *_):
        with self._lock:
            self._level = self._device.is_active
            self._since = self._clock()
        self.changed.set()

    def raw(self) -> bool:
        return self._device.is_active

    def settled(self) -> bool | None:
        """True/False once the level has been steady for settle_s, else None."""
        with self._lock:
            level = self._device.is_active
            if level != self._level:  # an edge the callback has not seen yet
                self._level, self._since = level, self._clock()
            if self._clock() - self._since >= self.settle_s:
                return level
            return None

    def seconds_to_settle(self) -> float:
        with self._lock:
            return max(0.0, self.settle_s - (self._clock() - self._since))

    def close(self) -> None:
        self._device.close()


class StatusLight:
    """The RGB status light; `show('amber')` and friends.

    Three on/off outputs, not gpiozero's RGBLED: that takes one polarity for all three
    pins, and the pin map gives each colour its own.
    """

    def __init__(self, red: int, green: int, blue: int, *, active_high: bool | tuple[bool, bool, bool] = True,
                 pin_factory=None):
        polarities = (active_high,) * 3 if isinstance(active_high, bool) else tuple(active_high)
        self._leds: list[LED] = []
        try:
            for pin, high in zip((red, green, blue), polarities, strict=True):
                self._leds.append(LED(pin, active_high=high, initial_value=False, pin_factory=pin_factory))
        except BaseException:
            self.close()
            raise
        self.colour = "off"

    @property
    def pins(self):
        return tuple(led.pin for led in self._leds)  # red, green, blue

    def show(self, colour: str) -> None:
        for led, on in zip(self._leds, COLOURS[colour], strict=True):
            led.value = on
        self.colour = colour

    def close(self) -> None:
        for led in self._leds:
            led.close()


class PenLink(SPIDevice):
    """The pen's SPI slave behind the pogo contacts (see hw/pen_frame.toml).

    `read_raw()` does one transaction; `read()` retries a bad frame a few times and
    raises `PenLinkError` naming the last fault, so the caller holds the pen.
    """

    def __init__(self, *, retries: int = 3, mode: int = 0, max_hz: int | None = None, **spi_args):
        super().__init__(**spi_args)
        self.retries = retries
        try:
            self._spi.clock_mode = mode
            self.rate_hz = self._apply_rate(max_hz)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_spec(cls, spi: SpiSpec, *, retries: int = 3, pin_factory=None) -> "PenLink":
        """The link as the pin map's [spi] table says: its lines, mode and speed."""
        return cls(
            retries=retries, mode=spi.mode, max_hz=spi.max_hz, clock_pin=spi.clock, mosi_pin=spi.mosi,
            miso_pin=spi.miso, select_pin=spi.select, pin_factory=pin_factory,
        )

    def _apply_rate(self, max_hz: int | None) -> int | None:
        """Clock the bus at most at `max_hz`. A bit-banged bus has no rate to set (gpiozero
        raises SPIFixedRate): it runs well below the pen's limit anyway; then None."""
        if max_hz is None:
            return None
        try:
            self._spi.rate = max_hz
        except SPIFixedRate:
            return None
        return self._spi.rate

    @property
    def clock_mode(self) -> int:
        return self._spi.clock_mode

    def transfer(self, request: bytes) -> bytes:
        """One full-duplex transaction: clock out `request`, return what came in."""
        return bytes(self._spi.transfer(list(request)))

    def read_raw(self) -> bytes:
        """One read transaction, exactly as hw/pen_frame.toml's [transaction] defines it."""
        return frame.frame_from_transfer(self.transfer(frame.read_request()))

    def open_session(self, tag: int) -> None:
        """Tell the pen a session opens under `tag`: it zeroes its session registers (frame
        v2). The pen answers nothing; the next read shows whether the tag took."""
        self.transfer(session_link.request(tag))

    def read(self) -> PenReading:
        last_error: Exception | None = None
        for _ in range(1 + self.retries):
            try:
                return frame.decode(self.read_raw())
            except frame.UnknownVersionError:
                raise  # retrying cannot teach the dock a new frame version
            except frame.FrameError as error:
                last_error = error
        raise PenLinkError(f"no valid pen frame after {1 + self.retries} reads: {last_error}")

    # -- the cartridge chip exchange (hw/cartridge_auth.toml) -------------------------------
    def challenge_chip(self, challenge: bytes) -> bytes:
        """Send the challenge frame, then read the chip's answer; read again while the chip
        is busy signing or the answer came damaged. The raw answer goes to
        `chipauth.verify`, which judges it (a blank one: a pen without the exchange)."""
        spec = chipauth.SPEC
        self.transfer(bytes([spec.challenge_command]) + bytes(challenge))
        answer, damaged = b"", 0
        for _ in range(spec.busy_polls):
            answer = self.read_chip_answer()
            if chipauth.blank_answer(answer):
                return answer
            try:
                if chipauth.answer_status(answer) != "busy":
                    return answer
            except chipauth.AnswerCrcError:
                damaged += 1
                if damaged > self.retries:
                    return answer
                continue
            except chipauth.AnswerError:
                return answer
            time.sleep(spec.busy_wait_s)
        return answer

    def read_chip_answer(self) -> bytes:
        spec = chipauth.SPEC
        response = self.transfer(bytes([spec.answer_command] + [spec.answer_dummy] * chipauth.ANSWER_LENGTH))
        offset = spec.response_offset
        return bytes(response[offset:offset + chipauth.ANSWER_LENGTH])


@dataclass
class DockHardware:
    """Every device of the dock, built from the pin map; closing holds the latch."""

    pinmap: PinMap
    seat: SeatSensor
    latch: Latch
    light: StatusLight
    buzzer: Buzzer
    button: Button
    pen: PenLink

    @classmethod
    def from_pinmap(cls, pinmap: PinMap, *, retries: int = 3, pin_factory=None) -> "DockHardware":
        p = pinmap.pins
        made: list = []
        try:
            latch = Latch(p["latch"].bcm, active_high=p["latch"].active_high, pin_factory=pin_factory)
            made.append(latch)
            seat = SeatSensor(
                p["seat"].bcm, pull_up=p["seat"].pull_up, active_high=p["seat"].active_high,
                pin_factory=pin_factory,
            )
            made.append(seat)
            colours = (p["light_red"], p["light_green"], p["light_blue"])
            light = StatusLight(
                *(spec.bcm for spec in colours),
                active_high=(colours[0].active_high, colours[1].active_high, colours[2].active_high),
                pin_factory=pin_factory,
            )
            made.append(light)
            buzzer = Buzzer(p["buzzer"].bcm, active_high=p["buzzer"].active_high, pin_factory=pin_factory)
            made.append(buzzer)
            button = Button(
                p["button"].bcm, pull_up=p["button"].pull_up,
                active_state=input_active_state(p["button"]), bounce_time=0.05, pin_factory=pin_factory,
            )
            made.append(button)
            pen = PenLink.from_spec(pinmap.spi, retries=retries, pin_factory=pin_factory)
        except BaseException:
            for device in reversed(made):
                device.close()
            raise
        return cls(pinmap, seat, latch, light, buzzer, button, pen)

    @property
    def factory_name(self) -> str:
        """Which pin library drives the pins (lgpio, RPi.GPIO, mock), for `pendock status`."""
        return type(self.seat.pin.factory).__name__

    def beep(self, times: int = 1, on_s: float = 0.08) -> None:
        """Short beeps in the background, so the caller never waits on the buzzer."""
        self.buzzer.beep(on_time=on_s, off_time=on_s, n=times, background=True)

    def levels(self) -> list[dict]:
        """Every pin of the map with its live level, for `pendock pins`."""
        factory = self.seat.pin.factory  # the one the devices were given, not a global
        by_role = {
            "seat": self.seat.pin, "latch": self.latch.pin, "buzzer": self.buzzer.pin,
            "button": self.button.pin,
        }
        by_role.update(zip(("light_red", "light_green", "light_blue"), self.light.pins, strict=True))
        rows = []
        for role, spec in self.pinmap.pins.items():
            pin = by_role.get(role)
            rows.append({
                "role": role, "bcm": spec.bcm, "direction": spec.direction,
                "active": "high" if spec.active_high else "low",
                "level": None if pin is None else int(bool(pin.state)),
                "what": spec.what,
            })
        spi = self.pinmap.spi
        for role in ("clock", "mosi", "miso", "select"):
            bcm = getattr(spi, role)
            level = None  # a hardware SPI line has no level we may read without disturbing it
            for info, pin in getattr(factory, "pins", {}).items():
                if getattr(info, "name", None) == f"GPIO{bcm}":
                    level = int(bool(pin.state))
            rows.append({
                "role": f"spi_{role}", "bcm": bcm, "direction": "spi", "active": "-",
                "level": level, "what": f"pen link SPI{spi.port}.{spi.device} {role}",
            })
        return rows

    def close(self) -> None:
        """Hold the latch first, then let go of every pin."""
        for device in (self.latch, self.pen, self.light, self.buzzer, self.button, self.seat):
            try:
                device.close()
            except Exception:
                pass
