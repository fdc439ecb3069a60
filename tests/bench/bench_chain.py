"""P11, a chain: publish-to-committed-row latency with every link up, the catch-up of a
clinic cut off with 10,000 events, and the owner's report over a generated year of 20
clinics (4 docks each, 50 sessions a dock a day). Real Mosquitto bridges and PostgreSQL
across network namespaces (tests/support/chain.py); root only, else "skip" rows.

    .venv/bin/python -m tests.bench.bench_chain [--quick]
"""
from __future__ import annotations

import argparse
import time

from tests.bench.common import Figure, percentile, table
from tests.support import chain as chain_support

LATENCY_SAMPLES = 200
CUT_OFF_EVENTS = 10_000


def _committed(conn, dock: str, seq: int) -> bool:
    row = conn.execute("SELECT 1 FROM chain_events WHERE dock_id = %s AND seq = %s", (dock, seq)).fetchone()
    conn.commit()
    return row is not None


def latency_and_catch_up(root, quick: bool) -> list[Figure]:
    from appliance.chain import store

    chain = chain_support.Chain(root, {"north": ("n-1",), "south": ("s-1",)}).build().start()
    try:
        one = chain.docks["n-1"]
        one.sessions(1)
        assert chain_support.wait_for(lambda: chain.exactly_once({"n-1": 2}), timeout=30)
        samples = []
        with store.connect(chain.pg.url) as conn:
            for _ in range(50 if quick else LATENCY_SAMPLES):
                start = time.perf_counter()
                seq = one.sessions(1)
                while not _committed(conn, "n-1", seq):
                    if time.perf_counter() - start > 30:
                        raise AssertionError(f"n-1#{seq} not in PostgreSQL after 30 s")
                    time.sleep(0.002)
                samples.append((time.perf_counter() - start) * 1000)
                time.sleep(0.05)
        p50, p99 = percentile(samples, 0.5), percentile(samples, 0.99)
        figures = [Figure("P11 session closed -> central PostgreSQL p99", f"{p99:.1f} ms (p50 {p50:.1f})",
                          "<= 5000 ms", p99 <= 5000,
                          f"{len(samples)} sessions, each from its commit on the dock to its close "
                          f"event's committed row, through the clinic's broker, the bridge, the "
                          f"central broker and the worker")]
        events = 2_000 if quick else CUT_OFF_EVENTS
        chain.cut("north")
        time.sleep(1)
        before = one.sessions(0)
        for _ in range(events // 2 // 500):
            one.sessions(500)
        expected = {"n-1": one.sessions(0), "s-1": chain.docks["s-1"].sessions(0)}
        healed = time.perf_counter()
        chain.heal("north")
        caught = chain_support.wait_for(lambda: chain.exactly_once(expected), timeout=300, every=0.2)
        took = time.perf_counter() - healed
        figures.append(Figure(f"P11 clinic cut off with {expected['n-1'] - before:,} events: caught up",
                              f"{took:.1f} s" if caught else "not in 300 s", "<= 60 s",
                              bool(caught) and took <= 60,
                              "from the link's return to every event in PostgreSQL exactly once "
                              "(the bridge carries QoS 0: what was sent while cut off was dropped "
                              "there and asked from the dock)"))
        return figures
    finally:
        chain.close()


YEAR = """
INSERT INTO chain_docks (dock_id, clinic, applied_seq, held, known_seq, last_event_at, last_heard)
  SELECT format('c%s-%s', c, d), format('c%s', c), 54750, 54750, 54750, now(), now()
  FROM generate_series(1, 20) c, generate_series(1, 4) d;
INSERT INTO chain_daily (dock_id, day, sessions)
  SELECT dock_id, day::date, 50 FROM chain_docks,
         generate_series(date '2026-01-01', date '2026-12-31', interval '1 day') day;
INSERT INTO chain_sessions (dock_id, session, clinic, day, started_at, ended_at, outcome, client_ref,
                            area, pen_serial, cartridge_serial)
  SELECT dock_id, n, clinic, date '2026-01-01' + (n - 1) / 50,
         timestamptz '2026-01-01 08:00+00' + ((n - 1) / 50) * interval '1 day' + ((n - 1) % 50) * interval '10 min',
         timestamptz '2026-01-01 08:30+00' + ((n - 1) / 50) * interval '1 day' + ((n - 1) % 50) * interval '10 min',
         'completed', 'BK-' || n, 'face', 42, n
  FROM chain_docks, generate_series(1, 18250) n;
ANALYZE;
"""


def report_over_a_year(quick: bool) -> list[Figure]:
    from datetime import date

    from appliance.chain import store
    from appliance.chain.page import weekly

    pg = chain_support.Postgres().start()
    try:
        with store.connect(pg.url) as conn:
            store.create(conn)
            with conn.transaction():
                conn.execute(YEAR)
            (sessions,) = conn.execute("SELECT count(*) FROM chain_sessions").fetchone()
            conn.commit()
            runs = {"all": [], "since": []}
            for _ in range(10 if quick else 50):
                for name, since in (("all", None), ("since", date(2026, 10, 1))):
                    start = time.perf_counter()
                    shown = store.report(conn, since)
                    runs[name].append((time.perf_counter() - start) * 1000)
            assert shown["sessions"] == 80 * 50 * 92  # Oct-Dec
            page = []
            for _ in range(5 if quick else 20):  # what the owner's page reads besides the report
                start = time.perf_counter()
                weekly(conn)
                store.pens(conn, 50)
                store.conflicts(conn, date(2026, 10, 1))
                conn.commit()
                page.append((time.perf_counter() - start) * 1000)
        p50, p50_since = percentile(runs["all"], 0.5), percentile(runs["since"], 0.5)
        page_p50 = percentile(page, 0.5)
        return [Figure("P11 owner's report, a year of 20 clinics, p50", f"{p50:.1f} ms (--since {p50_since:.1f} ms)",
                       "<= 200 ms", max(p50, p50_since) <= 200,
                       f"{sessions:,} sessions, 80 docks; `chain report` over a Unix socket, timed in "
                       f"the client (an upper bound on the server's time), {len(runs['all'])} runs each"),
                Figure("P11 owner's page queries (weekly chart, pens, 90 days of conflicts), p50",
                       f"{page_p50:.1f} ms", "<= 200 ms", page_p50 <= 200,
                       f"same year, {len(page)} runs (its generated clients never conflict: the "
                       f"conflicts are found at ingest, one index probe a session, and read here)")]
    finally:
        pg.stop()


def measure(quick: bool) -> list[Figure]:
    import tempfile
    from pathlib import Path

    reason = chain_support.skip_reason()
    if reason:
        return [Figure("P11", "-", "-", True, reason, skipped=True)]
    with tempfile.TemporaryDirectory(prefix="chain-bench-") as root:
        return latency_and_catch_up(Path(root), quick) + report_over_a_year(quick)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    print(table(measure(parser.parse_args().quick)))
