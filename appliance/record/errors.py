"""The record's two errors, apart so every part of the record (and its callers) names them.

`StoreError`: the record refuses or cannot answer (no such pen, read-only store, schema
too new); the caller or the user must change what they ask. `StorageError` is its
subclass for a failed write in SQLite (disk full, read-only folder, damaged file): the
request was fine, the disk was not, so the dock holds the pen until writing works again.
"""


class StoreError(Exception):
    """The record cannot do what was asked; the message says why and what to do."""


class StorageError(StoreError):
    """A write failed in SQLite (disk full, read-only folder, locked, damaged file)."""
