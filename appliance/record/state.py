"""The dock's small remembered state (next client, pending overrides) as JSON values.

A mixin of `Store` (store.py). The audit chain's head lives in the same table and is
not writable through here.
"""
from __future__ import annotations

import json
from typing import Any

from appliance.record import audit as audit_chain


class StateMixin:
    def get_state(self, key: str, default: Any = None) -> Any:
        rows = self._read("SELECT value FROM state WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_state(self, key: str, value: Any) -> None:
        """Small JSON values (next client, pending overrides); None removes the key."""
        if key == audit_chain.HEAD_KEY:
            raise ValueError(f"state key {key!r} belongs to the audit chain")
        with self.transaction(f"the dock state {key!r}"):
            if value is None:
                self._conn.execute("DELETE FROM state WHERE key = ?", (key,))
            else:
                self._conn.execute(
                    "INSERT INTO state (key, value) VALUES (?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                    (key, json.dumps(value)))
