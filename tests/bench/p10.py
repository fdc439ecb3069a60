"""P10: the P1, P2 and P5 benches with the dock on a Pi-class budget (a tenth of one core).

Each bench runs as it does free, but its process tree is confined by a cgroup v1 cpu quota
(tests/bench/cpu_quota.py: 1 ms of CPU every 10 ms) from before its first instruction:
- P1: bench_dock's dock cycles, the whole bench process in the group (the dock, the
  simulated pen and the record are that process);
- P2: bench_page's P2 (five years of records, GET / server-side), the whole process;
- P5: `pendock demo` started inside the group (daemon and page); the timer outside it.
The dock's groups (P1, P5) weigh against the rest of the machine as the daemon's unit runs
it (systemd/pendock.service's Nice=); the page's (P2) as a plain process (its unit runs it
lower still). The quota caps both.
run_all.py prints these rows after the free ones, each with the free figure of the same
run beside it; run alone, this module measures the free figures itself (the same bench,
the same size, without the quota). Without root or without the cgroup it says so and skips.

    python -m tests.bench.p10 [--quick]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from tests.bench.common import Figure, table
from tests.bench.cpu_quota import CpuQuota, unavailable

REPO = Path(__file__).resolve().parents[2]
P1_LIMIT_MS = 50.0
READY_LIMIT_S = 15.0
PAGE_LIMIT_MS = 100.0
# The free figures each P10 figure stands beside (bar names of bench_dock, bench_page, bench_start).
FREE_BARS = {
    "P1": "P1 frame->latch+light, committed, p99",
    "P2": "P2 GET / p50, 5 years",
    "P5": "P5 daemon ready after start (worst)",
}


def _in_child(quota: CpuQuota | None, bench: str, **args) -> list[Figure]:
    """Run one bench in a fresh process that joins the quota group before it execs (free
    when `quota` is None)."""
    command = [sys.executable, "-m", "tests.bench.p10", "--child", bench, "--args", json.dumps(args)]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          preexec_fn=quota.join if quota else None, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"P10 {bench} child failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return [Figure(**row) for row in json.loads(done.stdout.strip().splitlines()[-1])]


def _child(bench: str, args: dict) -> list[Figure]:
    if bench == "P1":
        from tests.bench import bench_dock

        return bench_dock.measure(cycles=args["cycles"])[:1]
    if bench == "P2":
        from tests.bench import bench_page

        return [f for f in bench_page.measure_p2(years=args["years"], runs=args["runs"]) if f.bar.startswith("P2 GET / p50")]
    raise ValueError(bench)


def _demo_program(quota: CpuQuota) -> list[str]:
    """`pendock demo` put in the group by a shell that then execs it (so from its first instruction)."""
    pendock = Path(sys.executable).with_name("pendock")
    return ["sh", "-c", 'echo $$ > "$0" && exec "$@"', str(quota.tasks), str(pendock)]


def _free(free: dict[str, Figure], name: str) -> Figure | None:
    """The free figure of bench `name` in this run (P2 quick measures one year, not five)."""
    return free.get(FREE_BARS[name]) or free.get(FREE_BARS[name].replace("5 years", "1 year"))


def _figure(name: str, found: Figure, value: float, unit: str, limit: float, free: dict[str, Figure],
            share: str) -> Figure:
    beside = _free(free, name)
    free_text = f"free {beside.measured}" if beside else "free: not measured in this run"
    return Figure(f"P10 {found.bar} on 1/10 core", f"{value:.2f} {unit}", f"<= {limit:g} {unit}",
                  value <= limit, f"{free_text}; {found.note}; {share}")


def _value(figure: Figure) -> float:
    return float(figure.measured.split()[0])


def measure(quick: bool = False, free: list[Figure] | None = None) -> list[Figure]:
    reason = unavailable()
    if reason is not None:
        return [Figure("P10 P1/P2/P5 on 1/10 core", "skipped", "-", True,
                       f"skipped: {reason}; run `make bench` as root", skipped=True)]
    from tests.bench import bench_start

    free_by_bar = {f.bar: f for f in free or ()}
    p1_args = {"cycles": 100 if quick else 300}
    p2_args = {"years": 1.0 if quick else 5.0, "runs": 100 if quick else 200}
    p5_runs = 2 if quick else 3
    # A free figure this run has not measured (run alone, or `--only p10`): measure it now,
    # the same bench and size without the quota, so each confined figure has one beside it.
    if _free(free_by_bar, "P1") is None:
        free_by_bar[FREE_BARS["P1"]] = _in_child(None, "P1", **p1_args)[0]
    if _free(free_by_bar, "P2") is None:
        free_by_bar[FREE_BARS["P2"]] = _in_child(None, "P2", **p2_args)[0]
    if _free(free_by_bar, "P5") is None:
        free_by_bar[FREE_BARS["P5"]] = bench_start.measure(runs=p5_runs, status_runs=1)[0]
    from tests.bench.bench_page import daemon_nice

    figures = []
    began = time.monotonic()
    with CpuQuota(nice=daemon_nice()) as quota:
        p1 = _in_child(quota, "P1", **p1_args)[0]
        figures.append(_figure("P1", p1, _value(p1), "ms", P1_LIMIT_MS, free_by_bar, quota.share))
        p5 = bench_start.measure(runs=p5_runs, program=_demo_program(quota), status_runs=1)[0]
        figures.append(_figure("P5", p5, _value(p5), "s", READY_LIMIT_S, free_by_bar, quota.share))
    with CpuQuota() as quota:
        p2 = _in_child(quota, "P2", **p2_args)[0]
        figures.insert(1, _figure("P2", p2, _value(p2), "ms", PAGE_LIMIT_MS, free_by_bar, quota.share))
    print(f"[p10: {time.monotonic() - began:.0f} s confined]", file=sys.stderr)
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--args", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps([asdict(f) for f in _child(args.child, json.loads(args.args))]))
        return 0
    figures = measure(quick=args.quick)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
