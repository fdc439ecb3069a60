"""Joining a dock to its clinic at start-up: the `[fleet]` table to a running link.

Refusals are errors a technician can act on (a missing key, an unreadable password
file), raised before the dock starts, so a misconfigured dock never runs believing it
shares a history it does not.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from appliance.fleet import keys
from appliance.fleet.events import DROP_CATEGORIES
from appliance.fleet.journal import Journal
from appliance.fleet.ledger import Ledger
from appliance.fleet.process import LinkProcess
from appliance.fleet.settings import parse_broker
from appliance.record.store import DB_NAME, Store, StoreError

DEMO_KEY = "fleet.key"
DEMO_KEYS_DIR = "fleet-keys"  # beside the demo's data folder: demos there trust each other


class FleetError(StoreError):
    """The [fleet] settings cannot be used; the message says which and what to do."""


def start_fleet(config, data_dir: Path, store: Store, clock, *, synchronous: str = "FULL"
                ) -> LinkProcess | None:
    """None without a broker. Otherwise: the store's journal hook set (so every shared fact
    is signed into the outbox with its record) and the link started in its own process
    (fleet/process.py says why)."""
    fleet = config.fleet
    if not fleet.broker:
        return None
    try:
        broker = parse_broker(fleet.broker)
    except ValueError as error:
        raise FleetError(f"[fleet] {error}") from None
    data_dir = Path(data_dir)
    try:
        if fleet.key_file:
            key = keys.load_private_key(Path(fleet.key_file))
        else:  # a demo without provisioning: its own key, shared beside its data folder
            path = data_dir / DEMO_KEY
            key = keys.load_private_key(path) if path.exists() else keys.new_private_key(path)
        keys_dir = Path(fleet.keys_dir) if fleet.keys_dir else data_dir.resolve().parent / DEMO_KEYS_DIR
        if not fleet.keys_dir:
            keys.claim_public(keys_dir, fleet.dock_id, key, data_dir / DEMO_KEY)
        keyring = keys.load_keyring(keys_dir)
    except keys.KeyError_ as error:
        raise FleetError(f"[fleet] {error}") from None
    if fleet.dock_id not in keyring or keys.public_line(key) != _ring_line(keys_dir, fleet.dock_id):
        raise FleetError(f"[fleet] {keys_dir}/{fleet.dock_id}.pub is missing or is not this "
                         f"dock's key ({fleet.key_file or data_dir / DEMO_KEY}): copy the clinic's "
                         f"keys folder from `pendock fleet provision` again")
    password = ""
    if fleet.password_file:
        try:
            password = Path(fleet.password_file).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise FleetError(f"[fleet] password_file {fleet.password_file}: cannot read it "
                             f"({error.strerror or error}); it must be readable by the dock's "
                             f"user alone") from None
    settings = {
        "dock_id": fleet.dock_id, "broker": str(broker), "db_path": str((data_dir / DB_NAME).resolve()),
        "key_file": str(Path(fleet.key_file or data_dir / DEMO_KEY).resolve()),
        "keys_dir": str(keys_dir.resolve()), "username": fleet.username or fleet.dock_id,
        "password": password, "tls_ca_file": fleet.tls_ca_file, "synchronous": synchronous,
        "min_interval_days": config.rules.min_interval_days, "timezone": config.dock.timezone,
        "stale_after_s": fleet.stale_after_minutes * 60, "clinic": fleet.clinic,
        "log_level": logging.getLogger().getEffectiveLevel(),
    }
    link = LinkProcess(settings, clock=clock, broker=broker,
                       stale_after_s=fleet.stale_after_minutes * 60,
                       initial_status=_initial_status(store, fleet.dock_id, broker, keyring))
    store.journal = Journal(fleet.dock_id, clock, recorded=link.wake)
    return link.start()


def _initial_status(store: Store, dock_id: str, broker, keyring) -> dict[str, Any]:
    """What `pendock fleet` says until the link's process first reports (well under a second)."""
    ledger = Ledger(store.conn, dock_id)
    return {
        "dock_id": dock_id, "broker": str(broker), "connected": False, "outbox": ledger.outbox_count(),
        "peers": [{"dock_id": d, "last_heard": None, "online": None, "seq": 0}
                  for d in sorted(keyring) if d != dock_id],
        "conflicts": ledger.conflict_count(), "recent_conflicts": ledger.conflicts(5),
        "dropped": {c: 0 for c in DROP_CATEGORIES}, "duplicates": 0, "received": 0,
        "last_error": None, "kicked": 0, "equivocations": ledger.equivocation_count(),
        "recent_equivocations": ledger.equivocations(5),
    }


def _ring_line(folder: Path, dock: str) -> str:
    try:
        return (folder / f"{dock}.pub").read_text(encoding="ascii").strip()
    except OSError:
        return ""
