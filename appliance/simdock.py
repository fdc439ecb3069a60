"""The simulated dock, assembled once: gpiozero's MockFactory (as sim.SimFactory, whose
pen link is a hardware SPI bus, as on a Pi) with the simulated pen on it, a movable clock,
and the very same `start_dock` a Pi runs, with the simulator's `sim.*` commands added.
`pendock demo` and the tests that need a dock use this.

The pin factory is handed to every device explicitly; this code never sets or reads
gpiozero's global `Device.pin_factory`. One gpiozero quirk remains: its software SPI bus
(gpiozero 2.0.1, `SPISoftwareBus.__init__`) builds itself without the factory it was
given, so gpiozero must be able to make *a* default factory; off a Pi none loads, so
the simulated dock names gpiozero's default "mock" (GPIOZERO_PIN_FACTORY, unless set).
That default is never used for a pin: the bus's pins come from the injected factory.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from datetime import time
from pathlib import Path

from appliance.daemon.loop import RunningDock, start_dock
from appliance.hardware.pinmap import PinMap, load_pinmap
from appliance.hardware.sim import SimClock, SimFactory, Simulator
from appliance.hardware.simchip import MAKERS_FOLDER, SimChips


@dataclass
class SimulatedDock:
    """A started simulated dock (the pen held, the control socket up) and its parts."""

    running: RunningDock
    simulator: Simulator
    factory: SimFactory
    clock: SimClock
    pinmap: PinMap

    def close(self) -> None:
        self.running.close()
        self.factory.close()


def demo_maker(config, data_dir: Path) -> tuple[SimChips, object]:
    """The demo maker of the simulated cartridges and the config that trusts it: its key
    made in the data folder at first start (never in the repository), its public key the
    one this dock trusts (DATA/makers/), so genuine simulated cartridges authenticate."""
    try:
        chips = SimChips.in_folder(data_dir)
    except OSError as error:  # an unwritable data folder: start_dock names it, not this
        logging.getLogger("pendock.sim").warning("the demo maker key cannot be kept: %s", error)
        chips = SimChips()  # not trusted by the dock: its cartridges stay held
    trusting = replace(config, cartridges=replace(config.cartridges,
                                                  makers_dir=str(data_dir / MAKERS_FOLDER)))
    return chips, trusting


@dataclass
class SimulatedParts:
    """The simulation's parts before any dock starts: the pins, the pen on them, its clock,
    and the config trusting the demo maker."""

    factory: SimFactory
    simulator: Simulator
    clock: SimClock
    config: object


def simulated_parts(config, data_dir: Path, *, pen_file: Path | None = None, pinmap: PinMap | None = None,
                    start_at: time | None = None) -> SimulatedParts:
    """Mock pins with the simulated pen on them. `pen_file` keeps the pen's state between
    runs (it stands for the physical pen); None keeps it in memory. `start_at`: a new
    simulated dock's wall clock starts at that time of the dock's today (a day that cannot
    run past midnight under a test); a saved clock wins."""
    pinmap = pinmap or load_pinmap()
    chips, config = demo_maker(config, Path(data_dir))
    os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")  # see the module's docstring
    factory = SimFactory()  # mock pins, and the pen link as a hardware SPI bus, as on a Pi
    clock = SimClock(config.tz)
    try:
        fresh = pen_file is None or not pen_file.exists()
        simulator = Simulator(pinmap, factory, clock, pen_file, chips=chips)
        if start_at is not None and fresh:
            now = clock.now()
            clock.wall_offset = (now.replace(hour=start_at.hour, minute=start_at.minute, second=0,
                                             microsecond=0) - now).total_seconds()
            simulator.save()
    except BaseException:
        factory.close()
        raise
    return SimulatedParts(factory, simulator, clock, config)


def build_sim_dock(config, data_dir: Path, socket: Path, *, pen_file: Path | None = None,
                   pinmap: PinMap | None = None,
                   config_source: Path | None = None, start_at: time | None = None) -> SimulatedDock:
    """Start the daemon's dock on mock pins with the simulated pen (see simulated_parts)."""
    pinmap = pinmap or load_pinmap()
    parts = simulated_parts(config, data_dir, pen_file=pen_file, pinmap=pinmap, start_at=start_at)
    try:
        running = start_dock(parts.config, Path(data_dir), Path(socket), parts.clock, pinmap=pinmap,
                             pin_factory=parts.factory, extensions=[parts.simulator.register],
                             config_source=config_source)
    except BaseException:
        parts.factory.close()
        raise
    return SimulatedDock(running, parts.simulator, parts.factory, parts.clock, pinmap)
