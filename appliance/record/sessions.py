"""Sessions: opened when a pen leaves, closed with what it added up to, interrupted by a
restart, listed by day for the log, purged by retention.

A mixin of `Store` (store.py). `day` is the dock-local date of a session's start.
"""
from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from datetime import date, datetime, tzinfo
from typing import Any

from appliance.core.model import SessionResult
from appliance.core.rules import canonical_client_ref
from appliance.record.errors import StoreError
from appliance.record.values import iso, json_list, merged, to_second

# The `log --json` keys the README lists, in its order; rows carry these first, then the rest.
LOG_KEYS = ("id", "started_at", "ended_at", "client_ref", "area", "pen_serial",
            "cartridge_serial", "needling_seconds", "strokes", "max_depth_mm", "outcome",
            "warnings", "overrides", "next_eligible_date", "recommended_date")
EXTRA_KEYS = ("checklist", "forced", "day", "strokes_start", "motor_seconds_start",
              "strokes_end", "motor_seconds_end", "cartridge_auth", "cartridge_counter")
_SESSION_COLUMNS = ", ".join(LOG_KEYS + EXTRA_KEYS)
_JSON_LISTS = ("warnings", "overrides", "checklist")
CLOSED_OUTCOMES = ("completed", "interrupted")


def _session_dict(row: sqlite3.Row) -> dict[str, Any]:
    session = dict(row)
    for key in _JSON_LISTS:
        session[key] = json.loads(session[key]) if session[key] else []
    session["forced"] = bool(session["forced"])
    return session


# Keys of a session's audit detail left out when empty, false or null.
_OPTIONAL_DETAIL = ("client_ref", "area", "warnings", "overrides", "forced")


def _present(detail: dict[str, Any]) -> dict[str, Any]:
    """A session's audit detail without its empty lists, false flag and missing names: an
    absent key means none, as in the dock's decisions; two entries a session, kept for
    years (P6). Entries written before keep theirs; the page and the clinic's other docks
    (appliance/fleet/ledger.py) read an absent key as the empty value, older versions too."""
    return {key: value for key, value in detail.items()
            if key not in _OPTIONAL_DETAIL or value not in (None, "", [], False)}


def _newest_first(sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By the instant they started (offsets differ across a DST change), then by id."""
    return sorted(sessions, key=lambda s: (datetime.fromisoformat(s["started_at"]), s["id"]),
                  reverse=True)


class SessionsMixin:
    def open_session(self, *, started_at: datetime, client_ref: str | None, area: str | None,
                     pen_serial: int, cartridge_serial: int, strokes_start: int,
                     motor_seconds_start: int, warnings: Iterable[str] = (),
                     overrides: Iterable[str] = (), checklist: Iterable[str] = (),
                     forced: bool = False, actor: str = "dock", clock_synced: bool = True,
                     tz: tzinfo | None = None, cartridge_auth: str | None = None,
                     cartridge_counter: int | None = None) -> int:
        """Record a session that just started, with its audit entry, in one commit.

        `day` is started_at's date in `tz` (the dock's zone), or in started_at's own
        offset when no tz is given. The cartridge is spent from this moment on.
        `cartridge_auth` and `cartridge_counter`: its chip's verdict and counter (hw/).
        """
        started_at = to_second(started_at)
        started = iso(started_at)
        client_ref = canonical_client_ref(client_ref) if client_ref else client_ref  # one spelling
        day = (started_at.astimezone(tz) if tz else started_at).date().isoformat()
        warnings, overrides = list(warnings), list(overrides)
        with self.transaction("the new session"):
            self._known_pen(pen_serial)
            cursor = self._conn.execute(
                "INSERT INTO sessions (day, started_at, client_ref, area, pen_serial, "
                "cartridge_serial, strokes_start, motor_seconds_start, outcome, warnings, "
                "overrides, checklist, forced, cartridge_auth, cartridge_counter) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?, ?, ?)",
                (day, started, client_ref, area, pen_serial, cartridge_serial, strokes_start,
                 motor_seconds_start, json_list(warnings), json_list(overrides),
                 json_list(checklist), int(forced), cartridge_auth, cartridge_counter))
            session_id = cursor.lastrowid
            if cartridge_serial:
                self._conn.execute(
                    "INSERT OR IGNORE INTO spent_cartridges (serial, first_used) VALUES (?, ?)",
                    (cartridge_serial, started))
            self._audit(actor, "session_opened", _present(
                        {"session": session_id, "client_ref": client_ref, "area": area,
                         "pen_serial": pen_serial, "cartridge_serial": cartridge_serial,
                         "warnings": warnings, "overrides": overrides, "forced": bool(forced)}),
                        started_at, clock_synced)
        return session_id

    def close_session(self, session_id: int, result: SessionResult, outcome: str,
                      strokes_end: int | None, motor_seconds_end: int | None,
                      next_eligible_date: date | None, recommended_date: date | None,
                      *, actor: str = "dock", clock_synced: bool = True) -> None:
        """Close an open session with what it added up to, and audit it, in one commit.
        The result's warnings are added to those the session opened with."""
        if outcome not in CLOSED_OUTCOMES:
            raise ValueError(f"outcome {outcome!r}: a session closes as one of "
                             f"{', '.join(CLOSED_OUTCOMES)}")
        with self.transaction(f"the end of session {session_id}"):
            rows = self._conn.execute(
                "SELECT warnings FROM sessions WHERE id = ? AND outcome = 'open'",
                (session_id,)).fetchall()
            if not rows:
                raise StoreError(f"session {session_id} is not open (already closed, or no "
                                 f"such session)")
            warnings = merged(json.loads(rows[0][0]), result.warnings)
            self._conn.execute(
                "UPDATE sessions SET ended_at = ?, outcome = ?, strokes_end = ?, "
                "motor_seconds_end = ?, needling_seconds = ?, strokes = ?, max_depth_mm = ?, "
                "warnings = ?, next_eligible_date = ?, recommended_date = ? WHERE id = ?",
                (iso(to_second(result.ended_at)), outcome, strokes_end, motor_seconds_end,
                 result.needling_seconds, result.strokes, result.max_depth_mm,
                 json_list(warnings),
                 next_eligible_date.isoformat() if next_eligible_date else None,
                 recommended_date.isoformat() if recommended_date else None, session_id))
            self._audit(actor, "session_closed", _present(
                        {"session": session_id, "outcome": outcome,
                         "needling_seconds": result.needling_seconds,
                         "strokes": result.strokes, "max_depth_mm": result.max_depth_mm,
                         "warnings": warnings}),
                        result.ended_at, clock_synced)

    def _sessions(self, where: str, params: tuple = ()) -> list[dict[str, Any]]:
        rows = self._read(f"SELECT {_SESSION_COLUMNS} FROM sessions WHERE {where}", params)
        return [_session_dict(row) for row in rows]

    def session(self, session_id: int) -> dict[str, Any] | None:
        found = self._sessions("id = ?", (session_id,))
        return found[0] if found else None

    def open_sessions(self) -> list[dict[str, Any]]:
        return self._sessions("outcome = 'open' ORDER BY id")

    def interrupt_open_sessions(self, at: datetime, *, actor: str = "dock",
                                clock_synced: bool = True) -> list[int]:
        """At start-up: sessions left open by a crash or power cut end as 'interrupted'."""
        with self.transaction("the interrupted sessions"):
            ids = [row[0] for row in self._conn.execute(
                "SELECT id FROM sessions WHERE outcome = 'open' ORDER BY id")]
            for session_id in ids:
                self._conn.execute(
                    "UPDATE sessions SET outcome = 'interrupted', ended_at = ? WHERE id = ?",
                    (iso(to_second(at)), session_id))
                self._audit(actor, "session_interrupted", {"session": session_id}, at,
                            clock_synced)
        return ids

    def sessions_on(self, day: date) -> list[dict[str, Any]]:
        """One dock-local day's sessions, newest first (through the day index)."""
        return _newest_first(self._sessions("day = ?", (day.isoformat(),)))

    def peer_sessions_on(self, day: date) -> list[dict[str, Any]]:
        """The clinic's other docks' sessions of that dock-local day (appliance/fleet), in
        the `log --json` shape plus `dock_id`, newest first."""
        rows = self._read(
            "SELECT session AS id, started_at, ended_at, client_ref, area, pen_serial, "
            "cartridge_serial, needling_seconds, strokes, max_depth_mm, outcome, warnings, "
            "overrides, NULL AS next_eligible_date, NULL AS recommended_date, "
            "'[]' AS checklist, forced, day, dock_id FROM fleet_sessions WHERE day = ?",
            (day.isoformat(),))
        return _newest_first([_session_dict(row) for row in rows])

    def purge_before(self, day: date, actor: str, at: datetime,
                     clock_synced: bool = True) -> int:
        """Retention: delete finished sessions of days before `day`, by the date shown and
        by the vouched time they started at (both: a wrong clock cannot age a session
        into the purge). Audit entries stay
        (the chain covers them, not sessions) and spent cartridges stay spent."""
        with self.transaction(f"the purge of sessions before {day.isoformat()}"):
            count = self._conn.execute(
                "DELETE FROM sessions WHERE day < ? AND substr(coalesce(vouched_at, started_at), 1, 10) < ? "
                "AND outcome != 'open'", (day.isoformat(), day.isoformat())).rowcount
            self._audit(actor, "sessions_purged", {"before": day.isoformat(), "count": count},
                        at, clock_synced)
        return count
