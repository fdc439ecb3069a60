"""Backup and restore of the whole record, online, through SQLite's backup API.

A mixin of `Store` (store.py). A restore checks the copy (integrity, schema) before it
replaces anything, then migrates it and audits that it happened.
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

import sqlite_utils

from appliance.record import audit as audit_chain
from appliance.record import migrations
from appliance.record.errors import StorageError, StoreError


class BackupMixin:
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
