"""The durable record: one SQLite file, its connection, pragmas, migrations and
transactions; what is recorded lives in one module per concern (pens.py, history.py,
sessions.py, state.py, access.py, backup.py), composed into `Store` here.

One writer (the daemon) and any number of read-only readers (the page, the CLI). The
writer commits every change durably (WAL, synchronous=FULL) before a method returns,
so what a method reported written survives a power cut. Readers open the file with
`mode=ro`, so a reader can never change the record.

Hot paths use the raw connection with parameters; sqlite-utils builds the schema
(see migrations.py). Times go in as aware datetimes and are stored as ISO 8601 text
with their UTC offset (values.py).
"""
from __future__ import annotations

import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from appliance.core.model import AuditEntry
from appliance.core.paths import DB_NAME
from appliance.record import anchor
from appliance.record import audit as audit_chain
from appliance.record import migrations
from appliance.record.access import AccessMixin
from appliance.record.backup import BackupMixin
from appliance.record.clocked import ClockMixin
from appliance.record.chips import ChipsMixin
from appliance.record.errors import StorageError, StoreError
from appliance.record.history import HistoryMixin
from appliance.record.pens import PensMixin
from appliance.record.sessions import CLOSED_OUTCOMES, EXTRA_KEYS, LOG_KEYS, SessionsMixin
from appliance.record.state import StateMixin
from appliance.record.values import to_second

if TYPE_CHECKING:
    import sqlite_utils

__all__ = ["Store", "StoreError", "StorageError", "LOG_KEYS", "EXTRA_KEYS",
           "CLOSED_OUTCOMES", "DB_NAME", "SYNCHRONOUS_LEVELS"]

BUSY_TIMEOUT_MS = 5000
# The writer's page cache, in KiB. SQLite's default (2 MB) fills as the record grows over
# the years and stays in the daemon (quality bar P4); what the daemon reads and writes
# (the newest pages of each table and the indexes' upper levels) fits in far less, and
# the rest comes from the kernel's file cache.
WRITER_CACHE_KIB = 512
# FULL: every commit is on the disk before the method returns (README: nothing committed is lost).
# The others exist for the power-cut test's negative control (see daemon.start_dock).
SYNCHRONOUS_LEVELS = ("FULL", "EXTRA", "NORMAL", "OFF")
# A hook run inside the transaction of each audited fact: (connection, action, detail, at,
# the audit entry's id; None for a fact the audit does not hold).
Journal = Callable[[sqlite3.Connection, str, dict, "datetime | None", "int | None"], None]


class Store(PensMixin, HistoryMixin, SessionsMixin, StateMixin, AccessMixin, BackupMixin, ClockMixin,
            ChipsMixin):
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
        # Set by appliance/fleet on a clinic's dock: (conn, action, detail, at) run inside the
        # transaction of each shared fact, so the fact and its outbox event commit together.
        self.journal: Journal | None = None
        self._conn = self._connect_reader() if readonly else self._connect_writer()
        self._conn.row_factory = sqlite3.Row

    @property
    def conn(self) -> sqlite3.Connection:
        """The record's connection, for code that writes inside this store's transactions
        (the fleet ledger)."""
        return self._conn

    @functools.cached_property
    def db(self) -> "sqlite_utils.Database":
        """sqlite-utils' view of the record, made on first use (tests, tools): the daemon
        itself never needs it, nor the 4 MB of modules it loads (migrations.upgrade)."""
        import sqlite_utils

        return sqlite_utils.Database(self._conn)

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
            conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB:d}")
            self._check_version(conn, writer=True)
            migrations.upgrade(conn)
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
        # To the second, here, so the entry and the fleet event signed from it agree (own.py).
        at = to_second(at)
        entry = audit_chain.append(self._conn, actor, action, detail, at, clock_synced,
                                   tail=self._tail)
        self._tail = audit_chain.Tail(entry.id, entry.hash)
        if self.journal is not None:
            self.journal(self._conn, action, detail, at, entry.id)
        return entry

    def verify_audit(self) -> audit_chain.VerifyResult:
        """The chain holds, and it is the chain this data folder began (anchor.py)."""
        with self._lock:
            result = audit_chain.verify(self._conn)
            replaced = anchor.problem(self.path.parent, self._conn) if result.ok else None
        if replaced:
            return audit_chain.VerifyResult(False, result.checked, 1, replaced)
        return result

    def anchor_chain(self, now: datetime) -> bool:
        """Write the chain's anchor beside the record if it has none; True if written now."""
        with self._lock:
            return anchor.ensure(self.path.parent, self._conn, now)

    def audit_entries(self, limit: int = 50, before_id: int | None = None) -> list[AuditEntry]:
        with self._lock:
            return audit_chain.entries(self._conn, limit, before_id)
