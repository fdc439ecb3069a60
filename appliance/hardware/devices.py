"""The dock's hardware, as gpiozero devices built from the pin map in hw/.

Whatever pin factory the devices are given (lgpio or RPi.GPIO on a Pi, the mock factory off it)
drives the same classes: the simulation lives in the pin factory, not here. Every pin
number comes from hw/pinmap.toml through `PinMap`.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from gpiozero import (
    Buzzer,
    Button,
    DigitalInputDevice,
    DigitalOutputDevice,
    RGBLED,
    SPIDevice,
)

from appliance.hardware import frame
from appliance.core.model import PenReading
from appliance.hardware.pinmap import PinMap

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

    def __init__(self, pin: int, *, pull_up: bool, settle_s: float = 0.05, pin_factory=None):
        self._device = DigitalInputDevice(
            pin, pull_up=pull_up, bounce_time=None, pin_factory=pin_factory
        )
        self.settle_s = settle_s
        self._lock = threading.Lock()
        self._level = self._device.is_active
        self._since = time.monotonic()
        self.changed = threading.Event()
        self._device.when_activated = self._edge
        self._device.when_deactivated = self._edge

    @property
    def pin(self):
        return self._device.pin

    def _edge(self, *_):
        with self._lock:
            self._level = self._device.is_active
            self._since = time.monotonic()
        self.changed.set()

    def raw(self) -> bool:
        return self._device.is_active

    def settled(self) -> bool | None:
        """True/False once the level has been steady for settle_s, else None."""
        with self._lock:
            level = self._device.is_active
            if level != self._level:  # an edge the callback has not seen yet
                self._level, self._since = level, time.monotonic()
            if time.monotonic() - self._since >= self.settle_s:
                return level
            return None

    def seconds_to_settle(self) -> float:
        with self._lock:
            return max(0.0, self.settle_s - (time.monotonic() - self._since))

    def close(self) -> None:
        self._device.close()


class StatusLight:
    """The RGB status light; `show('amber')` and friends."""

    def __init__(self, red: int, green: int, blue: int, *, active_high: bool = True, pin_factory=None):
        self._device = RGBLED(
            red, green, blue, active_high=active_high, pwm=False, pin_factory=pin_factory
        )
        self.colour = "off"

    @property
    def pins(self):
        return tuple(led.pin for led in self._device._leds)  # red, green, blue

    def show(self, colour: str) -> None:
        self._device.value = COLOURS[colour]
        self.colour = colour

    def close(self) -> None:
        self._device.close()


class PenLink(SPIDevice):
    """The pen's SPI slave behind the pogo contacts (see hw/pen_frame.toml).

    `read_raw()` does one transaction; `read()` retries a bad frame a few times and
    raises `PenLinkError` naming the last fault, so the caller holds the pen.
    """

    def __init__(self, *, retries: int = 3, **spi_args):
        super().__init__(**spi_args)
        self.retries = retries

    def read_raw(self) -> bytes:
        request = [frame.READ_COMMAND] + [0] * frame.FRAME_LENGTH
        response = self._spi.transfer(request)
        offset = frame.RESPONSE_OFFSET
        return bytes(response[offset:offset + frame.FRAME_LENGTH])

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
            seat = SeatSensor(p["seat"].bcm, pull_up=p["seat"].pull == "up", pin_factory=pin_factory)
            made.append(seat)
            light = StatusLight(
                p["light_red"].bcm, p["light_green"].bcm, p["light_blue"].bcm,
                active_high=p["light_red"].active_high, pin_factory=pin_factory,
            )
            made.append(light)
            buzzer = Buzzer(p["buzzer"].bcm, active_high=p["buzzer"].active_high, pin_factory=pin_factory)
            made.append(buzzer)
            button = Button(
                p["button"].bcm, pull_up=p["button"].pull == "up", bounce_time=0.05,
                pin_factory=pin_factory,
            )
            made.append(button)
            spi = pinmap.spi
            pen = PenLink(
                retries=retries, clock_pin=spi.clock, mosi_pin=spi.mosi, miso_pin=spi.miso,
                select_pin=spi.select, pin_factory=pin_factory,
            )
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
        by_role.update(zip(("light_red", "light_green", "light_blue"), self.light.pins))
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
