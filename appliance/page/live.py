"""A bounded long-poll for the live state (P7: a change at the dock on an open page within
1 s p99), instead of every page asking every second.

`GET /api/status?wait=VERSION` answers as soon as the status differs from VERSION (the
X-Status-Version header of the page's last answer), or after WAIT_S with the same one.
Waiting holds a waitress thread, so only `slots` requests may wait at once, one per client
address: one more is
answered at once (X-Status-Wait: no) and its page asks again a second later. The status
itself still comes through the shared StatusCache, so waiting pages add no daemon calls.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from typing import Callable

WAIT_S = 20.0  # a waiting request is answered at least this often (proxies, sleeping tablets)
STEP_S = 0.05  # how often a waiting request looks at the (cached) status
# Keys that change with every look but are not a change at the dock.
_MOVING = ("now", "today")


def version_of(status: dict) -> str:
    """A short fingerprint of what a person would see change (not the ticking clock)."""
    steady = {key: value for key, value in status.items() if key not in _MOVING}
    session = steady.get("session")
    if isinstance(session, dict):
        steady["session"] = {k: v for k, v in session.items() if k != "out_seconds"}
    text = json.dumps(steady, sort_keys=True, default=str)
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class StatusWaiters:
    """At most `slots` requests waiting for a change at once, and at most `per_client` of
    them from one client (its address): one tablet's tabs cannot take every slot and
    starve the therapist's page (S8)."""

    def __init__(self, slots: int, wait_s: float = WAIT_S, step_s: float = STEP_S, per_client: int = 1):
        self.wait_s, self.step_s, self.slots, self.per_client = wait_s, step_s, slots, per_client
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}

    def _take(self, client: str) -> bool:
        with self._lock:
            if sum(self._held.values()) >= self.slots or self._held.get(client, 0) >= self.per_client:
                return False
            self._held[client] = self._held.get(client, 0) + 1
            return True

    def _give(self, client: str) -> None:
        with self._lock:
            left = self._held.pop(client, 1) - 1
            if left > 0:
                self._held[client] = left

    def wait(self, get: Callable[[], dict], known: str, client: str = "") -> tuple[dict, bool]:
        """(status, waited): the first status whose version is not `known`, or the status
        after wait_s; waited is False when no slot was free (answered at once)."""
        status = get()
        if version_of(status) != known:
            return status, True
        if not self._take(client):
            return status, False
        try:
            deadline = time.monotonic() + self.wait_s
            while time.monotonic() < deadline:
                time.sleep(self.step_s)
                status = get()
                if version_of(status) != known:
                    break
            return status, True
        finally:
            self._give(client)
