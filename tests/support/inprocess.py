"""The simulated dock inside the test process: the demo's daemon half, without the page.

`SimDock` builds the same simulated dock as `pendock demo` (appliance/simdock.py), runs
its loop in a thread, and talks to it through the control socket, as the CLI does.
"""
from __future__ import annotations

import threading
from datetime import time
from pathlib import Path

from appliance.core.config import Config
from appliance.daemon.control import ControlClient
from appliance.daemon.loop import run_loop
from appliance.simdock import build_sim_dock

CHECKLIST = "screened,test-area"


class SimDock:
    def __init__(self, data: Path, socket: Path, *, config: Config | None = None,
                 loop: bool = True, start_at: time | None = time(8, 0)):
        """`start_at`: the simulated day starts then (like the demos' `--start-at 08:00`),
        so a test's sessions never run past midnight into an empty "today"."""
        self.config = config or Config()
        self.simulated = build_sim_dock(self.config, Path(data), Path(socket), start_at=start_at)
        self.factory, self.clock = self.simulated.factory, self.simulated.clock
        self.pinmap, self.sim = self.simulated.pinmap, self.simulated.simulator
        self.running = self.simulated.running
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
        self.simulated.close()
