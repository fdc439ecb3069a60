"""Restore: a checked backup is merged into the live record; nothing the dock knows is lost.

The live record only ever grows (sessions, spent cartridges, pen counters, the audit
chain), so restoring is "the live record plus whatever the backup holds that the live
record lacks", never a replacement:

1. check: the file is copied into a scratch folder and the copy is checked completely
   (SQLite can read it, `integrity_check`, foreign keys, a pen-dock schema of a known
   version, migrated on the copy, its audit chain verifies). A file that fails any check
   is refused and the live record is not touched at all, byte for byte.
2. merge, in ONE transaction of the live record (all or nothing): pens the record has not
   seen, and each pen's counters at the higher of the two (a restore never lowers what a
   rollback is measured against); every spent cartridge; every session the record lacks
   (not those a purge removed since); page users the record lacks (not those removed).
   API tokens are never brought back: they are made again with `pendock token create`.
   The live audit chain continues, with one `restored` entry saying what came from where,
   including the backup's own chain head, so the file can be checked against it later.
"""
from __future__ import annotations

import json
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from appliance.core import rules
from appliance.core.digest import Sha256
from appliance.record import audit as audit_chain
from appliance.record import anchor, coverage, migrations

# Audit actions after which a user must not come back with an old backup.
USER_REMOVED_ACTIONS = ("user_removed",)  # access.py


class RestoreRefused(Exception):
    """The file cannot be restored; the message says why and that nothing was changed."""


def _refuse(source: Path, why: str) -> RestoreRefused:
    return RestoreRefused(f"{source} not restored: {why}. The record was not changed.")


def _shape(conn: sqlite3.Connection) -> dict[str, frozenset[str]]:
    """Each table of ours with its columns (SQLite's own tables left out)."""
    tables = [row[0] for row in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")]
    return {name: frozenset(row[1] for row in conn.execute(f'PRAGMA table_info("{name}")'))
            for name in tables}


def expected_shape(version: int) -> dict[str, frozenset[str]]:
    """The tables and columns a pen-dock record of schema `version` has."""
    conn = sqlite3.connect(":memory:", isolation_level=None)
    try:
        migrations.upgrade(conn, target=version)
        return _shape(conn)
    finally:
        conn.close()


def _copy(source: Path, target: Path) -> None:
    """SQLite's backup API reads the file as a database (its WAL included, if one is beside it)."""
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


def check_backup(source: Path, scratch: Path) -> dict[str, Any]:
    """Copy `source` into `scratch` and check the copy; the checked, migrated copy's path
    and what it holds, or RestoreRefused."""
    source = Path(source)
    if not source.is_file():
        raise _refuse(source, "it is not a file")
    copy = Path(scratch) / "checked.db"
    try:
        _copy(source, copy)
    except sqlite3.Error as error:
        raise _refuse(source, f"it is not an SQLite database SQLite can read ({error})") from None
    conn = sqlite3.connect(copy, isolation_level=None)
    try:
        try:
            verdict = conn.execute("PRAGMA integrity_check").fetchone()[0]
            broken_keys = conn.execute("PRAGMA foreign_key_check").fetchall()
            version = migrations.schema_version(conn)
            shape = _shape(conn)
        except sqlite3.Error as error:
            raise _refuse(source, f"SQLite cannot read it ({error})") from None
        if verdict != "ok":
            raise _refuse(source, f"it fails SQLite's integrity check ({verdict})")
        if broken_keys:
            raise _refuse(source, f"{len(broken_keys)} rows point at rows it does not hold")
        if version == 0:
            raise _refuse(source, "it is not a pen-dock record (no schema version; a backup is "
                                  "made with `pendock backup PATH`)")
        if version > migrations.CURRENT_VERSION:
            raise _refuse(source, f"its schema {version} is newer than this software's "
                                  f"({migrations.CURRENT_VERSION}): upgrade pen-dock first")
        if shape != expected_shape(version):
            raise _refuse(source, f"it is not a pen-dock record (its tables are not those of "
                                  f"schema {version})")
        try:
            migrations.upgrade(conn)
        except sqlite3.Error as error:
            raise _refuse(source, f"it could not be brought to schema "
                                  f"{migrations.CURRENT_VERSION} ({error})") from None
        result = audit_chain.verify(conn)
        if not result.ok:
            raise _refuse(source, f"its audit trail does not verify ({result.reason})")
        tail = audit_chain.read_tail(conn)
        first = anchor.first_entry(conn)
        sessions = conn.execute("SELECT count(*) FROM sessions").fetchone()[0]
    finally:
        conn.close()
    return {"path": copy, "version": version, "head": {"id": tail.id, "hash": tail.hash},
            "first_hash": first[0] if first else None, "sessions": sessions,
            "sha256": _sha256(source)}


def _sha256(path: Path) -> str:
    digest = Sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    """The live table's columns that the backup's copy has too (same code, same migrations)."""
    live = [row[1] for row in conn.execute(f'PRAGMA main.table_info("{table}")')]
    held = {row[1] for row in conn.execute(f'PRAGMA backup.table_info("{table}")')}
    return [name for name in live if name in held]


def _purged_before(conn: sqlite3.Connection) -> str:
    """The latest day before which the live record purged its sessions ("" if never)."""
    latest = ""
    for (detail,) in conn.execute("SELECT detail FROM main.audit WHERE action = 'sessions_purged'"):
        try:
            latest = max(latest, str(json.loads(detail).get("before") or ""))
        except (ValueError, AttributeError):
            continue
    return latest


def _removed_users(conn: sqlite3.Connection) -> set[str]:
    marks = ",".join("?" for _ in USER_REMOVED_ACTIONS)
    names = set()
    for (detail,) in conn.execute(f"SELECT detail FROM main.audit WHERE action IN ({marks})",
                                  USER_REMOVED_ACTIONS):
        try:
            names.add(str(json.loads(detail).get("name")))
        except (ValueError, AttributeError):
            continue
    return names


def _rows(conn: sqlite3.Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    cursor = conn.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor]


def _insert(conn: sqlite3.Connection, table: str, columns: list[str], rows: list[dict[str, Any]]) -> int:
    if not rows:
        return 0
    conn.executemany(f"INSERT INTO main.{table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
                     [tuple(row[c] for c in columns) for row in rows])
    return len(rows)


def _plan(conn: sqlite3.Connection, same_dock_head: int | None = None) -> dict[str, Any]:
    """The rows of the attached backup the live record lacks, each covered by the
    backup's audit chain (coverage.py, raises Uncovered); read only, before the merge."""
    if same_dock_head is not None:
        coverage.check_prefix(conn, same_dock_head)
    pen_columns = _columns(conn, "pens")
    new_pens = coverage.pens(conn, _rows(conn, f"SELECT {', '.join(pen_columns)} FROM backup.pens "
                                               "WHERE serial NOT IN (SELECT serial FROM main.pens) ORDER BY serial"))
    sessions = [name for name in _columns(conn, "sessions") if name != "id"]
    candidates = _rows(conn, f"SELECT b.id, {', '.join(f'b.{n}' for n in sessions)} FROM backup.sessions b "
                             "WHERE b.day >= ? AND NOT EXISTS (SELECT 1 FROM main.sessions m "
                             "WHERE m.started_at = b.started_at AND m.pen_serial = b.pen_serial "
                             "AND m.cartridge_serial = b.cartridge_serial "
                             "AND upper(coalesce(m.client_ref, '')) = upper(coalesce(b.client_ref, ''))) ORDER BY b.id",
                       (_purged_before(conn),))
    coverage.sessions(conn, candidates)
    coverage.spent_cartridges(conn, [row[0] for row in conn.execute(
        "SELECT serial FROM backup.spent_cartridges WHERE serial NOT IN (SELECT serial FROM main.spent_cartridges)")])
    removed = _removed_users(conn)
    user_columns = _columns(conn, "users")
    new_users, left_out = coverage.users(conn, [
        row for row in _rows(conn, f"SELECT {', '.join(user_columns)} FROM backup.users "
                                   "WHERE name NOT IN (SELECT name FROM main.users) ORDER BY name")
        if row["name"] not in removed])
    return {"pen_columns": pen_columns, "pens": new_pens, "session_columns": sessions, "sessions": candidates,
            "user_columns": user_columns, "users": new_users, "users_left_out": left_out}


def _merge_rows(conn: sqlite3.Connection, plan: dict[str, Any]) -> dict[str, Any]:
    """The planned rows into the live record (the caller's transaction); counts added."""
    added: dict[str, Any] = {}
    added["pens"] = _insert(conn, "pens", plan["pen_columns"], plan["pens"])
    added["pen_counters_raised"] = conn.execute(
        "UPDATE main.pens SET "
        "last_strokes = max(last_strokes, (SELECT b.last_strokes FROM backup.pens b WHERE b.serial = pens.serial)), "
        "last_motor_seconds = max(last_motor_seconds, "
        "(SELECT b.last_motor_seconds FROM backup.pens b WHERE b.serial = pens.serial)) "
        "WHERE serial IN (SELECT b.serial FROM backup.pens b WHERE b.last_strokes > pens.last_strokes "
        "OR b.last_motor_seconds > pens.last_motor_seconds)").rowcount
    added["spent_cartridges"] = conn.execute(
        "INSERT OR IGNORE INTO main.spent_cartridges (serial, first_used) "
        "SELECT serial, first_used FROM backup.spent_cartridges").rowcount
    # A chip counter only goes down: the lower of the two is what the dock has seen.
    added["cartridge_chips"] = conn.execute(
        "INSERT INTO main.cartridge_chips (cartridge_id, lowest_counter) "
        "SELECT cartridge_id, lowest_counter FROM backup.cartridge_chips WHERE true "
        "ON CONFLICT(cartridge_id) DO UPDATE SET "
        "lowest_counter = min(lowest_counter, excluded.lowest_counter)").rowcount
    for row in plan["sessions"]:
        if row["outcome"] == "open":
            row["outcome"] = "interrupted"
        if row.get("client_ref"):
            row["client_ref"] = rules.canonical_client_ref(row["client_ref"])  # one spelling per client
    added["sessions"] = _insert(conn, "sessions", plan["session_columns"], plan["sessions"])
    conn.execute(  # a session's cartridge is spent, whatever the backup's own table says
        "INSERT OR IGNORE INTO main.spent_cartridges (serial, first_used) "
        "SELECT cartridge_serial, min(started_at) FROM backup.sessions "
        "WHERE cartridge_serial != 0 GROUP BY cartridge_serial")
    added["users"] = _insert(conn, "users", plan["user_columns"], plan["users"])
    if plan["users_left_out"]:
        added["users_left_out"] = plan["users_left_out"]
    return added


def restore(store, source: Path, actor: str, at, clock_synced: bool) -> dict[str, Any]:
    """Check `source`, then merge it into the live record in one transaction, audited.

    `store` is the daemon's writer Store. Raises RestoreRefused with nothing changed.
    """
    source = Path(source)
    scratch = Path(tempfile.mkdtemp(prefix=".restore-", dir=store.path.parent))
    try:
        checked = check_backup(source, scratch)
        with store._lock:  # one writer connection: nobody else writes while it is attached
            conn = store._conn
            conn.execute("ATTACH DATABASE ? AS backup", (str(checked["path"]),))
            try:
                live_first = anchor.first_entry(conn)
                same_dock = bool(live_first and live_first[0] == checked["first_hash"])
                try:
                    plan = _plan(conn, checked["head"]["id"] if same_dock else None)
                except coverage.Uncovered as error:
                    raise _refuse(source, str(error)) from None
                with store.transaction("the restore"):
                    added = _merge_rows(conn, plan)
                    detail = {
                        "from": str(source), "sha256": checked["sha256"],
                        "backup_head": checked["head"], "backup_schema": checked["version"],
                        "same_dock": same_dock,
                        "added": added,
                    }
                    store.audit(actor, "restored", detail, at, clock_synced)
            finally:
                conn.execute("DETACH DATABASE backup")
        return detail
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
