"""The store's journal hook: each shared fact becomes this dock's next signed event, in
the same SQLite transaction as the record it describes (so a crash can never leave a
session recorded but unshared, or shared but unrecorded)."""
from __future__ import annotations

import sqlite3
from datetime import datetime
from typing import Any, Callable


from appliance.fleet.ledger import Ledger
from appliance.fleet.shared import SHARED_ACTIONS, shared_payload
from appliance.record.values import to_second

COUNTERS = "pen_counters"  # not an audit action: the store reports counters on its own


class Journal:
    """Callable the Store runs inside its transaction: `(conn, action, detail, at)`."""

    def __init__(self, dock_id: str, clock, recorded: Callable[[], None] | None = None):
        self.dock_id = dock_id
        self.clock = clock
        # Wakes the link (its own process, fleet/process.py) after a new event. It runs on
        # the decision's path, inside its transaction: it must be cheap and never block.
        self.recorded = recorded

    def __call__(self, conn: sqlite3.Connection, action: str, detail: dict[str, Any],
                 at: datetime | None, audit_id: int | None = None) -> None:
        if action not in SHARED_ACTIONS and action != COUNTERS:
            return
        Ledger(conn, self.dock_id).record_own(action, shared_payload(action, detail),
                                              at or to_second(self.clock.now()), audit_id)
        if self.recorded is not None:
            self.recorded()
