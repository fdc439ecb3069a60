"""The audit chain's anchor: its first entry's hash, kept outside the database.

A chain verifies from its own first entry, so a whole record swapped for another one (a
copied file, a bad restore) would still read "intact". The anchor, a small file written
beside the record when the chain begins, names the first entry this dock's chain must
start with; `audit verify` fails when the record's first entry is not that one.
"""
from __future__ import annotations

import json
import os
import sqlite3
import stat
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

ANCHOR_NAME = "audit-anchor.json"


@dataclass(frozen=True)
class Anchor:
    first_hash: str
    first_at: str
    written_at: str


def path_for(data_dir: Path) -> Path:
    return Path(data_dir) / ANCHOR_NAME


def first_entry(conn: sqlite3.Connection) -> tuple[str, str] | None:
    """(hash as hex, time) of the chain's first entry, or None for an empty chain."""
    row = conn.execute("SELECT hash, at FROM audit WHERE id = 1").fetchone()
    if row is None:
        return None
    digest = row[0].hex() if isinstance(row[0], bytes) else str(row[0])
    return digest, str(row[1])


def read(data_dir: Path) -> Anchor | None:
    try:
        data = json.loads(path_for(data_dir).read_text())
        return Anchor(str(data["first_hash"]), str(data["first_at"]), str(data["written_at"]))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return Anchor("unreadable", "", "")


def ensure(data_dir: Path, conn: sqlite3.Connection, now: datetime) -> bool:
    """Write the anchor if there is none and the chain has begun; True if it was written now."""
    if read(data_dir) is not None:
        return False
    first = first_entry(conn)
    if first is None:
        return False
    target = path_for(data_dir)
    tmp = target.with_name(target.name + ".tmp")
    text = json.dumps({"first_hash": first[0], "first_at": first[1], "written_at": now.isoformat()})
    # The record's own modes: 0600, or 0640 in the installer's setgid folder (the page reads).
    mode = 0o640 if Path(data_dir).stat().st_mode & stat.S_ISGID else 0o600
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, target)
    return True


def problem(data_dir: Path, conn: sqlite3.Connection) -> str | None:
    """Why the record's chain is not the one this data folder anchored; None when it is
    (or when nothing is anchored yet: a record older than the anchor, or a store opened
    outside the daemon; the daemon anchors at start with an `audit_anchored` entry)."""
    anchor = read(data_dir)
    first = first_entry(conn)
    if anchor is None:
        return None  # not anchored yet: the daemon anchors it at its next start, audited
    if first is None:
        return f"the trail is empty but the anchor {path_for(data_dir)} says it began at {anchor.first_at}"
    if first[0] != anchor.first_hash:
        return (f"entry 1 is not the entry this dock's chain began with (anchor "
                f"{path_for(data_dir)}, first entry of {anchor.first_at}): the record was "
                f"replaced by another one")
    return None
