"""The durable record: pens, sessions, the audit chain, dock state, users and tokens.

One writer (the daemon) and any number of read-only readers (the page, the CLI). The
writer commits every change durably (WAL, synchronous=FULL) before a method returns,
so what a method reported written survives a power cut. Readers open the file with
`mode=ro`, so a reader can never change the record.

Hot paths use the raw connection with parameters; sqlite-utils builds the schema
(see migrations.py). Times go in as aware datetimes and are stored as ISO 8601 text
with their UTC offset; `day` is the dock-local date of a session's start.
"""
from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any

import sqlite_utils

from appliance.record import audit as audit_chain
from appliance.record import migrations
from appliance.core.model import AuditEntry, History, PenReading, PenRecord, SessionResult, Treatment

DB_NAME = "pendock.db"
BUSY_TIMEOUT_MS = 5000
# FULL: every commit is on the disk before the method returns (the brief's promise).
# The others exist for the power-cut test's negative control (see daemon.start_dock).
SYNCHRONOUS_LEVELS = ("FULL", "EXTRA", "NORMAL", "OFF")

# The contract's `log --json` keys, in its order; rows carry these first, then the rest.
LOG_KEYS = ("id", "started_at", "ended_at", "client_ref", "area", "pen_serial",
            "cartridge_serial", "needling_seconds", "strokes", "max_depth_mm", "outcome",
            "warnings", "overrides", "next_eligible_date", "recommended_date")
EXTRA_KEYS = ("checklist", "forced", "day", "strokes_start", "motor_seconds_start",
              "strokes_end", "motor_seconds_end")
_SESSION_COLUMNS = ", ".join(LOG_KEYS + EXTRA_KEYS)
_JSON_LISTS = ("warnings", "overrides", "checklist")
CLOSED_OUTCOMES = ("completed", "interrupted")


class StoreError(Exception):
    """The record cannot do what was asked; the message says why and what to do."""


class StorageError(StoreError):
    """A write failed in SQLite (disk full, read-only folder, locked, damaged file)."""


def _iso(moment: datetime) -> str:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone: pass an aware datetime")
    return moment.isoformat()


def _json_list(values: Iterable[str]) -> str:
    return json.dumps(sorted(values) if isinstance(values, (set, frozenset)) else list(values))


def _merged(first: Iterable[str], second: Iterable[str]) -> list[str]:
    """Both lists, in order, each code once."""
    return list(dict.fromkeys([*first, *second]))


def _session_dict(row: sqlite3.Row) -> dict[str, Any]:
    session = dict(row)
    for key in _JSON_LISTS:
        session[key] = json.loads(session[key]) if session[key] else []
    session["forced"] = bool(session["forced"])
    return session


def _newest_first(sessions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """By the instant they started (offsets differ across a DST change), then by id."""
    return sorted(sessions, key=lambda s: (datetime.fromisoformat(s["started_at"]), s["id"]),
                  reverse=True)


class Store:
    """The dock's SQLite record. `Store.open(data_dir)` for the daemon,
    `Store.open(data_dir, readonly=True)` for the page and the CLI."""

    def __init__(self, path: Path, *, readonly: bool = False, synchronous: str = "FULL") -> None:
        if str(synchronous).upper() not in SYNCHRONOUS_LEVELS:
            raise ValueError(f"synchronous={synchronous!r}: use one of "
                             f"{', '.join(SYNCHRONOUS_LEVELS)} (FULL unless testing)")
        self.path = Path(path)
        self.readonly = readonly
        self.synchronous = str(synchronous).upper()
        self._lock = threading.RLock()  # one connection, shared by a server's threads
        self._depth = 0  # nesting of transaction()
        self._tail = audit_chain.Tail()
        self._data_version = 0
        self._conn = self._connect_reader() if readonly else self._connect_writer()
        self._conn.row_factory = sqlite3.Row
        self.db = sqlite_utils.Database(self._conn)

    @classmethod
    def open(cls, data_dir: Path, readonly: bool = False) -> "Store":
        return cls(Path(data_dir) / DB_NAME, readonly=readonly)

    # -- opening and closing -------------------------------------------------------------

    def _connect_writer(self) -> sqlite3.Connection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise StorageError(
                f"cannot open the record {self.path} for writing ({error}): check that the "
                f"data folder exists and belongs to the dock's user") from error
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {self.synchronous}")
            conn.execute("PRAGMA foreign_keys = ON")
            self._check_version(conn, writer=True)
            migrations.migrate(sqlite_utils.Database(conn))
            self._tail = audit_chain.read_tail(conn)
            self._data_version = conn.execute("PRAGMA data_version").fetchone()[0]
        except StoreError:
            conn.close()
            raise
        except sqlite3.Error as error:
            conn.close()
            raise StorageError(
                f"cannot prepare the record {self.path} ({error}): check the disk has space "
                f"and the folder is writable; if the file is damaged, restore a backup"
            ) from error
        return conn

    def _connect_reader(self) -> sqlite3.Connection:
        if not self.path.is_file():
            raise StoreError(
                f"no record at {self.path}: start the dock daemon first (it creates the "
                f"database), or point PENDOCK_DATA at the right data folder")
        try:
            conn = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True,
                                   isolation_level=None, check_same_thread=False)
        except sqlite3.Error as error:
            raise StoreError(f"cannot read the record {self.path} ({error}): check that this "
                             f"user may read the data folder") from error
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS:d}")
            self._check_version(conn, writer=False)
        except (StoreError, sqlite3.Error) as error:
            conn.close()
            if isinstance(error, StoreError):
                raise
            raise StoreError(f"cannot read the record {self.path} ({error}): check that this "
                             f"user may read the data folder") from error
        return conn

    def _check_version(self, conn: sqlite3.Connection, *, writer: bool) -> None:
        found, ours = migrations.schema_version(conn), migrations.CURRENT_VERSION
        if found > ours:
            raise StoreError(f"database schema {found} is newer than this software ({ours}): "
                             f"upgrade pen-dock or restore a backup ({self.path})")
        if not writer and found < ours:
            raise StoreError(f"database schema {found} is older than this software ({ours}): "
                             f"start the dock daemon once to upgrade {self.path}")

    @property
    def schema_version(self) -> int:
        with self._lock:
            return migrations.schema_version(self._conn)

    def data_version(self) -> int:
        """Changes whenever another connection (the daemon) has committed: what a reader
        keys its caches on (SQLite's PRAGMA data_version; one cheap call, no table read)."""
        return self._read("PRAGMA data_version")[0][0]

    def close(self) -> None:
        with self._lock:
            if self._conn is None:
                return
            if not self.readonly:
                try:
                    self._conn.execute("PRAGMA optimize")
                except sqlite3.Error:
                    pass  # closing matters more than tuning
            self._conn.close()
            self._conn = None

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------

    @contextmanager
    def transaction(self, what: str = "the record") -> Iterator["Store"]:
        """Group several writes into one durable commit; nested blocks join the outer one.

        On an SQLite error everything in the block is rolled back and a `StorageError`
        names `what` failed. The store keeps working once the cause is gone.
        """
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the record {self.path} is closed")
            if self.readonly:
                raise StoreError(f"cannot write {what}: this store is read-only (only the "
                                 f"dock daemon writes the record)")
            if self._depth:
                self._depth += 1
                try:
                    yield self
                except sqlite3.Error as error:
                    raise self._storage_error(what, error) from error
                finally:
                    self._depth -= 1
                return
            tail_before = self._tail
            self._depth = 1
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                self._refresh_tail()
                tail_before = self._tail
                yield self
                self._conn.execute("COMMIT")
            except BaseException as error:
                self._rollback()
                self._tail = tail_before
                if isinstance(error, sqlite3.Error):
                    raise self._storage_error(what, error) from error
                raise
            finally:
                self._depth = 0

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # SQLite rolled back already (e.g. after SQLITE_FULL)

    def _storage_error(self, what: str, error: sqlite3.Error) -> StorageError:
        return StorageError(
            f"could not write {what} to {self.path} ({error}); nothing of it was saved. "
            f"Check the disk has space (df -h {self.path.parent}) and the data folder is "
            f"writable by the dock's user; the dock keeps the pen held until it can write")

    def _refresh_tail(self) -> None:
        """Re-read the chain's tail only when another connection committed meanwhile."""
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if version != self._data_version:
            self._tail = audit_chain.read_tail(self._conn)
            self._data_version = version

    def _read(self, sql: str, params: tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            if self._conn is None:
                raise StoreError(f"the record {self.path} is closed")
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as error:
                raise StoreError(f"cannot read the record {self.path} ({error})") from error

    # -- audit ---------------------------------------------------------------------------

    def audit(self, actor: str, action: str, detail: dict, at: datetime,
              clock_synced: bool) -> AuditEntry:
        """Append one entry to the hash chain, durably."""
        with self.transaction(f"the audit entry {action!r}"):
            return self._audit(actor, action, detail, at, clock_synced)

    def _audit(self, actor: str, action: str, detail: dict, at: datetime,
               clock_synced: bool) -> AuditEntry:
        entry = audit_chain.append(self._conn, actor, action, detail, at, clock_synced,
                                   tail=self._tail)
        self._tail = audit_chain.Tail(entry.id, entry.hash)
        return entry

    def verify_audit(self) -> audit_chain.VerifyResult:
        with self._lock:
            return audit_chain.verify(self._conn)

    def audit_entries(self, limit: int = 50, before_id: int | None = None) -> list[AuditEntry]:
        with self._lock:
            return audit_chain.entries(self._conn, limit, before_id)

    # -- pens ----------------------------------------------------------------------------

    def pen(self, serial: int) -> PenRecord | None:
        rows = self._read("SELECT serial, last_strokes, last_motor_seconds, "
                          "service_motor_seconds FROM pens WHERE serial = ?", (serial,))
        return PenRecord(*rows[0]) if rows else None

    def register_pen(self, reading: PenReading, at: datetime, actor: str,
                     clock_synced: bool) -> PenRecord:
        """First sight of a pen: its counters now are its baseline and its last service."""
        with self.transaction(f"pen {reading.pen_serial}"):
            if self.pen(reading.pen_serial) is not None:
                raise StoreError(f"pen {reading.pen_serial} is already registered")
            self._conn.execute(
                "INSERT INTO pens (serial, firmware, first_seen, last_strokes, "
                "last_motor_seconds, service_motor_seconds) VALUES (?, ?, ?, ?, ?, ?)",
                (reading.pen_serial, reading.firmware, _iso(at), reading.strokes,
                 reading.motor_seconds, reading.motor_seconds))
            self._audit(actor, "pen_registered",
                        {"serial": reading.pen_serial, "firmware": reading.firmware,
                         "strokes": reading.strokes, "motor_seconds": reading.motor_seconds},
                        at, clock_synced)
        return PenRecord(reading.pen_serial, reading.strokes, reading.motor_seconds,
                         reading.motor_seconds)

    def _known_pen(self, serial: int) -> PenRecord:
        record = self.pen(serial)
        if record is None:
            raise StoreError(f"pen {serial} is not registered: dock it once so the dock "
                             f"records it")
        return record

    def record_pen_counters(self, serial: int, strokes: int, motor_seconds: int) -> None:
        """The counters of the latest valid reading: what a rollback is measured against."""
        with self.transaction(f"the counters of pen {serial}"):
            cursor = self._conn.execute(
                "UPDATE pens SET last_strokes = ?, last_motor_seconds = ? WHERE serial = ?",
                (strokes, motor_seconds, serial))
            if cursor.rowcount == 0:
                self._known_pen(serial)

    def service_reset(self, serial: int, motor_seconds: int, actor: str, reason: str,
                      at: datetime, clock_synced: bool) -> None:
        """A technician serviced the pen: motor time since service counts from here."""
        with self.transaction(f"the service reset of pen {serial}"):
            before = self._known_pen(serial)
            self._conn.execute("UPDATE pens SET service_motor_seconds = ? WHERE serial = ?",
                               (motor_seconds, serial))
            self._audit(actor, "service_reset",
                        {"serial": serial, "motor_seconds": motor_seconds, "reason": reason,
                         "previous_service_motor_seconds": before.service_motor_seconds},
                        at, clock_synced)

    def rebaseline(self, serial: int, strokes: int, motor_seconds: int, actor: str,
                   reason: str, at: datetime, clock_synced: bool) -> None:
        """A technician accepts lower counters (a swapped board) as the pen's new baseline.

        The service baseline never stays above the motor counter, or a board swap would
        push the next service out by the old board's hours.
        """
        with self.transaction(f"the re-baseline of pen {serial}"):
            before = self._known_pen(serial)
            service = min(before.service_motor_seconds, motor_seconds)
            self._conn.execute(
                "UPDATE pens SET last_strokes = ?, last_motor_seconds = ?, "
                "service_motor_seconds = ? WHERE serial = ?",
                (strokes, motor_seconds, service, serial))
            self._audit(actor, "rebaseline",
                        {"serial": serial, "strokes": strokes, "motor_seconds": motor_seconds,
                         "service_motor_seconds": service, "reason": reason,
                         "previous_strokes": before.last_strokes,
                         "previous_motor_seconds": before.last_motor_seconds},
                        at, clock_synced)

    # -- history -------------------------------------------------------------------------

    def cartridge_used(self, serial: int) -> bool:
        """Whether this cartridge serial was on any earlier session (even a purged one)."""
        if serial == 0:
            return False
        rows = self._read(
            "SELECT EXISTS (SELECT 1 FROM spent_cartridges WHERE serial = ?) "
            "OR EXISTS (SELECT 1 FROM sessions WHERE cartridge_serial = ?)", (serial, serial))
        return bool(rows[0][0])

    def treatments(self, client_ref: str, since: datetime) -> tuple[Treatment, ...]:
        """The client's finished sessions (every area) started at or after `since`, newest
        first. The SQL bound is widened by two days because ISO texts with different UTC
        offsets do not sort as instants; the exact cut is made on parsed times."""
        _iso(since)
        rough = (since - timedelta(days=2)).isoformat()
        rows = self._read(
            "SELECT client_ref, area, started_at FROM sessions "
            "WHERE client_ref = ? AND started_at >= ? AND outcome != 'open'",
            (client_ref, rough))
        found = [Treatment(ref, area, datetime.fromisoformat(started))
                 for ref, area, started in rows]
        return tuple(sorted((t for t in found if t.started_at >= since),
                            key=lambda t: t.started_at, reverse=True))

    def history(self, reading: PenReading | None, client_ref: str | None, now: datetime,
                window_days: int) -> History:
        """What the rules need for one decision: the pen, the cartridge, the client."""
        pen = self.pen(reading.pen_serial) if reading else None
        used = self.cartridge_used(reading.cartridge_serial) if reading else False
        treatments = (self.treatments(client_ref, now - timedelta(days=window_days))
                      if client_ref else ())
        return History(pen=pen, cartridge_used_before=used, treatments=treatments)

    # -- sessions ------------------------------------------------------------------------

    def open_session(self, *, started_at: datetime, client_ref: str | None, area: str | None,
                     pen_serial: int, cartridge_serial: int, strokes_start: int,
                     motor_seconds_start: int, warnings: Iterable[str] = (),
                     overrides: Iterable[str] = (), checklist: Iterable[str] = (),
                     forced: bool = False, actor: str = "dock", clock_synced: bool = True,
                     tz: tzinfo | None = None) -> int:
        """Record a session that just started, with its audit entry, in one commit.

        `day` is started_at's date in `tz` (the dock's zone), or in started_at's own
        offset when no tz is given. The cartridge is spent from this moment on.
        """
        started = _iso(started_at)
        day = (started_at.astimezone(tz) if tz else started_at).date().isoformat()
        warnings, overrides = list(warnings), list(overrides)
        with self.transaction("the new session"):
            self._known_pen(pen_serial)
            cursor = self._conn.execute(
                "INSERT INTO sessions (day, started_at, client_ref, area, pen_serial, "
                "cartridge_serial, strokes_start, motor_seconds_start, outcome, warnings, "
                "overrides, checklist, forced) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?, ?)",
                (day, started, client_ref, area, pen_serial, cartridge_serial, strokes_start,
                 motor_seconds_start, _json_list(warnings), _json_list(overrides),
                 _json_list(checklist), int(forced)))
            session_id = cursor.lastrowid
            if cartridge_serial:
                self._conn.execute(
                    "INSERT OR IGNORE INTO spent_cartridges (serial, first_used) VALUES (?, ?)",
                    (cartridge_serial, started))
            self._audit(actor, "session_opened",
                        {"session": session_id, "client_ref": client_ref, "area": area,
                         "pen_serial": pen_serial, "cartridge_serial": cartridge_serial,
                         "warnings": warnings, "overrides": overrides, "forced": bool(forced)},
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
            warnings = _merged(json.loads(rows[0][0]), result.warnings)
            self._conn.execute(
                "UPDATE sessions SET ended_at = ?, outcome = ?, strokes_end = ?, "
                "motor_seconds_end = ?, needling_seconds = ?, strokes = ?, max_depth_mm = ?, "
                "warnings = ?, next_eligible_date = ?, recommended_date = ? WHERE id = ?",
                (_iso(result.ended_at), outcome, strokes_end, motor_seconds_end,
                 result.needling_seconds, result.strokes, result.max_depth_mm,
                 json.dumps(warnings),
                 next_eligible_date.isoformat() if next_eligible_date else None,
                 recommended_date.isoformat() if recommended_date else None, session_id))
            self._audit(actor, "session_closed",
                        {"session": session_id, "outcome": outcome,
                         "needling_seconds": result.needling_seconds,
                         "strokes": result.strokes, "max_depth_mm": result.max_depth_mm,
                         "warnings": warnings},
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
                    (_iso(at), session_id))
                self._audit(actor, "session_interrupted", {"session": session_id}, at,
                            clock_synced)
        return ids

    def sessions_on(self, day: date) -> list[dict[str, Any]]:
        """One dock-local day's sessions, newest first (through the day index)."""
        return _newest_first(self._sessions("day = ?", (day.isoformat(),)))

    def sessions_between(self, start_day: date, end_day: date) -> list[dict[str, Any]]:
        """Sessions of start_day to end_day inclusive, newest first."""
        return _newest_first(self._sessions("day BETWEEN ? AND ?",
                                            (start_day.isoformat(), end_day.isoformat())))

    def purge_before(self, day: date, actor: str, at: datetime,
                     clock_synced: bool = True) -> int:
        """Retention: delete finished sessions of days before `day`. Audit entries stay
        (the chain covers them, not sessions) and spent cartridges stay spent."""
        with self.transaction(f"the purge of sessions before {day.isoformat()}"):
            count = self._conn.execute(
                "DELETE FROM sessions WHERE day < ? AND outcome != 'open'",
                (day.isoformat(),)).rowcount
            self._audit(actor, "sessions_purged", {"before": day.isoformat(), "count": count},
                        at, clock_synced)
        return count

    # -- backup and restore --------------------------------------------------------------

    def backup_to(self, target: Path) -> None:
        """An online copy through SQLite's backup API: consistent while the dock runs."""
        with self._lock:
            copy = sqlite3.connect(Path(target))
            try:
                self._conn.backup(copy)
            except sqlite3.Error as error:
                raise StorageError(f"the backup to {target} failed ({error}): check the disk "
                                   f"has space and the folder is writable") from error
            finally:
                copy.close()

    def restore_from(self, source: Path, actor: str, at: datetime, clock_synced: bool = True) -> None:
        """Replace the record with a checked backup, in place, then migrate and audit it."""
        with self._lock:
            src = sqlite3.connect(f"file:{Path(source)}?mode=ro", uri=True)
            try:
                verdict = src.execute("PRAGMA integrity_check").fetchone()[0]
                if verdict != "ok":
                    raise StoreError(f"{source} fails its integrity check ({verdict}): not restored")
                found = src.execute("PRAGMA user_version").fetchone()[0]
                if found > migrations.CURRENT_VERSION:
                    raise StoreError(f"{source} has schema {found}, newer than this software "
                                     f"({migrations.CURRENT_VERSION}): not restored")
                src.backup(self._conn)
            except sqlite3.Error as error:
                raise StorageError(f"restoring {source} failed ({error}); the record is unchanged "
                                   f"if the copy did not start") from error
            finally:
                src.close()
            migrations.migrate(sqlite_utils.Database(self._conn))
            self._tail = audit_chain.read_tail(self._conn)
            self._data_version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        self.audit(actor, "restored", {"from": str(source)}, at, clock_synced)

    # -- dock state ----------------------------------------------------------------------

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

    # -- users and tokens (the caller hashes) --------------------------------------------

    def add_user(self, name: str, role: str, password_hash: str, at: datetime, *,
                 actor: str = "system", clock_synced: bool = True) -> None:
        with self.transaction(f"the user {name!r}"):
            if self.user(name) is not None:
                raise StoreError(f"user {name!r} already exists: choose another name")
            self._conn.execute(
                "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
                (name, role, password_hash, _iso(at)))
            self._audit(actor, "user_added", {"name": name, "role": role}, at, clock_synced)

    def user(self, name: str) -> dict[str, Any] | None:
        rows = self._read("SELECT name, role, password_hash, created_at FROM users "
                          "WHERE name = ?", (name,))
        return dict(rows[0]) if rows else None

    def add_token(self, name: str, token_hash: str, at: datetime, *, actor: str = "system",
                  clock_synced: bool = True) -> int:
        with self.transaction(f"the API token {name!r}"):
            token_id = self._conn.execute(
                "INSERT INTO tokens (name, token_hash, created_at) VALUES (?, ?, ?)",
                (name, token_hash, _iso(at))).lastrowid
            self._audit(actor, "token_created", {"id": token_id, "name": name}, at,
                        clock_synced)
        return token_id

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        rows = self._read("SELECT id, name, token_hash, created_at FROM tokens "
                          "WHERE token_hash = ?", (token_hash,))
        return dict(rows[0]) if rows else None
