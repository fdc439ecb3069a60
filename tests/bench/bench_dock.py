"""P1 and P6: dock cycles on the mock pin factory in one process.

P1: from "frame bytes in hand" (the SPI transfer of a valid frame just returned) to latch
and light set, for every read whose decision was committed (a durable SQLite commit) in
between. The mock SPI transfer itself is not counted, nor the seat's debounce wait.
P6: the data folder's size per session (audit included), from the growth between two
points of the run, extrapolated to five years at 50 sessions a day.
P9: the same P1 figure with cartridge authentication and without it (the simulated pen's
link without the chip exchange), cycle by cycle alternately in one run. The exchange's
two mock SPI transfers (and the simulated chip signing inside them) are link time and,
like the frame's own transfer, not counted; the challenge, the verification, the counter
lookup and its durable write are.

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
P9_LIMIT_MS = 2.0
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
        self._link_s = 0.0  # chip exchange transfers since the frame: link time, not counted
        conn = dock.store.db.conn
        hw = dock.hw
        read_raw, show, challenge = hw.pen.read_raw, hw.light.show, hw.pen.challenge_chip

        def timed_read_raw():
            raw = read_raw()
            self._frame_at, self._changes, self._link_s = time.perf_counter(), conn.total_changes, 0.0
            return raw

        def timed_challenge(frame):
            started = time.perf_counter()
            try:
                return challenge(frame)
            finally:
                self._link_s += time.perf_counter() - started

        def timed_show(colour):
            show(colour)
            if self._frame_at is not None and conn.total_changes != self._changes:
                self.samples.append(time.perf_counter() - self._frame_at - self._link_s)
            self._frame_at = None

        hw.pen.read_raw, hw.light.show, hw.pen.challenge_chip = timed_read_raw, timed_show, timed_challenge


def folder_bytes(data: Path) -> int:
    """The data folder's size once the WAL is checkpointed into the database."""
    conn = sqlite3.connect(data / "pendock.db")
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return sum(p.stat().st_size for p in data.iterdir() if p.is_file())


def run(cycles: int) -> tuple[list[float], dict, list[float]]:
    """Returns (P1 samples with authentication, sizes, P1 samples without it)."""
    with tempfile.TemporaryDirectory(prefix="pendock-bench-") as tmp:
        data = Path(tmp) / "data"
        sim = SimDock(data, Path(tmp) / "control.sock", loop=False)
        try:
            sim.dock.hw.seat.settle_s = 0.001  # the debounce wait is not part of P1
            timer = FrameToLatch(sim.dock)
            pen = sim.sim.pen.state
            with_auth: list[float] = []
            without: list[float] = []
            sizes = {}
            warm = max(1, cycles // 5)
            for n in range(1, cycles + 1):
                authenticate = n % 2 == 1  # alternate, so both meet the same machine load
                pen.chip_link = authenticate
                timer.samples = with_auth if authenticate else without
                sim.session_cycle(f"P-{n}", minutes=1, depth=1.0)
                if n == warm:
                    sizes["warm"] = (n, folder_bytes(data))
            sizes["end"] = (cycles, folder_bytes(data))
            sessions = sim.store.db.execute("SELECT count(*) FROM sessions").fetchone()[0]
            audit = sim.store.db.execute("SELECT count(*) FROM audit").fetchone()[0]
            sizes["sessions"], sizes["audit"] = sessions, audit
        finally:
            sim.close()
    return with_auth, sizes, without


def measure(quick: bool = False, cycles: int | None = None) -> list[Figure]:
    cycles = cycles or (200 if quick else 1000)
    samples, sizes, plain = run(cycles)
    ms = [s * 1000 for s in samples]
    plain_ms = [s * 1000 for s in plain]
    plain_p99 = percentile(plain_ms, 0.99)
    p99, p50 = percentile(ms, 0.99), median(ms)
    (n1, b1), (n2, b2) = sizes["warm"], sizes["end"]
    per_session = (b2 - b1) / (n2 - n1)
    five_years_mb = (b2 + per_session * (FIVE_YEARS_SESSIONS - n2)) / 1e6
    how = f"{cycles} dock cycles, {len(ms) + len(plain_ms)} committed decisions"
    added = p99 - plain_p99
    return [
        Figure("P1 frame->latch+light, committed, p99", f"{p99:.2f} ms", f"<= {P1_LIMIT_MS} ms",
               p99 <= P1_LIMIT_MS, f"{how} (with cartridge authentication); p50 {p50:.2f} ms, "
               f"max {max(ms):.2f} ms"),
        Figure("P9 cartridge authentication added to P1 p99", f"{added:+.2f} ms", f"<= {P9_LIMIT_MS} ms",
               added <= P9_LIMIT_MS, f"p99 {p99:.2f} ms with vs {plain_p99:.2f} ms without (p50 "
               f"{p50:.2f} vs {median(plain_ms):.2f}), {len(ms)} and {len(plain_ms)} decisions, "
               f"alternate cycles of one run"),
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
