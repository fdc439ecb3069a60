"""R1: kill -9 the daemon at random moments of dock cycles, and check nothing was lost.

Each round: start the daemon, check the record against everything it acknowledged so
far (closed sessions present and unchanged, integrity_check ok, audit chain verifies,
nothing left open, the pen held), run dock cycles in the background, kill -9 at a random
moment. Also usable on a power-cut disk (tests/reliability/test_power_cut.py).

    python -m tests.reliability.kill_loop --kills 200
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.dockdriver import (CycleRunner, DockProcess, Ledger, check_record,
                                      held_after_restart)


@dataclass
class Report:
    kills: int = 0
    cycles: int = 0
    closed_checked: int = 0
    opened_checked: int = 0
    start_seconds: list = field(default_factory=list)
    problems: list = field(default_factory=list)


def restart_and_check(dock: DockProcess, ledger: Ledger, report: Report, round_no: int) -> None:
    report.start_seconds.append(dock.start())
    status = dock.call("status")
    wrong = held_after_restart(status, dock.data)
    if wrong:
        report.problems.append(f"round {round_no}: {wrong}")
    report.problems += [f"round {round_no}: {p}" for p in check_record(dock.data, ledger)]


def run(kills: int, workdir: Path, *, seed: int = 1, longest_s: float = 1.2,
        cut=None, env: dict | None = None, data: Path | None = None,
        stop_on_problem: bool = True) -> Report:
    """`cut(dock)`, when given, replaces the plain kill (the power-cut test cuts the disk too)."""
    rng = random.Random(seed)
    data = data or workdir / "data"
    dock = DockProcess(data, workdir / "control.sock", workdir / "pen.json", env=env)
    ledger, report = Ledger(), Report()
    try:
        for round_no in range(1, kills + 1):
            restart_and_check(dock, ledger, report, round_no)
            if report.problems and stop_on_problem:
                dock.kill()  # the final restart_and_check below starts it again
                break
            runner = CycleRunner(dock, ledger, f"R{seed}-{round_no}")
            runner.start()
            time.sleep(rng.uniform(0.02, longest_s))
            (cut or DockProcess.kill)(dock)
            runner.join(15)
            if runner.error is not None:
                report.problems.append(f"round {round_no}: the cycle failed: {runner.error!r}")
            report.kills += 1
        restart_and_check(dock, ledger, report, kills + 1)
    finally:
        dock.stop()
    report.cycles = ledger.cycles
    report.closed_checked = len(ledger.closed)
    report.opened_checked = len(ledger.opened)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pendock-r1-") as tmp:
        began = time.monotonic()
        report = run(args.kills, Path(tmp), seed=args.seed, stop_on_problem=False)
    starts = sorted(report.start_seconds)
    print(f"R1: {report.kills} kill -9 in {time.monotonic() - began:.0f} s; {report.cycles} "
          f"full cycles; {report.closed_checked} closed and {report.opened_checked} opened "
          f"sessions checked after every restart; restart median {starts[len(starts) // 2]:.2f} s")
    for problem in report.problems:
        print("PROBLEM:", problem)
    print("R1", "pass" if not report.problems else "FAIL")
    return 0 if not report.problems else 1


if __name__ == "__main__":
    sys.exit(main())
