"""The dock on the simulated chip: pin map variants, the world outside the pins, and a
dock running in this process exactly as the daemon composes it (start_dock + run_loop).
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

from gpiozero import Device

from appliance.core.config import Config
from appliance.simdock import demo_maker
from appliance.core.resources import hw_file
from appliance.daemon.control import ControlClient
from appliance.daemon.loop import run_loop, start_dock
from appliance.hardware.devices import COLOURS
from appliance.hardware.pinmap import PinMap, load_pinmap

from tests.hil.guest.chip import SimChip
from tests.hil.guest.factory import compose
from appliance.hardware.sim import SimClock

CHECKLIST = "screened,test-area"
LIGHTS = ("light_red", "light_green", "light_blue")

# Every way hw/pinmap.toml may wire the parts (hw/README.md, "board variants"): inputs
# pulled up (active low), pulled down (active high), or without a pull (an external
# resistor) either way round; each output, each colour of the light on its own, active
# high or low. The latch stays active high: an active-low latch is refused at start.
VARIANTS: dict[str, dict[str, dict[str, str]]] = {
    "shipped": {},
    "pulled-down-inputs-outputs-active-low": {
        "seat": {"pull": "down", "active": "high"},
        "button": {"pull": "down", "active": "high"},
        "light_red": {"active": "low"}, "light_green": {"active": "low"},
        "light_blue": {"active": "low"}, "buzzer": {"active": "low"},
    },
    "no-pull-inputs-active-high-mixed-light": {
        "seat": {"pull": "none", "active": "high"},
        "button": {"pull": "none", "active": "high"},
        "light_green": {"active": "low"},
    },
    "no-pull-inputs-active-low-mixed-outputs": {
        "seat": {"pull": "none", "active": "low"},
        "button": {"pull": "none", "active": "low"},
        "light_red": {"active": "low"}, "light_blue": {"active": "low"}, "buzzer": {"active": "low"},
    },
}


def variant_pinmap(name: str, folder: Path) -> PinMap:
    """The shipped pin map with the variant's changes, written out and loaded as a board
    variant file would be (PENDOCK_PINMAP)."""
    document = tomllib.loads(hw_file("pinmap.toml").read_text())
    for role, changes in VARIANTS[name].items():
        document["pins"][role].update(changes)
    lines = []
    for role, table in document["pins"].items():
        lines.append(f"[pins.{role}]")
        lines += [f"{key} = {_toml(value)}" for key, value in table.items()]
    lines.append("[spi]")
    lines += [f"{key} = {_toml(value)}" for key, value in document["spi"].items()]
    path = folder / f"pinmap-{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return load_pinmap(path)


def _toml(value) -> str:
    return str(value) if isinstance(value, int) else '"' + str(value).replace('"', '\\"') + '"'


class World:
    """What is outside the pins: the hall switch, the button, a meter on the outputs."""

    def __init__(self, chip: SimChip, pinmap: PinMap):
        self.chip = chip
        self.pinmap = pinmap

    def level_for(self, role: str, on: bool) -> int:
        """The physical level that means `on` for this role in this pin map."""
        return int(on == self.pinmap[role].active_high)

    def rest_inputs(self) -> None:
        """Switches open; for a pin without internal pull this is the board's resistor."""
        for role in ("seat", "button"):
            self.chip.set_pull(self.pinmap[role].bcm, bool(self.level_for(role, False)))

    def press(self, role: str, on: bool) -> None:
        self.chip.set_pull(self.pinmap[role].bcm, bool(self.level_for(role, on)))

    def is_on(self, role: str) -> bool:
        return self.chip.level(self.pinmap[role].bcm) == self.level_for(role, True)

    def light(self) -> tuple[int, int, int]:
        return tuple(int(self.is_on(role)) for role in LIGHTS)

    def wait_light(self, colour: str, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.light() == COLOURS[colour]:
                return True
            time.sleep(0.005)
        return self.light() == COLOURS[colour]

    def wait_on(self, role: str, on: bool, timeout: float = 5.0) -> bool:
        return self.chip.wait_level(self.pinmap[role].bcm, self.level_for(role, on), timeout)

    def watch(self, role: str) -> "Watcher":
        return Watcher(self, role)


class Watcher:
    """Samples an output's level in a process of its own (so the dock's threads cannot
    starve it of the GIL) and reports how often it went on: catches the 80 ms beep."""

    SAMPLER = r"""
import os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
on = sys.argv[2].encode()
last, pulses, samples = False, 0, 0
print("ready", flush=True)
os.set_blocking(0, False)
while True:
    level = os.pread(fd, 4, 0)[:1] == on
    samples += 1
    if level and not last:
        pulses += 1
    last = level
    try:
        if os.read(0, 1) == b"":
            break
    except BlockingIOError:
        pass
print(pulses, samples, int(last), flush=True)
"""

    def __init__(self, world: World, role: str):
        path = world.chip._attr(world.pinmap[role].bcm, "value")
        self._process = subprocess.Popen(
            [sys.executable, "-c", self.SAMPLER, str(path), str(world.level_for(role, True))],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self._process.stdout.readline().strip() == "ready"
        self.pulses = self.samples = 0
        self.ends_on = False

    def stop(self) -> int:
        """Stop sampling; the number of times the output went on."""
        self._process.stdin.close()
        pulses, samples, last = self._process.stdout.readline().split()
        self._process.wait(10)
        self.pulses, self.samples, self.ends_on = int(pulses), int(samples), last == "1"
        return self.pulses


class HilDock:
    """The daemon's composition (start_dock, run_loop in a thread) on the HIL factory."""

    def __init__(self, chip: SimChip, pinmap: PinMap, folder: Path, config: Config | None = None):
        self.world = World(chip, pinmap)
        self.world.rest_inputs()
        (folder / "data").mkdir(parents=True, exist_ok=True)
        chips, self.config = demo_maker(config or Config(), folder / "data")
        self.clock = SimClock(self.config.tz)
        self.factory, self.sim = compose(chip.number, pinmap, self.clock, chips)
        self.pen = self.sim.pen
        self.pen.state.docked = False  # the pen is not in the cradle yet
        # As GPIOZERO_PIN_FACTORY=lgpio on a Pi; and gpiozero's software SPI bus builds
        # itself on the default factory (see appliance/simdock.py), which must exist.
        Device.pin_factory = self.factory
        socket = folder / "dock.sock"
        self.running = start_dock(self.config, folder / "data", socket, self.clock, pinmap=pinmap,
                                  pin_factory=self.factory, extensions=[self.sim.register])
        self.dock = self.running.dock
        self.hw = self.dock.hw
        self.client = ControlClient(socket, timeout=20, via="hil")
        self._stop = threading.Event()
        self._loop = threading.Thread(target=run_loop, args=(self.running, self._stop), daemon=True)
        self._loop.start()

    def call(self, cmd: str, **args):
        return self.client.call(cmd, **args)

    def status(self) -> dict:
        return self.call("status")

    def wait_status(self, check, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        status = self.status()
        while not check(status) and time.monotonic() < deadline:
            time.sleep(0.01)
            status = self.status()
        return status

    def seat(self, docked: bool) -> None:
        """The pen goes into the cradle (magnet at the hall switch, pogo contacts meet) or out."""
        if docked:
            self.pen.state.docked = True
            self.world.press("seat", True)
        else:
            self.world.press("seat", False)
            self.pen.state.docked = False

    def close(self) -> None:
        self._stop.set()
        self.hw.seat.changed.set()
        self._loop.join(5)
        try:
            self.running.close()
        finally:
            self.factory.close()
            Device.pin_factory = None
