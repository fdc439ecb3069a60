"""Schema migrations: an ordered list of functions, one per schema version.

`PRAGMA user_version` holds how many have run. Each migration runs in its own
transaction together with the version bump, so a power cut mid-upgrade leaves the
database at the previous version, never half-migrated. Never edit a migration that has
shipped: add a new one at the end.
"""
from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Callable
from typing import TYPE_CHECKING

from appliance.record import fleet_codec

if TYPE_CHECKING:  # loaded by upgrade() only when a step must run (see its docstring)
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]


def initial_schema(db: sqlite_utils.Database) -> None:
    """1: pens, sessions, the audit chain, dock state, users and API tokens."""
    db["pens"].create(
        {
            "serial": int,
            "firmware": str,
            "first_seen": str,
            "last_strokes": int,
            "last_motor_seconds": int,
            "service_motor_seconds": int,
        },
        pk="serial",
        not_null=["first_seen", "last_strokes", "last_motor_seconds", "service_motor_seconds"],
    )
    db["sessions"].create(
        {
            "id": int,
            "day": str,  # dock-local date of started_at, YYYY-MM-DD: what the day's log asks for
            "started_at": str,
            "ended_at": str,
            "client_ref": str,
            "area": str,
            "pen_serial": int,
            "cartridge_serial": int,
            "strokes_start": int,
            "motor_seconds_start": int,
            "strokes_end": int,
            "motor_seconds_end": int,
            "needling_seconds": int,
            "strokes": int,
            "max_depth_mm": float,
            "outcome": str,
            "warnings": str,  # JSON list of codes
            "overrides": str,  # JSON list of codes
            "next_eligible_date": str,
            "recommended_date": str,
        },
        pk="id",
        foreign_keys=[("pen_serial", "pens", "serial")],
        not_null=["day", "started_at", "pen_serial", "cartridge_serial", "outcome",
                  "warnings", "overrides"],
        defaults={"outcome": "open", "warnings": "[]", "overrides": "[]"},
    )
    # One day's log, the cartridge check and the interval rule each read a handful of
    # rows through an index, however many years of records sit beside them.
    db["sessions"].create_index(["day"], index_name="idx_sessions_day")
    db["sessions"].create_index(["cartridge_serial"], index_name="idx_sessions_cartridge")
    db["sessions"].create_index(["client_ref", "area", "started_at"],
                                index_name="idx_sessions_client")
    db["audit"].create(
        {
            "id": int,
            "at": str,
            "actor": str,
            "action": str,
            "detail": str,  # canonical JSON object
            "clock_synced": int,
            "prev_hash": str,
            "hash": str,
        },
        pk="id",
        not_null=["at", "actor", "action", "detail", "clock_synced", "prev_hash", "hash"],
    )
    _guard_audit(db)
    db["state"].create({"key": str, "value": str}, pk="key", not_null=["value"])
    db["users"].create(
        {"name": str, "role": str, "password_hash": str, "created_at": str},
        pk="name",
        not_null=["role", "password_hash", "created_at"],
    )
    db["tokens"].create(
        {"id": int, "name": str, "token_hash": str, "created_at": str},
        pk="id",
        not_null=["name", "token_hash", "created_at"],
    )
    db["tokens"].create_index(["token_hash"], index_name="idx_tokens_hash", unique=True)


def _guard_audit(db: sqlite_utils.Database) -> None:
    """Append-only in the software's own hands; a tamperer must drop these first, and
    the hash chain still finds what they changed."""
    db.execute(
        "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
    )
    db.execute(
        "CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit "
        "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
    )


def checklist_and_spent_cartridges(db: sqlite_utils.Database) -> None:
    """2: the pre-session checklist and forced flag on sessions; open sessions found
    through a partial index; spent cartridges remembered apart from sessions, so that
    purging old sessions (retention) never makes a used cartridge look new again."""
    db["sessions"].add_column("checklist", str, not_null_default="[]")
    db["sessions"].add_column("forced", int, not_null_default=0)
    db.execute(
        "CREATE INDEX idx_sessions_open ON sessions(outcome) WHERE outcome = 'open'"
    )
    db["spent_cartridges"].create({"serial": int, "first_used": str}, pk="serial",
                                  not_null=["first_used"])
    db.execute(
        "INSERT OR IGNORE INTO spent_cartridges(serial, first_used) "
        "SELECT cartridge_serial, min(started_at) FROM sessions "
        "WHERE cartridge_serial != 0 GROUP BY cartridge_serial"
    )


_HEX_HASH = re.compile(r"[0-9a-f]{64}")


def _hash_bytes(digest: object) -> object:
    """64 hex characters as their 32 bytes; anything else was tampered with and is kept
    as it is, so that verify() names it."""
    if isinstance(digest, str) and _HEX_HASH.fullmatch(digest):
        return bytes.fromhex(digest)
    return digest


def compact_audit(db: sqlite_utils.Database) -> None:
    """3: the audit table without prev_hash (it repeated the previous row's hash) and
    with each hash as 32 raw bytes, not 64 hex characters: about a third of every entry.
    Every entry and hash value is kept; the hash definition does not change. SQLite
    cannot change a column's type, so the table is rebuilt and its guards recreated."""
    conn = db.conn
    conn.execute(
        "CREATE TABLE audit_compact ("
        "id INTEGER PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, "
        "action TEXT NOT NULL, detail TEXT NOT NULL, clock_synced INTEGER NOT NULL, "
        "hash BLOB NOT NULL)"
    )
    conn.create_function("pendock_hash_bytes", 1, _hash_bytes, deterministic=True)
    conn.execute(
        "INSERT INTO audit_compact SELECT id, at, actor, action, detail, clock_synced, "
        "pendock_hash_bytes(hash) FROM audit ORDER BY id"
    )
    conn.create_function("pendock_hash_bytes", 1, None)
    conn.execute("DROP TABLE audit")  # its triggers go with it
    conn.execute("ALTER TABLE audit_compact RENAME TO audit")
    _guard_audit(db)


def session_clock(db: sqlite_utils.Database) -> None:
    """4: with each session, the boot it started in, the monotonic time at its start and
    whether the wall clock was known right then ("right"; "unknown" until re-anchored as
    "monotonic", same boot, or "latest", a later boot: the latest it could have been).
    Sessions recorded before this schema were dated by a clock the dock then trusted."""
    db["sessions"].add_column("boot_id", str)
    db["sessions"].add_column("started_mono", float)
    db["sessions"].add_column("clock", str, not_null_default="right")
    db.execute("CREATE INDEX idx_sessions_clock ON sessions(clock) WHERE clock = 'unknown'")


def fleet_tables(db: sqlite_utils.Database) -> None:
    """5: several docks (appliance/fleet). Every shared event, this dock's and its peers',
    kept by (dock_id, seq) so a duplicate changes nothing; this dock's events not yet
    acknowledged by the broker (the durable outbox); the peers' sessions, from which the
    rules count treatments across docks; and the conflicts found when a partition heals."""
    conn = db.conn
    conn.execute(
        "CREATE TABLE fleet_events (dock_id TEXT NOT NULL, seq INTEGER NOT NULL, "
        "kind TEXT NOT NULL, at TEXT NOT NULL, hash TEXT NOT NULL, body BLOB NOT NULL, "
        "PRIMARY KEY (dock_id, seq)) WITHOUT ROWID")
    conn.execute("CREATE TABLE fleet_outbox (seq INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TABLE fleet_docks (dock_id TEXT PRIMARY KEY, applied_seq INTEGER NOT NULL "
        "DEFAULT 0)")
    conn.execute(
        "CREATE TABLE fleet_sessions (dock_id TEXT NOT NULL, session INTEGER NOT NULL, "
        "day TEXT NOT NULL, started_at TEXT NOT NULL, ended_at TEXT, client_ref TEXT, "
        "area TEXT, pen_serial INTEGER, cartridge_serial INTEGER, outcome TEXT NOT NULL, "
        "needling_seconds INTEGER, strokes INTEGER, max_depth_mm REAL, "
        "warnings TEXT NOT NULL DEFAULT '[]', overrides TEXT NOT NULL DEFAULT '[]', "
        "forced INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (dock_id, session))")
    conn.execute("CREATE INDEX idx_fleet_sessions_client ON fleet_sessions "
                 "(client_ref, area, started_at)")
    conn.execute("CREATE INDEX idx_fleet_sessions_day ON fleet_sessions (day)")
    conn.execute(
        "CREATE TABLE fleet_conflicts (id INTEGER PRIMARY KEY, detected_at TEXT NOT NULL, "
        "client_ref TEXT NOT NULL, area TEXT NOT NULL, first_dock TEXT NOT NULL, "
        "first_session INTEGER NOT NULL, first_at TEXT NOT NULL, second_dock TEXT NOT NULL, "
        "second_session INTEGER NOT NULL, second_at TEXT NOT NULL, "
        "UNIQUE (first_dock, first_session, second_dock, second_session))")
    conn.execute("CREATE TABLE fleet_pen_baselines (serial INTEGER PRIMARY KEY, "
                 "at TEXT NOT NULL)")


def compact_fleet_events(db: sqlite_utils.Database) -> None:
    """6: each fleet event as its raw signature bytes and its exact signed body deflated
    (appliance/record/fleet_codec.py; the hash is recomputed from the body), not as the
    JSON it travels in with kind, time and hash repeated in columns: a third of the bytes.
    Every event is kept, its signed bytes unchanged, so catch-up still serves what each
    dock signed. And a table for this dock's own events from now on, kept by reference to
    their audit entry (appliance/fleet/own.py)."""
    conn = db.conn
    conn.execute(
        "CREATE TABLE fleet_events_compact (dock_id TEXT NOT NULL, seq INTEGER NOT NULL, "
        "sig BLOB NOT NULL, body BLOB NOT NULL, "
        "PRIMARY KEY (dock_id, seq)) WITHOUT ROWID")
    rows = conn.execute("SELECT dock_id, seq, body FROM fleet_events ORDER BY dock_id, seq"
                        ).fetchall()
    conn.executemany(
        "INSERT INTO fleet_events_compact (dock_id, seq, sig, body) VALUES (?, ?, ?, ?)",
        ((dock, seq, *fleet_codec.pack_wire(json.loads(bytes(body)))) for dock, seq, body in rows))
    conn.execute("DROP TABLE fleet_events")
    conn.execute("ALTER TABLE fleet_events_compact RENAME TO fleet_events")
    # From now on this dock's own events are kept apart, by reference to their audit entry
    # (appliance/fleet/own.py); those kept above stay whole and are served from there.
    conn.execute("CREATE TABLE fleet_own (seq INTEGER PRIMARY KEY, hash BLOB NOT NULL, "
                 "audit_id INTEGER, body BLOB)")


def cartridge_chips(db: sqlite_utils.Database) -> None:
    """7: cartridge authentication. The lowest use counter each cartridge chip showed
    (an answer not below it is a reset or cloned chip), the chip's verdict and counter on
    each session, and the dock's own random id that every challenge carries (so an
    answer given to another dock is worthless here)."""
    db["cartridge_chips"].create(  # no dates: the audit entry of each check has them (P6)
        {"cartridge_id": int, "lowest_counter": int}, pk="cartridge_id", not_null=["lowest_counter"])
    db["sessions"].add_column("cartridge_auth", str)  # authentic / unauthentic / unverified
    db["sessions"].add_column("cartridge_counter", int)
    db.execute("INSERT OR IGNORE INTO state (key, value) "
               "VALUES ('cartridge_auth_dock_id', '\"' || lower(hex(randomblob(16))) || '\"')")


def short_audit_hashes(db: sqlite_utils.Database) -> None:
    """8: each new audit entry keeps the first 16 of its hash's 32 bytes (appliance/record/
    audit.py; P6); the chain and every entry before are unchanged. No table changes: the
    version tells software that reads only whole hashes (schema 7 and before) that this
    record is newer than it, rather than letting it misread the chain's tail."""


# The state key under which migration 9 leaves what it merged, for the dock to audit.
CLIENT_REF_MERGES_KEY = "client_ref_merges"


def one_spelling_per_client(db: sqlite_utils.Database) -> None:
    """9: a booking reference is one client whatever its letter case (README, "Booking
    references"): every spelling on record becomes the canonical upper case, on this
    dock's sessions, the peers' sessions and the conflicts found. What was merged (each
    reference, the spellings it had, how many sessions changed) is left under the state
    key client_ref_merges; the dock audits it at its next start (`client_refs_merged`)."""
    conn = db.conn
    merged: dict[str, dict] = {}
    for table in ("sessions", "fleet_sessions"):
        rows = conn.execute(f"SELECT client_ref, count(*) FROM {table} "  # noqa: S608 - fixed names
                            "WHERE client_ref != upper(client_ref) GROUP BY client_ref").fetchall()
        for spelling, count in rows:
            entry = merged.setdefault(spelling.upper(), {"ref": spelling.upper(), "spellings": [],
                                                         "sessions": 0})
            if spelling not in entry["spellings"]:
                entry["spellings"].append(spelling)
            entry["sessions"] += count
        conn.execute(f"UPDATE {table} SET client_ref = upper(client_ref) "
                     "WHERE client_ref != upper(client_ref)")
    conn.execute("UPDATE fleet_conflicts SET client_ref = upper(client_ref) "
                 "WHERE client_ref != upper(client_ref)")
    if merged:
        summary = [{**entry, "spellings": sorted(entry["spellings"])}
                   for _, entry in sorted(merged.items())]
        conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)",
                     (CLIENT_REF_MERGES_KEY, json.dumps(summary, sort_keys=True)))


def vouched_time(db: sqlite_utils.Database) -> None:
    """10: with each session, the vouched time it started at (appliance/core/vouched.py),
    which the interval rules count from, and whether it was exact ("exact") or carried
    over a reboot ("lower"). Sessions recorded before it count from their start."""
    db["sessions"].add_column("vouched_at", str)
    db["sessions"].add_column("vouch", str)


MIGRATIONS: tuple[Migration, ...] = (
    initial_schema,
    checklist_and_spent_cartridges,
    compact_audit,
    session_clock,
    fleet_tables,
    compact_fleet_events,
    cartridge_chips,
    short_audit_hashes,
    one_spelling_per_client,
    vouched_time,
)

# The schema version this software writes and understands.
CURRENT_VERSION = len(MIGRATIONS)


def schema_version(conn: sqlite3.Connection) -> int:
    return conn.execute("PRAGMA user_version").fetchone()[0]


def upgrade(conn: sqlite3.Connection, target: int = CURRENT_VERSION) -> tuple[int, int]:
    """`migrate` on a plain connection, loading sqlite-utils only when a step must run.

    sqlite-utils brings click, dateutil and pluggy (about 4 MB): a daemon that opens a
    record already at `target` never needs them, and keeps none of them for its months of
    running (quality bar P4). The version only ever grows, so reading it outside the
    write lock is safe: `migrate` re-reads it under the lock before any step."""
    found = schema_version(conn)
    if found == target:
        return found, found
    import sqlite_utils

    return migrate(sqlite_utils.Database(conn), target)


def migrate(db: sqlite_utils.Database, target: int = CURRENT_VERSION) -> tuple[int, int]:
    """Run the migrations from the database's version up to `target`.

    Returns (from_version, to_version). A database newer than `target` is left alone
    and refused: the caller (the store) turns that into a message a technician can act on.
    """
    if not 0 <= target <= CURRENT_VERSION:
        raise ValueError(f"no schema version {target}: this software knows 0..{CURRENT_VERSION}")
    conn = db.conn
    found = schema_version(conn)
    if found > target:
        raise RuntimeError(f"database schema {found} is newer than the target {target}")
    while True:
        # The version is re-read under the write lock: two processes starting at once
        # must not both run the same migration.
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = schema_version(conn)
            if version >= target:
                conn.execute("COMMIT")
                return found, version
            MIGRATIONS[version](db)
            conn.execute(f"PRAGMA user_version = {version + 1:d}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
