"""Every bench under tests/bench/, one table: bar, measured, limit, pass/fail.

    .venv/bin/python -m tests.bench.run_all [--quick] [--r1] [--no-p10] [--only bench_dock ... p10]

Each tests/bench/bench_*.py module provides `measure(quick: bool) -> list[Figure]`
(tests/bench/common.py); a new bench is picked up by its file name. --r1 adds the
200-kill R1 loop (about four minutes). P10 (tests/bench/p10.py) runs last: P1, P2 and P5
again on a tenth of one core (cgroup v1 cpu quota; root only, else a "skip" row), each
beside the free figure of the same run. Exit status 0 when every figure passes.
"""
from __future__ import annotations

import argparse
import importlib
import sys
import tempfile
import time
import traceback
from pathlib import Path

from tests.bench.common import Figure, table

HERE = Path(__file__).resolve().parent


def bench_modules(only: list[str] | None) -> list[str]:
    names = sorted(p.stem for p in HERE.glob("bench_*.py"))
    return [n for n in names if not only or n in only]


def r1_figure(kills: int) -> Figure:
    from tests.reliability.kill_loop import run

    with tempfile.TemporaryDirectory(prefix="pendock-r1-") as tmp:
        report = run(kills, Path(tmp), seed=7, stop_on_problem=False)
    return Figure("R1 kill -9 at random moments", f"{len(report.problems)} problems",
                  "0 problems", not report.problems,
                  f"{report.kills} kills, {report.cycles} cycles, {report.closed_checked} closed "
                  f"sessions checked after each restart")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer cycles and runs")
    parser.add_argument("--r1", action="store_true", help="also the 200-kill R1 loop")
    parser.add_argument("--only", nargs="*", help="bench module names, e.g. bench_dock, or p10")
    parser.add_argument("--no-p10", action="store_true", help="skip P10 (the benches on 1/10 core)")
    args = parser.parse_args(argv)
    figures: list[Figure] = []
    for name in bench_modules(args.only):
        began = time.monotonic()
        try:
            module = importlib.import_module(f"tests.bench.{name}")
            figures += module.measure(quick=args.quick)
        except Exception as error:  # one broken bench must not hide the others' figures
            traceback.print_exc()
            figures.append(Figure(f"{name}", f"error: {error}", "-", False))
        print(f"[{name}: {time.monotonic() - began:.0f} s]", file=sys.stderr)
    if args.r1:
        figures.append(r1_figure(20 if args.quick else 200))
    if not args.no_p10 and (not args.only or "p10" in args.only):
        from tests.bench import p10

        began = time.monotonic()
        try:
            figures += p10.measure(quick=args.quick, free=figures)
        except Exception as error:
            traceback.print_exc()
            figures.append(Figure("P10", f"error: {error}", "-", False))
        print(f"[p10: {time.monotonic() - began:.0f} s]", file=sys.stderr)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
