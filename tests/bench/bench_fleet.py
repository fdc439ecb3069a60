"""P8: docks sharing a broker. Docks in network namespaces on one machine, a real Mosquitto
(tests/support/clinic.py); needs root and Debian's mosquitto, else the figures say why not.

- propagation: from `pendock sim dock` being issued on room-1 (the pen back: its session
  closes) to that session being closed in BOTH peers' records; p99 over the sessions. An
  upper bound: the CLI's own start-up (a new Python process) is counted in.
- catch-up: room-2 cut off while room-1 holds 10,000 events it never saw (signed events
  put straight into room-1's record, as if delivered while room-2 was away); from the link
  coming back up to room-2 having applied all 10,000.
- P1 ratio: the P1 bench's frame->latch+light p99 (tests/bench/bench_dock.py), in one run,
  with the dock joined to a local broker (its link publishing every event) and without.

    python -m tests.bench.bench_fleet [--quick]
"""
from __future__ import annotations

import argparse
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

from tests.bench.common import Figure, median, percentile, table

PROPAGATION_LIMIT_S = 2.0
CATCHUP_EVENTS = 10_000
CATCHUP_LIMIT_S = 30.0
P1_RATIO_LIMIT = 1.2


def _closed_in(db: Path, ref: str) -> bool:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        row = conn.execute("SELECT outcome FROM fleet_sessions WHERE client_ref = ?", (ref,)).fetchone()
    return bool(row) and row[0] != "open"


def propagation(root: Path, sessions: int) -> list[float]:
    from tests.support.clinic import Clinic

    clinic = Clinic(root).build()
    try:
        clinic.start_broker()
        clinic.start()
        one = clinic.demo("room-1")
        peers = [clinic.db(d) for d in clinic.docks[1:]]
        delays = []
        for n in range(sessions):
            ref = f"BK-P{n}"
            one.ok("sim", "cartridge")
            one.ok("next-client", ref, "--area", "face", "--checklist", "screened,test-area")
            one.ok("sim", "undock")
            one.ok("sim", "needle", "--minutes", "1")
            closed = time.perf_counter()  # before the command: an upper bound, CLI start-up included
            one.ok("sim", "dock")
            while not all(_closed_in(db, ref) for db in peers):
                if time.perf_counter() - closed > 30:
                    raise RuntimeError(f"session {ref} did not reach every peer within 30 s")
                time.sleep(0.002)
            delays.append(time.perf_counter() - closed)
        return delays
    finally:
        clinic.close()


def _inject(db: Path, count: int) -> None:
    """`count` events of room-1 into its record, as delivered (not in its outbox); room-1
    signs them when it serves them."""
    from appliance.fleet.ledger import Ledger

    conn = sqlite3.connect(db, isolation_level=None)
    ledger = Ledger(conn, "room-1")
    start = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    conn.execute("BEGIN")
    for n in range(count // 2):
        at = start + timedelta(minutes=n)
        ledger.record_own("session_opened", {"session": 100_000 + n, "client_ref": f"BK-C{n}",
                                             "area": "face", "pen_serial": 7, "cartridge_serial": 500_000 + n,
                                             "warnings": [], "overrides": [], "forced": False}, at)
        ledger.record_own("session_closed", {"session": 100_000 + n, "outcome": "completed",
                                             "needling_seconds": 600, "strokes": 72_000,
                                             "max_depth_mm": 1.0, "warnings": []}, at)
    conn.execute("DELETE FROM fleet_outbox")  # delivered to the broker while room-2 was away
    conn.execute("COMMIT")
    conn.close()


def catchup(root: Path, events: int) -> tuple[float, int]:
    from appliance.fleet.ledger import Ledger
    from tests.support.clinic import Clinic

    clinic = Clinic(root, docks=("room-1", "room-2")).build()
    try:
        clinic.start_broker()
        clinic.start()
        one = clinic.demo("room-1")
        clinic.partition("room-2")
        one.stop()
        _inject(clinic.db("room-1"), events)
        with sqlite3.connect(clinic.db("room-1")) as conn:
            target = Ledger(conn, "room-1").own_seq()
        one.start(40)
        healed = time.perf_counter()
        clinic.heal("room-2")
        db = clinic.db("room-2")
        while True:
            with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
                row = conn.execute("SELECT applied_seq FROM fleet_docks WHERE dock_id = 'room-1'").fetchone()
            if row and row[0] >= target:
                return time.perf_counter() - healed, target
            if time.perf_counter() - healed > 300:
                raise RuntimeError(f"room-2 applied {row[0] if row else 0} of {target} events in 300 s")
            time.sleep(0.05)
    finally:
        clinic.close()


BLOCKS = 8  # alternating blocks each way, so a burst of the machine's other work hits both


def p1_with_and_without_broker(root: Path, cycles: int) -> tuple[float, float]:
    """P1 p99 (ms) without, then with, a broker; alternating blocks so drift hits both.
    `cycles` each way: a p99 is the 1 % tail, so a thousand or more give it room to be the
    tail rather than a handful of samples."""
    from appliance.core.config import Config, parse_config
    from appliance.fleet.provision import provision
    from tests.bench.bench_dock import FrameToLatch
    from tests.support.demo import free_port
    from tests.support.inprocess import SimDock

    port = free_port()
    provision(root / "clinic", ["room-1", "room-2"], f"mqtt://127.0.0.1:{port}", port=port,
              persistence=False)
    conf = root / "clinic" / "broker" / "mosquitto.conf"
    conf.write_text(conf.read_text().replace(f"listener {port}\n", f"listener {port} 127.0.0.1\n")
                    + "user root\n")
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        time.sleep(0.5)
        fleet = parse_config((root / "clinic" / "docks" / "room-1" / "fleet.toml").read_text()).fleet
        samples = {"alone": [], "broker": []}
        for block in range(BLOCKS):
            for name, config in (("alone", Config()), ("broker", replace(Config(), fleet=fleet))):
                data = root / f"p1-{name}-{block}"
                sim = SimDock(data, root / f"p1-{name}-{block}.sock", config=config, loop=False)
                try:
                    sim.dock.hw.seat.settle_s = 0.001
                    timer = FrameToLatch(sim.dock)
                    for n in range(cycles // BLOCKS):
                        sim.session_cycle(f"P-{block}-{n}", minutes=1, depth=1.0)
                    samples[name] += timer.samples
                finally:
                    sim.close()
        return (percentile([s * 1000 for s in samples["alone"]], 0.99),
                percentile([s * 1000 for s in samples["broker"]], 0.99))
    finally:
        broker.terminate()
        broker.wait(10)


def measure(quick: bool = False) -> list[Figure]:
    from tests.support.clinic import skip_reason

    why = skip_reason()
    if why:
        return [Figure("P8 fleet", f"not measured: {why}", "-", False)]
    figures = []
    with tempfile.TemporaryDirectory(prefix="pendock-p8-") as tmp:
        root = Path(tmp)
        sessions = 20 if quick else 100
        delays = propagation(root / "propagation", sessions)
        p99 = percentile(delays, 0.99)
        figures.append(Figure("P8 session closed -> in both peers, p99", f"{p99:.3f} s",
                              f"<= {PROPAGATION_LIMIT_S} s", p99 <= PROPAGATION_LIMIT_S,
                              f"{sessions} sessions, 3 docks in netns; p50 {median(delays):.3f} s, "
                              f"max {max(delays):.3f} s"))
        seconds, events = catchup(root / "catchup", CATCHUP_EVENTS)
        figures.append(Figure("P8 catch-up of 10,000 missed events", f"{seconds:.1f} s",
                              f"<= {CATCHUP_LIMIT_S} s", seconds <= CATCHUP_LIMIT_S,
                              f"{CATCHUP_EVENTS} events missed ({events} held), from the link "
                              f"back up to all applied, reconnect included"))
        alone, with_broker = p1_with_and_without_broker(root / "p1", 400 if quick else 2000)
        ratio = with_broker / alone
        figures.append(Figure("P8 P1 p99 with broker / without", f"{ratio:.2f}",
                              f"<= {P1_RATIO_LIMIT}", ratio <= P1_RATIO_LIMIT,
                              f"P1 p99 {with_broker:.2f} ms with, {alone:.2f} ms without, one run"))
    return figures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    figures = measure(quick=args.quick)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
