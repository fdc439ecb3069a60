"""The simulated dock inside the test process: the demo's daemon half, without the page.

`SimDock` builds the same parts as `pendock demo` (MockFactory, simulated pen, start_dock,
run_loop in a thread) and talks to them through the control socket, as the CLI does.
"""
from __future__ import annotations

import threading
from pathlib import Path

from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.core.config import Config
from appliance.daemon.control import ControlClient
from appliance.daemon.loop import run_loop, start_dock
from appliance.hardware.pinmap import load_pinmap
from appliance.hardware.sim import SimClock, Simulator

CHECKLIST = "screened,test-area"


class SimDock:
    def __init__(self, data: Path, socket: Path, *, config: Config | None = None,
                 loop: bool = True):
        self.config = config or Config()
        self.factory = MockFactory()
        Device.pin_factory = self.factory
        self.clock = SimClock(self.config.tz)
        self.pinmap = load_pinmap()
        self.sim = Simulator(self.pinmap, self.factory, self.clock, None)
        self.running = start_dock(self.config, Path(data), Path(socket), self.clock,
                                  pinmap=self.pinmap, pin_factory=self.factory,
                                  extensions=[self.sim.register])
        self.dock = self.running.dock
        self.store = self.running.store
        self.client = ControlClient(Path(socket), timeout=10, via="test")
        self.stop_loop = threading.Event()
        self.loop = None
        if loop:
            self.loop = threading.Thread(target=run_loop, args=(self.running, self.stop_loop),
                                         daemon=True)
            self.loop.start()

    def call(self, cmd: str, **args):
        return self.client.call(cmd, **args)

    def status(self) -> dict:
        return self.call("status")

    def ready_for_client(self, ref: str) -> dict:
        """Docked, a fresh cartridge, a client named: normally released."""
        if not self.status()["docked"]:
            self.call("sim.dock")
        self.call("sim.cartridge")
        return self.call("next_client", ref=ref, area="face", checklist=CHECKLIST)

    def session_cycle(self, ref: str, minutes: float = 20, depth: float = 1.0) -> dict:
        """One whole session; returns the closed session the dock reported."""
        assert not self.ready_for_client(ref)["held"]
        self.call("sim.undock")
        self.call("sim.needle", minutes=minutes, depth=depth)
        return self.call("sim.dock")["status"]["last_session"]

    def audit_actions(self) -> list[str]:
        return [e.action for e in reversed(self.store.audit_entries(limit=1000))]

    def close(self) -> None:
        self.stop_loop.set()
        self.dock.hw.seat.changed.set()
        if self.loop is not None:
            self.loop.join(5)
        self.running.close()
        self.factory.close()
        Device.pin_factory = None
