"""Only the daemon, on mock pins with the simulated pen: what the kill and power-cut tests kill.

`pendock demo` also starts the page, which these tests do not need; this runs the very
same `build_sim_dock` + `run_loop` as the demo, and nothing else:

    python -m tests.support.dockd --data DIR --socket PATH [--pen PEN.json]

It prints "ready" on stdout once the dock has started (pen held, control socket up).
The pen's file stands for the physical pen, so keep it off a disk that loses power with
the dock. PENDOCK_SQLITE_SYNCHRONOUS is honoured (daemon.start_dock's test hook).
"""
from __future__ import annotations

import argparse
import logging
import sys
import threading
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--socket", required=True, type=Path)
    parser.add_argument("--pen", type=Path, help="the simulated pen's state file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from appliance.core.config import Config
    from appliance.daemon.loop import install_signal_handlers, run_loop
    from appliance.simdock import build_sim_dock

    simulated = build_sim_dock(Config(), args.data, args.socket, pen_file=args.pen)
    running = simulated.running
    stop = threading.Event()
    install_signal_handlers(stop)
    print("ready", flush=True)
    try:
        run_loop(running, stop)
    finally:
        simulated.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
