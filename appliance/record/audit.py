"""The audit trail: an append-only hash chain in the `audit` table.

Each entry's hash covers its own fields and the previous entry's hash, so changing,
deleting, inserting or reordering any entry breaks the chain at that entry. The newest
entry's id and hash are also kept as the chain head (state key "audit_head"), written in
the same transaction as the entry, so that cutting entries off the end is found too.

Stored compactly (schema 3): the hash as its 32 raw bytes, and no prev_hash column, since
it only repeated the row before. The hash definition is unchanged: it still covers the
previous entry's hash (as hex), which is read from that row when needed.

Since schema 8 a new entry keeps the first 16 bytes of its hash (P6: seven entries a
session, kept for years). The chain is unchanged: each hash still covers the whole hash
before it, which `verify` recomputes entry by entry from the fields, and the newest hash
is kept whole as the chain head (and in backups and restore entries). The stored prefix
only has to name the first entry that does not hold: an edit that keeps 128 bits of a
SHA-256 hash takes about 2**128 tries, and whoever can write the record can recompute
every hash in any case (below). Entries written before keep their 32 bytes.

Without a secret, someone with write access who recomputes every hash after an edit is
not caught here; copies of the head kept elsewhere (backups) catch that.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from appliance.core.digest import sha256_hex
from appliance.core.model import AuditEntry

GENESIS_HASH = "0" * 64
HEAD_KEY = "audit_head"
STORED_HASH_BYTES = 16  # of each new entry's hash (schema 8); 32 in the entries before
_FULL_HASH_BYTES = 32

_COLUMNS = "id, at, actor, action, detail, clock_synced, hash"
# The hash of the entry before, for reading a page of entries without the whole chain.
_PREV_HASH = "(SELECT p.hash FROM audit AS p WHERE p.id < audit.id ORDER BY p.id DESC LIMIT 1)"


@dataclass(frozen=True)
class Tail:
    """The newest entry of the chain: what the next entry links to."""

    id: int = 0
    hash: str = GENESIS_HASH


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int  # entries read
    first_bad_id: int | None
    reason: str


def canonical_json(value: object) -> str:
    """One text per value: sorted keys, no spaces, no NaN; what gets hashed and stored."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def entry_hash(id: int, at: str, actor: str, action: str, detail: object,
               clock_synced: bool, prev_hash: str) -> str:
    payload = {"id": id, "at": at, "actor": actor, "action": action, "detail": detail,
               "clock_synced": bool(clock_synced), "prev_hash": prev_hash}
    return sha256_hex(canonical_json(payload).encode("utf-8"))


def _hex(stored: object) -> str:
    """A stored hash as hex text: 32 raw bytes since schema 3; anything else is shown as is."""
    if isinstance(stored, bytes):
        return stored.hex()
    return "" if stored is None else str(stored)


def _conn(db) -> sqlite3.Connection:
    """Accept a sqlite-utils Database or a plain sqlite3 connection."""
    return getattr(db, "conn", db)


def _stored_matches(stored: object, digest: str) -> bool:
    """Whether a stored hash is `digest` (hex): whole, or its prefix of schema 8."""
    return (isinstance(stored, bytes) and len(stored) in (STORED_HASH_BYTES, _FULL_HASH_BYTES)
            and bytes.fromhex(digest)[:len(stored)] == stored)


def read_tail(db) -> Tail:
    """The newest entry and its whole hash: stored whole before schema 8, else the chain
    head's (written with it), else recomputed from the nearest entry stored whole."""
    conn = _conn(db)
    row = conn.execute("SELECT id, hash FROM audit ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        return Tail()
    entry_id, stored = row
    if not isinstance(stored, bytes) or len(stored) != STORED_HASH_BYTES:
        return Tail(entry_id, _hex(stored))
    head = conn.execute("SELECT value FROM state WHERE key = ?", (HEAD_KEY,)).fetchone()
    try:
        value = json.loads(head[0]) if head else {}
        if int(value["id"]) == entry_id and _stored_matches(stored, str(value["hash"])):
            return Tail(entry_id, str(value["hash"]))
    except (TypeError, ValueError, KeyError):
        pass
    return Tail(entry_id, whole_hash(conn, entry_id))


def whole_hash(db, entry_id: int) -> str:
    """The whole hash of entry `entry_id`, from its fields and those before it back to the
    nearest entry stored whole (or the chain's start): for a tail without its head."""
    conn = _conn(db)
    row = conn.execute("SELECT id, hash FROM audit WHERE id <= ? AND typeof(hash) = 'blob' "
                       "AND length(hash) = ? ORDER BY id DESC LIMIT 1", (entry_id, _FULL_HASH_BYTES)).fetchone()
    start, digest = (row[0], _hex(row[1])) if row else (0, GENESIS_HASH)
    for entry in conn.execute(f"SELECT {_COLUMNS} FROM audit WHERE id > ? AND id <= ? "
                              "ORDER BY id", (start, entry_id)):
        entry_no, at, actor, action, detail_json, clock_synced, _ = entry
        try:
            detail = json.loads(detail_json)
            digest = entry_hash(entry_no, at, actor, action, detail, bool(clock_synced), digest)
        except (TypeError, ValueError):
            pass  # a broken entry: verify() names it; the chain goes on from the last good hash
    return digest


def append(db, actor: str, action: str, detail: dict, at: datetime, clock_synced: bool,
           *, tail: Tail | None = None) -> AuditEntry:
    """Add one entry after `tail` (read from the table when not given).

    Runs inside the caller's transaction when there is one; the caller keeps the
    returned entry's id and hash as its new tail, which makes appends O(1).
    """
    if at.tzinfo is None:
        raise ValueError("audit time must be an aware datetime (with its UTC offset)")
    if not isinstance(detail, dict):
        raise TypeError(f"audit detail must be a dict, not {type(detail).__name__}")
    conn = _conn(db)
    tail = tail if tail is not None else read_tail(conn)
    detail_json = canonical_json(detail)
    detail = json.loads(detail_json)  # hash exactly what is stored (tuples become lists)
    entry_id, at_text = tail.id + 1, at.isoformat()
    digest = entry_hash(entry_id, at_text, actor, action, detail, clock_synced, tail.hash)
    conn.execute(
        f"INSERT INTO audit ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (entry_id, at_text, actor, action, detail_json, int(bool(clock_synced)),
         bytes.fromhex(digest)[:STORED_HASH_BYTES]),
    )
    conn.execute(
        "INSERT INTO state (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (HEAD_KEY, canonical_json({"id": entry_id, "hash": digest})),
    )
    return AuditEntry(id=entry_id, at=at, actor=actor, action=action, detail=detail,
                      clock_synced=bool(clock_synced), prev_hash=tail.hash, hash=digest)


def _row_problem(row: tuple, prev_hash: str) -> tuple[str | None, str]:
    """Why this stored entry, linked to `prev_hash` (the entry before it), does not hold
    (None if it does), and its whole hash as its fields give it."""
    entry_id, at, actor, action, detail_json, clock_synced, stored_hash = row
    if clock_synced not in (0, 1):
        return "its contents were changed (clock_synced is not 0 or 1)", ""
    try:
        detail = json.loads(detail_json)
    except (TypeError, ValueError):
        return "its contents were changed (detail is not valid JSON)", ""
    try:
        digest = entry_hash(entry_id, at, actor, action, detail, bool(clock_synced), prev_hash)
    except (TypeError, ValueError):
        return "its contents were changed (a field has the wrong type)", ""
    if not _stored_matches(stored_hash, digest):
        # Without a stored prev_hash the two cases look alike: the hash covers both.
        return ("its contents were changed, or an entry just before it was inserted, "
                "deleted or moved (its hash does not match its fields and the hash of the "
                "entry before it)"), digest
    return None, digest


def _head_problem(conn: sqlite3.Connection, last: Tail) -> tuple[int, str] | None:
    row = conn.execute("SELECT value FROM state WHERE key = ?", (HEAD_KEY,)).fetchone()
    if row is None:
        if last.id == 0:
            return None
        return last.id, ("the recorded chain head is missing, so entries at the end may "
                         "have been deleted or added")
    try:
        head = json.loads(row[0])
        head_id, head_hash = int(head["id"]), str(head["hash"])
    except (TypeError, ValueError, KeyError):
        return max(last.id, 1), "the recorded chain head is unreadable"
    if head_id > last.id:
        missing = (f"entry {last.id + 1}" if head_id == last.id + 1
                   else f"entries {last.id + 1} to {head_id}")
        return last.id + 1, f"{missing} missing: deleted from the end of the trail"
    if head_id < last.id:
        return head_id + 1, (f"entry {head_id + 1} was added after the recorded chain head "
                             f"{head_id}: not written by the dock")
    if head_hash != last.hash:
        return last.id, "the newest entry does not match the recorded chain head"
    return None


def verify(db) -> VerifyResult:
    """Walk the whole chain in id order and name the first entry that does not hold."""
    conn = _conn(db)
    expected_prev, expected_id, checked = GENESIS_HASH, 1, 0
    for row in conn.execute(f"SELECT {_COLUMNS} FROM audit ORDER BY id"):
        entry_id = row[0]
        checked += 1
        if entry_id != expected_id:
            missing = (f"entry {expected_id} is" if entry_id == expected_id + 1
                       else f"entries {expected_id} to {entry_id - 1} are")
            return VerifyResult(False, checked, expected_id,
                                f"{missing} missing: deleted (entry {entry_id} follows "
                                f"entry {expected_id - 1})")
        problem, digest = _row_problem(row, expected_prev)
        if problem:
            return VerifyResult(False, checked, entry_id, f"entry {entry_id}: {problem}")
        expected_prev, expected_id = digest, entry_id + 1
    head_problem = _head_problem(conn, Tail(expected_id - 1, expected_prev))
    if head_problem:
        bad_id, reason = head_problem
        return VerifyResult(False, checked, bad_id, reason)
    return VerifyResult(True, checked, None, f"{checked} entries, chain intact")


def _entry(row: tuple) -> AuditEntry:
    entry_id, at, actor, action, detail_json, clock_synced, digest, prev_hash = row
    try:
        detail = json.loads(detail_json)
    except (TypeError, ValueError):
        detail = {"unreadable": str(detail_json)}
    try:
        when = datetime.fromisoformat(at)
    except (TypeError, ValueError):
        when = datetime.min
    return AuditEntry(id=entry_id, at=when, actor=actor, action=action,
                      detail=detail, clock_synced=bool(clock_synced),
                      prev_hash=GENESIS_HASH if prev_hash is None else _hex(prev_hash),
                      hash=_hex(digest))


def entries(db, limit: int = 50, before_id: int | None = None) -> list[AuditEntry]:
    """Newest first, for display; page back with `before_id` (the oldest id shown). Hashes
    as kept: whole before schema 8, their first 16 bytes (32 hex digits) since."""
    conn = _conn(db)
    columns = f"{_COLUMNS}, {_PREV_HASH}"
    if before_id is None:
        rows = conn.execute(f"SELECT {columns} FROM audit ORDER BY id DESC LIMIT ?", (limit,))
    else:
        rows = conn.execute(
            f"SELECT {columns} FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?",
            (before_id, limit))
    return [_entry(row) for row in rows]
