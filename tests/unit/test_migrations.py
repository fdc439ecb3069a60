"""Schema migrations: a fresh database, an upgrade in place with data, a failed step."""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlite_utils

from appliance import audit, migrations
from appliance.store import Store, StoreError

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def open_db(path) -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))


def indexes(conn) -> set[str]:
    return {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'")}


def test_fresh_database_gets_the_current_schema(tmp_path):
    with Store.open(tmp_path) as store:
        conn = store._conn
        assert migrations.schema_version(conn) == migrations.CURRENT_VERSION == len(
            migrations.MIGRATIONS)
        assert {"pens", "sessions", "audit", "state", "users", "tokens",
                "spent_cartridges"} <= set(store.db.table_names())
        assert {"idx_sessions_day", "idx_sessions_cartridge", "idx_sessions_client",
                "idx_sessions_open", "idx_tokens_hash"} <= indexes(conn)
        assert {"checklist", "forced"} <= set(store.db["sessions"].columns_dict)


def test_migrate_runs_each_step_once(tmp_path):
    db = open_db(tmp_path / "x.db")
    assert migrations.migrate(db, target=1) == (0, 1)
    assert migrations.migrate(db) == (1, migrations.CURRENT_VERSION)
    assert migrations.migrate(db) == (migrations.CURRENT_VERSION,) * 2
    with pytest.raises(ValueError, match="no schema version"):
        migrations.migrate(db, target=migrations.CURRENT_VERSION + 1)


def test_schema_1_with_data_upgrades_in_place(tmp_path):
    path = tmp_path / "pendock.db"
    db = open_db(path)
    migrations.migrate(db, target=1)
    conn = db.conn
    conn.execute("INSERT INTO pens VALUES (7, '1.0', ?, 100, 60, 0)", (T0.isoformat(),))
    sessions = [
        # (day, started_at, client_ref, cartridge_serial, outcome)
        ("2024-02-01", (T0 - timedelta(days=29)).isoformat(), "C-1", 11, "completed"),
        ("2024-03-01", T0.isoformat(), "C-2", 12, "open"),
    ]
    for day, started, client, cartridge, outcome in sessions:
        conn.execute(
            "INSERT INTO sessions (day, started_at, client_ref, area, pen_serial, "
            "cartridge_serial, strokes_start, motor_seconds_start, outcome, warnings, "
            "overrides) VALUES (?, ?, ?, 'face', 7, ?, 100, 60, ?, '[\"interval_short\"]', "
            "'[]')", (day, started, client, cartridge, outcome))
    conn.execute("BEGIN IMMEDIATE")
    for n in range(3):
        audit.append(conn, "dock", "lock", {"n": n}, T0, True)
    conn.execute("COMMIT")
    conn.execute("INSERT INTO state VALUES ('next_client', '{\"ref\": \"C-3\"}')")
    conn.execute("INSERT INTO users VALUES ('ana', 'manager', 'h', ?)", (T0.isoformat(),))
    conn.close()

    with Store.open(tmp_path) as store:
        assert store.schema_version == migrations.CURRENT_VERSION
        old = store.sessions_on(date(2024, 2, 1))
        assert [(s["client_ref"], s["outcome"], s["warnings"]) for s in old] == [
            ("C-1", "completed", ["interval_short"])]
        assert (old[0]["checklist"], old[0]["forced"]) == ([], False)
        assert [s["client_ref"] for s in store.open_sessions()] == ["C-2"]
        assert store.pen(7).last_strokes == 100
        assert store.get_state("next_client") == {"ref": "C-3"}
        assert store.user("ana")["role"] == "manager"
        assert store.verify_audit().checked == 3 and store.verify_audit().ok
        # Spent cartridges were carried over, so purging their sessions forgets nothing.
        store.purge_before(date(2024, 3, 1), "manager", T0)
        assert store.sessions_on(date(2024, 2, 1)) == []
        assert store.cartridge_used(11) and store.cartridge_used(12)
        assert not store.cartridge_used(13)
        assert store.verify_audit().ok


def test_a_failing_step_leaves_the_previous_version(tmp_path, monkeypatch):
    db = open_db(tmp_path / "x.db")
    migrations.migrate(db, target=1)

    def half_done(db):
        db["half"].create({"id": int}, pk="id")
        raise RuntimeError("power cut")

    monkeypatch.setattr(migrations, "MIGRATIONS", (migrations.MIGRATIONS[0], half_done))
    with pytest.raises(RuntimeError, match="power cut"):
        migrations.migrate(db, target=2)
    assert migrations.schema_version(db.conn) == 1
    assert "half" not in db.table_names()
    assert not db.conn.in_transaction


def test_reader_refuses_a_schema_older_than_the_software(tmp_path):
    migrations.migrate(open_db(tmp_path / "pendock.db"), target=1)
    with pytest.raises(StoreError, match="older than this software"):
        Store.open(tmp_path, readonly=True)
