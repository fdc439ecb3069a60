"""A dock of a chain's clinic, for the chain's tests: the dock's real fleet link
(appliance/fleet/link.py, with its outbox, catch-up and the chain's acknowledgement) on a
real record, with sessions written into the record as the dock's journal writes them.
Driven on stdin, one command a line, each answered with one JSON line:

  sessions N     N sessions (opened, then closed), each in its own transaction
  status         the link's status (outbox, chain acknowledgement, ...)
  quit

Run it as `python -m tests.support.chaindock DB DOCK CLINIC BROKER KEY KEYS_DIR`; a test
starts it with `ip netns exec` in its clinic's namespace.
"""
from __future__ import annotations

import json
import sys
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from appliance.fleet import keys
from appliance.fleet.child import OffsetClock
from appliance.fleet.ledger import Ledger
from appliance.fleet.link import FleetLink
from appliance.fleet.settings import parse_broker
from appliance.record.store import Store


def main(argv: list[str]) -> int:
    db, dock, clinic, broker, key_file, keys_dir = argv
    clock = OffsetClock(ZoneInfo("UTC"))
    store = Store(Path(db))
    ring = keys.load_keyring(Path(keys_dir))
    link = FleetLink(dock_id=dock, broker=parse_broker(broker), db_path=Path(db),
                     key=keys.load_private_key(Path(key_file)), keyring=ring, keys_dir=Path(keys_dir),
                     clock=clock, min_interval_days=21, tz=ZoneInfo("UTC"), stale_after_s=3,
                     clinic=clinic).start()
    ledger = Ledger(store.conn, dock)
    session = store.conn.execute("SELECT count(*) FROM fleet_own WHERE hash IS NOT NULL").fetchone()[0] // 2
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        if words[0] == "sessions":
            for _ in range(int(words[1])):
                session += 1
                for kind, payload in (
                        ("session_opened", {"session": session, "client_ref": f"BK-{session}",
                                            "area": "face", "pen_serial": 42, "cartridge_serial": 0}),
                        ("session_closed", {"session": session, "outcome": "completed"})):
                    with store.transaction("a session"):
                        ledger.record_own(kind, payload, datetime.now(timezone.utc).replace(microsecond=0))
                link.wake.set()
            reply = {"own_seq": ledger.own_seq()}
        elif words[0] == "status":
            reply = link.status()
        else:
            break
        print(json.dumps(reply), flush=True)
    link.close()
    store.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
