"""P5: `pendock demo` until its daemon answers, and `pendock status` wall time.

Whole processes, timed from the outside, several runs each:
- daemon ready: from spawning `pendock demo` to the first `status` answered on its control
  socket (the latch is held before the socket opens; the page is not waited for);
- page up (for information): to the demo printing its URL;
- `pendock status`: the CLI process, start to exit, against that running demo.

    python -m tests.bench.bench_start [--runs 5]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from appliance.daemon.control import ControlClient, ControlError
from tests.bench.common import Figure, median, table
from tests.support.demo import DemoProcess

READY_LIMIT_S = 1.5
STATUS_LIMIT_S = 0.5
PENDOCK = Path(sys.executable).with_name("pendock")


def one_start(tmp: Path, status_runs: int, program: list[str] | None = None) -> tuple[float, float | None, list[float]]:
    data = tmp / f"data-{time.monotonic_ns()}"
    demo = DemoProcess(data, data_flag=True, program=program or [str(PENDOCK)])
    demo.env["HOME"] = str(tmp)
    client = ControlClient(data / "control.sock", timeout=2)
    ready = page = None
    began = time.perf_counter()
    demo.spawn()
    try:
        while ready is None:
            if demo.proc.poll() is not None or time.perf_counter() - began > 120:
                raise RuntimeError("pendock demo did not start:\n" + "".join(demo.printed))
            try:
                client.call("status")
                ready = time.perf_counter() - began
            except ControlError:
                time.sleep(0.005)
        demo.wait_for_page(120)
        page = time.perf_counter() - began
        statuses = []
        for _ in range(status_runs):
            t = time.perf_counter()
            demo.ok("status", "--data", str(data))
            statuses.append(time.perf_counter() - t)
    finally:
        demo.stop()
    return ready, page, statuses


def measure(quick: bool = False, runs: int | None = None, program: list[str] | None = None,
            status_runs: int = 4) -> list[Figure]:
    """`program` starts the demo another way (P10 puts it in a cgroup first)."""
    runs = runs or (3 if quick else 5)
    readies, pages, statuses = [], [], []
    with tempfile.TemporaryDirectory(prefix="pendock-p5-") as tmp:
        for _ in range(runs):
            ready, page, status = one_start(Path(tmp), status_runs=status_runs, program=program)
            readies.append(ready)
            pages += [page] if page else []
            statuses += status
    return [
        Figure("P5 daemon ready after start (worst)", f"{max(readies):.2f} s",
               f"<= {READY_LIMIT_S} s", max(readies) <= READY_LIMIT_S,
               f"{runs} starts of `pendock demo`; median {median(readies):.2f} s; page up "
               f"median {median(pages):.2f} s" if pages else f"{runs} starts"),
        Figure("P5 `pendock status` wall (worst)", f"{max(statuses):.2f} s",
               f"<= {STATUS_LIMIT_S} s", max(statuses) <= STATUS_LIMIT_S,
               f"{len(statuses)} runs; median {median(statuses):.2f} s"),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    figures = measure(runs=args.runs)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
