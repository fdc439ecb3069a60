"""Backup and restore of the whole record, online, through SQLite's backup API.

A mixin of `Store` (store.py). A restore never replaces the record: it checks a copy of
the file completely, then merges what the record lacks (restore.py).
"""
from __future__ import annotations

import sqlite3
from datetime import datetime
from pathlib import Path

from appliance.record.errors import StorageError
from appliance.record.restore import restore


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

    def restore_from(self, source: Path, actor: str, at: datetime, clock_synced: bool = True) -> dict:
        """Merge a checked backup into the record (restore.py): nothing the record knows
        is lost; a file that is not a sound pen-dock record is refused, record untouched."""
        return restore(self, source, actor, at, clock_synced)
