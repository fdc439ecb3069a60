"""P6 on a clinic's dock: the data folder's growth per own session with the fleet's journal
on (the P6 bar applies), and per session of a peer (no bar).

The `bench_dock` P6 method (growth between session `warm` and the end, WAL checkpointed)
on a simulated dock whose store signs every shared fact into its fleet tables (the
`[fleet]` journal hook; no broker needed: the outbox is what the link would publish),
and a second store in the same process receiving those events as a peer does (verified,
ingested, applied). `--tables` prints where the bytes go (SQLite's dbstat).

    python -m tests.bench.bench_fleet_disk [--sessions 1000] [--tables]
"""
from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
from datetime import timezone
from pathlib import Path

from tests.bench.bench_dock import FIVE_YEARS_SESSIONS, P6_FIVE_YEARS_LIMIT_MB, P6_LIMIT_BYTES, \
    folder_bytes
from tests.bench.common import Figure, table
from tests.support.inprocess import SimDock


def table_bytes(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return dict(conn.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name"))
    finally:
        conn.close()


def run(sessions: int, *, fleet: bool = True) -> dict:
    from appliance.fleet import events as ev
    from appliance.fleet.journal import Journal
    from appliance.fleet.ledger import Ledger
    from appliance.record.store import DB_NAME, Store
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    with tempfile.TemporaryDirectory(prefix="pendock-fleetdisk-") as tmp:
        data, peer_data = Path(tmp) / "data", Path(tmp) / "peer"
        sim = SimDock(data, Path(tmp) / "control.sock", loop=False)
        peer_data.mkdir()
        peer = Store(peer_data / DB_NAME)
        key = Ed25519PrivateKey.generate()
        keyring = {"room-1": key.public_key()}
        ledger = Ledger(peer._conn, "room-2")
        out: dict = {}
        try:
            sim.dock.hw.seat.settle_s = 0.001
            if fleet:
                sim.store.journal = Journal("room-1", sim.clock)
            warm = max(1, sessions // 5)
            sent = 0
            for n in range(1, sessions + 1):
                sim.session_cycle(f"P-{n}", minutes=1, depth=1.0)
                if fleet:  # what the link would deliver to the peer
                    rows = Ledger(sim.store._conn, "room-1", key).events_after("room-1", sent, 1000)
                    batch = [ev.verify(ev.decode_event(body), keyring) for _, body in rows]
                    with peer.transaction("bench"):
                        ledger.ingest(batch, min_interval_days=28, tz=timezone.utc,
                                      now=sim.clock.now())
                    sent = rows[-1][0] if rows else sent
                    with sim.store.transaction("bench"):  # the broker acknowledged them
                        Ledger(sim.store._conn, "room-1").acknowledged(seq for seq, _ in rows)
                if n == warm:
                    out["warm"] = (n, folder_bytes(data), folder_bytes(peer_data),
                                   table_bytes(data / DB_NAME), table_bytes(peer_data / DB_NAME))
            out["end"] = (sessions, folder_bytes(data), folder_bytes(peer_data),
                          table_bytes(data / DB_NAME), table_bytes(peer_data / DB_NAME))
            out["peer_sessions"] = peer._conn.execute(
                "SELECT count(*) FROM fleet_sessions").fetchone()[0]
        finally:
            peer.close()
            sim.close()
    return out


def measure(quick: bool = False, sessions: int | None = None, tables: bool = False
            ) -> list[Figure]:
    got = run(sessions or (250 if quick else 1000))
    (n1, own1, peer1, t1, p1), (n2, own2, peer2, t2, p2) = got["warm"], got["end"]
    own = (own2 - own1) / (n2 - n1)
    peer = (peer2 - peer1) / (n2 - n1)
    five_years_mb = (own2 + own * (FIVE_YEARS_SESSIONS - n2)) / 1e6
    if tables:
        for label, before, after in (("own dock", t1, t2), ("peer", p1, p2)):
            print(f"-- {label}: bytes per session by table/index")
            for name in sorted(after, key=lambda k: -(after[k] - before.get(k, 0))):
                grown = (after[name] - before.get(name, 0)) / (n2 - n1)
                if grown:
                    print(f"   {name:40s} {grown:8.0f}")
    how = f"growth from session {n1} to {n2}, `[fleet]` journal on"
    return [
        Figure("P6 on a clinic's dock, per own session", f"{own:.0f} B", f"<= {P6_LIMIT_BYTES} B",
               own <= P6_LIMIT_BYTES, how),
        Figure("P6 on a clinic's dock, five years at 50/day", f"{five_years_mb:.1f} MB",
               f"<= {P6_FIVE_YEARS_LIMIT_MB} MB", five_years_mb <= P6_FIVE_YEARS_LIMIT_MB,
               f"{FIVE_YEARS_SESSIONS} own sessions extrapolated"),
        Figure("P6 on a peer, per session of another dock", f"{peer:.0f} B", "-", True,
               f"{got['peer_sessions']} peer sessions received (verified, ingested, applied)"),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--tables", action="store_true", help="print bytes by table (dbstat)")
    args = parser.parse_args(argv)
    figures = measure(sessions=args.sessions, tables=args.tables)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
