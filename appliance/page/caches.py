"""What many open pages share, so they cost the dock little: the daemon's status asked
at most a few times a second, and a day's rendered pieces kept until the record changes.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict
from datetime import date
from typing import Callable

from appliance.record.store import Store


class StatusCache:
    """The daemon's status, asked at most once per `fresh_s` however many pages poll:
    one caller asks, the others wait for its answer (a failure is not cached)."""

    def __init__(self, ask: Callable[[], dict], fresh_s: float):
        self.ask, self.fresh_s = ask, fresh_s
        self._lock = threading.Lock()
        self._value: dict | None = None
        self._at = float("-inf")

    def get(self) -> dict:
        with self._lock:
            if time.monotonic() - self._at > self.fresh_s:
                self._value = self.ask()
                self._at = time.monotonic()
            return self._value

    def put(self, value: dict) -> None:
        """A fresher status, as an action's answer brought it."""
        with self._lock:
            self._value, self._at = value, time.monotonic()


class HealthCache:
    """Whether the daemon answers, asked at most once per `fresh_s`, a failure included
    (an open /healthz must not let a flood reach the daemon, S8)."""

    def __init__(self, ask: Callable[[], object], fresh_s: float):
        self.ask, self.fresh_s = ask, fresh_s
        self._lock = threading.Lock()
        self._ok = False
        self._at = float("-inf")

    def ok(self) -> bool:
        with self._lock:
            if time.monotonic() - self._at > self.fresh_s:
                try:
                    self.ask()
                    self._ok = True
                except Exception:  # noqa: BLE001 - any failure to answer is "not healthy"
                    self._ok = False
                self._at = time.monotonic()
            return self._ok


class DayRecord:
    """One day's sessions as read at one version of the record, and what the page makes
    of them (rows, timeline, JSON, CSV), each made once. Shared by threads: read only."""

    def __init__(self, sessions: list[dict]):
        self.sessions = sessions
        self.has_open = any(s.get("outcome") == "open" for s in sessions)
        self._pieces: dict[str, tuple[object, object]] = {}  # name -> (moment, value)

    def piece(self, name: str, make: Callable[[list[dict]], object], *, moment: object = None):
        """The piece `name`, made once; one that changes with time is made again when
        `moment` changes (only the latest is kept). Two threads may both make it: same value."""
        found = self._pieces.get(name)
        if found is None or found[0] != moment:
            found = self._pieces[name] = (moment, make(self.sessions))
        return found[1]


class DayCache:
    """The last `size` days asked for, each kept until another connection (the daemon)
    commits: many open pages read and render a day once per change, not once per request.

    The record's data_version is read before the day, so a commit in between makes an
    entry newer than its key (read again next time), never older."""

    def __init__(self, store: Callable[[], Store], size: int):
        if size < 1:
            raise ValueError(f"days_kept={size}: keep at least one day")
        self.store, self.size = store, size
        self._lock = threading.Lock()
        self._days: OrderedDict[date, tuple[int, DayRecord]] = OrderedDict()

    def day(self, day: date) -> DayRecord:
        store = self.store()
        version = store.data_version()
        with self._lock:
            kept = self._days.get(day)
            if kept is not None and kept[0] == version:
                self._days.move_to_end(day)
                return kept[1]
        found = DayRecord(store.sessions_on(day))
        with self._lock:
            self._days[day] = (version, found)
            self._days.move_to_end(day)
            while len(self._days) > self.size:
                self._days.popitem(last=False)
        return found

    def __len__(self) -> int:
        return len(self._days)
