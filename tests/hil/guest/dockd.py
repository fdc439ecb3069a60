"""The dock daemon (`run_daemon`, what `pendock daemon` runs) on the HIL factory: lgpio on
the simulated chip, the simulated pen on the SPI link and its `sim.*` verbs on the socket.

    python -m tests.hil.guest.dockd --chip N --pinmap FILE --data DIR --socket PATH

The test kills it; the kernel then frees its lines.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chip", required=True, type=int)
    parser.add_argument("--pinmap", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--socket", required=True, type=Path)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="dockd %(levelname)s %(name)s: %(message)s")

    from gpiozero import Device

    from appliance.core.config import Config
    from appliance.daemon.loop import run_daemon
    from appliance.hardware.pinmap import load_pinmap
    from appliance.hardware.sim import SimClock
    from tests.hil.guest.factory import compose

    from appliance.simdock import demo_maker

    args.data.mkdir(parents=True, exist_ok=True)
    chips, config = demo_maker(Config(), args.data)
    pinmap = load_pinmap(args.pinmap)
    clock = SimClock(config.tz)
    factory, simulator = compose(args.chip, pinmap, clock, chips)
    # run_daemon builds on gpiozero's default factory, as GPIOZERO_PIN_FACTORY=lgpio makes
    # it on a Pi: here it is the HIL factory.
    Device.pin_factory = factory
    return run_daemon(config, args.data, args.socket, clock, pinmap=pinmap,
                      extensions=[simulator.register])


if __name__ == "__main__":
    sys.exit(main())
