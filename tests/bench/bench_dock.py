"""P1 and P6: dock cycles on the mock pin factory in one process.

P1: from "frame bytes in hand" (the SPI transfer of a valid frame just returned) to latch
and light set, for every read whose decision was committed (a durable SQLite commit) in
between. The mock SPI transfer itself is not counted, nor the seat's debounce wait.
P6: the data folder's size per session (audit included), from the growth between two
points of the run, extrapolated to five years at 50 sessions a day.

    python -m tests.bench.bench_dock [--cycles 1000]
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.common import Figure, median, percentile, table
from tests.support.inprocess import SimDock

P1_LIMIT_MS = 5.0
P6_LIMIT_BYTES = 2048
P6_FIVE_YEARS_LIMIT_MB = 200
FIVE_YEARS_SESSIONS = 50 * 365 * 5


class FrameToLatch:
    """Times each read-with-commit, from the last frame's arrival to the light being set.

    A commit is seen as rows changed on the store's connection between the two moments
    (the store commits before its write methods return, and the dock writes before it
    drives the latch), so this does not depend on how the dock groups its writes."""

    def __init__(self, dock):
        self.samples: list[float] = []
        self._frame_at: float | None = None
        self._changes = 0
        conn = dock.store.db.conn
        hw = dock.hw
        read_raw, show = hw.pen.read_raw, hw.light.show

        def timed_read_raw():
            raw = read_raw()
            self._frame_at, self._changes = time.perf_counter(), conn.total_changes
            return raw

        def timed_show(colour):
            show(colour)
            if self._frame_at is not None and conn.total_changes != self._changes:
                self.samples.append(time.perf_counter() - self._frame_at)
            self._frame_at = None

        hw.pen.read_raw, hw.light.show = timed_read_raw, timed_show


def folder_bytes(data: Path) -> int:
    """The data folder's size once the WAL is checkpointed into the database."""
    conn = sqlite3.connect(data / "pendock.db")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return sum(p.stat().st_size for p in data.iterdir() if p.is_file())


def run(cycles: int) -> tuple[list[float], dict]:
    with tempfile.TemporaryDirectory(prefix="pendock-bench-") as tmp:
        data = Path(tmp) / "data"
        sim = SimDock(data, Path(tmp) / "control.sock", loop=False)
        try:
            sim.dock.hw.seat.settle_s = 0.001  # the debounce wait is not part of P1
            timer = FrameToLatch(sim.dock)
            sizes = {}
            warm = max(1, cycles // 5)
            for n in range(1, cycles + 1):
                sim.session_cycle(f"P-{n}", minutes=1, depth=1.0)
                if n == warm:
                    sizes["warm"] = (n, folder_bytes(data))
            sizes["end"] = (cycles, folder_bytes(data))
            sessions = sim.store.db.execute("SELECT count(*) FROM sessions").fetchone()[0]
            audit = sim.store.db.execute("SELECT count(*) FROM audit").fetchone()[0]
            sizes["sessions"], sizes["audit"] = sessions, audit
        finally:
            sim.close()
    return timer.samples, sizes


def measure(quick: bool = False, cycles: int | None = None) -> list[Figure]:
    cycles = cycles or (200 if quick else 1000)
    samples, sizes = run(cycles)
    ms = [s * 1000 for s in samples]
    p99, p50 = percentile(ms, 0.99), median(ms)
    (n1, b1), (n2, b2) = sizes["warm"], sizes["end"]
    per_session = (b2 - b1) / (n2 - n1)
    five_years_mb = (b2 + per_session * (FIVE_YEARS_SESSIONS - n2)) / 1e6
    how = f"{cycles} dock cycles, {len(ms)} committed decisions"
    return [
        Figure("P1 frame->latch+light, committed, p99", f"{p99:.2f} ms", f"<= {P1_LIMIT_MS} ms",
               p99 <= P1_LIMIT_MS, f"{how}; p50 {p50:.2f} ms, max {max(ms):.2f} ms"),
        Figure("P6 on disk per session (audit incl.)", f"{per_session:.0f} B",
               f"<= {P6_LIMIT_BYTES} B", per_session <= P6_LIMIT_BYTES,
               f"growth from session {n1} to {n2}; {sizes['audit'] / sizes['sessions']:.1f} "
               f"audit entries a session; {b2 / n2:.0f} B/session all in"),
        Figure("P6 five years at 50/day", f"{five_years_mb:.1f} MB",
               f"<= {P6_FIVE_YEARS_LIMIT_MB} MB", five_years_mb <= P6_FIVE_YEARS_LIMIT_MB,
               f"{FIVE_YEARS_SESSIONS} sessions extrapolated"),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=1000)
    args = parser.parse_args(argv)
    figures = measure(cycles=args.cycles)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
