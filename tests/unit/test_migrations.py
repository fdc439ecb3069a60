"""Schema migrations: a fresh database, an upgrade in place with data, a failed step."""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone

import pytest
import sqlite_utils

from appliance.record import audit
from appliance.record import migrations
from appliance.record.store import Store, StoreError

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=timezone(timedelta(hours=1)))


def open_db(path) -> sqlite_utils.Database:
    return sqlite_utils.Database(sqlite3.connect(path, isolation_level=None))


def indexes(conn) -> set[str]:
    return {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'idx_%'")}


def old_audit_entries(conn, count: int) -> list[str]:
    """Audit entries as schema 1 and 2 wrote them (hex hash and prev_hash columns), with
    the state's chain head; returns their hashes, oldest first."""
    hashes, prev = [], audit.GENESIS_HASH
    for n in range(1, count + 1):
        at, detail = (T0 + timedelta(minutes=n)).isoformat(), {"n": n, "pen": None}
        digest = audit.entry_hash(n, at, "dock", "lock", detail, n % 2 == 0, prev)
        conn.execute("INSERT INTO audit VALUES (?, ?, 'dock', 'lock', ?, ?, ?, ?)",
                     (n, at, audit.canonical_json(detail), int(n % 2 == 0), prev, digest))
        hashes.append(digest)
        prev = digest
    conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?)",
                 (audit.HEAD_KEY, audit.canonical_json({"id": count, "hash": prev})))
    return hashes


def triggers(conn) -> set[str]:
    return {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'")}


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
    old_audit_entries(conn, 3)
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


def test_schema_2_audit_is_compacted_keeping_every_entry_and_hash(tmp_path):
    path = tmp_path / "pendock.db"
    db = open_db(path)
    migrations.migrate(db, target=2)
    hashes = old_audit_entries(db.conn, 5)
    db.conn.close()

    with Store.open(tmp_path) as store:
        conn = store._conn
        assert store.schema_version == migrations.CURRENT_VERSION >= 3
        assert "prev_hash" not in store.db["audit"].columns_dict
        stored = conn.execute("SELECT hash FROM audit ORDER BY id").fetchall()
        assert [row[0] for row in stored] == [bytes.fromhex(h) for h in hashes]
        assert triggers(conn) == {"audit_no_update", "audit_no_delete"}
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute("DELETE FROM audit WHERE id = 2")
        assert store.verify_audit() == audit.VerifyResult(True, 5, None,
                                                          "5 entries, chain intact")
        entries = store.audit_entries(limit=5)[::-1]
        assert [e.hash for e in entries] == hashes
        assert [e.prev_hash for e in entries] == [audit.GENESIS_HASH] + hashes[:-1]
        # The chain goes on from the migrated head.
        added = store.audit("tech", "service_reset", {"reason": "x"}, T0, True)
        assert (added.id, added.prev_hash) == (6, hashes[-1])
        assert store.verify_audit().ok and store.verify_audit().checked == 6


def test_tampering_before_the_upgrade_is_still_found_after_it(tmp_path):
    """The dropped prev_hash column carried nothing the hash does not cover."""
    path = tmp_path / "pendock.db"
    db = open_db(path)
    migrations.migrate(db, target=2)
    conn = db.conn
    hashes = old_audit_entries(conn, 5)
    conn.execute("DROP TRIGGER audit_no_update")
    # Entry 3 moved to 4 and a forged entry 3 that links to entry 2 put in its place.
    for entry_id in (5, 4, 3):
        conn.execute("UPDATE audit SET id = ? WHERE id = ?", (entry_id + 1, entry_id))
    forged = audit.entry_hash(3, T0.isoformat(), "mallory", "release", {}, True, hashes[1])
    conn.execute("INSERT INTO audit VALUES (3, ?, 'mallory', 'release', '{}', 1, ?, ?)",
                 (T0.isoformat(), hashes[1], forged))
    conn.execute("UPDATE audit SET hash = 'not a hash' WHERE id = 6")
    conn.close()

    with Store.open(tmp_path) as store:
        result = store.verify_audit()
        assert (result.ok, result.first_bad_id) == (False, 4)
        # The unreadable hash was carried over as it was, not lost or made up.
        assert store._conn.execute("SELECT hash FROM audit WHERE id = 6").fetchone()[0] == (
            "not a hash")


def test_schema_7_entries_keep_their_whole_hashes_and_new_ones_keep_16_bytes(tmp_path):
    """An upgraded record's chain runs on from its whole hashes into the short ones;
    tampering on either side is still named, and the tail is found again after a reopen."""
    db = open_db(tmp_path / "pendock.db")
    migrations.migrate(db, target=7)
    hashes, prev = [], audit.GENESIS_HASH
    for n in range(1, 4):  # as schema 3 to 7 wrote them: 32 raw bytes
        at = (T0 + timedelta(minutes=n)).isoformat()
        prev = audit.entry_hash(n, at, "dock", "lock", {"n": n}, True, prev)
        db.conn.execute("INSERT INTO audit VALUES (?, ?, 'dock', 'lock', ?, 1, ?)",
                        (n, at, f'{{"n":{n}}}', bytes.fromhex(prev)))
        hashes.append(prev)
    db.conn.execute("INSERT INTO state VALUES (?, ?)",
                    (audit.HEAD_KEY, audit.canonical_json({"id": 3, "hash": prev})))
    db.conn.close()
    with Store.open(tmp_path) as store:
        assert store.schema_version == migrations.CURRENT_VERSION >= 8
        added = [store.audit("dock", "lock", {"n": n}, T0 + timedelta(minutes=n), True)
                 for n in (4, 5)]
        assert added[0].prev_hash == hashes[-1]
    with Store.open(tmp_path) as store:
        added.append(store.audit("dock", "lock", {"n": 6}, T0 + timedelta(minutes=6), True))
        conn = store._conn
        stored = [bytes(h) for (h,) in conn.execute("SELECT hash FROM audit ORDER BY id")]
        assert [len(h) for h in stored] == [32, 32, 32, 16, 16, 16]
        assert stored[:3] == [bytes.fromhex(h) for h in hashes]
        assert added[2].prev_hash == added[1].hash == audit.whole_hash(conn, 5)
        assert store.verify_audit() == audit.VerifyResult(True, 6, None, "6 entries, chain intact")
        conn.execute("DROP TRIGGER audit_no_update")
        for changed in (2, 5):
            conn.execute("UPDATE audit SET detail = '{\"n\":0}' WHERE id = ?", (changed,))
            assert (store.verify_audit().ok, store.verify_audit().first_bad_id) == (False, changed)
            conn.execute("UPDATE audit SET detail = ? WHERE id = ?", (f'{{"n":{changed}}}', changed))
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


def test_schema_5_fleet_events_are_compacted_keeping_the_signed_bytes(tmp_path):
    """Events kept as the JSON they travel in (schema 5) are served byte for byte the same
    after the upgrade, still verify, and go on chaining; a duplicate is still one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from appliance.fleet import events as ev
    from appliance.fleet.ledger import Ledger

    key = Ed25519PrivateKey.generate()
    path = tmp_path / "pendock.db"
    db = open_db(path)
    migrations.migrate(db, target=5)
    wires, prev = [], ev.GENESIS
    for seq in (1, 2, 3):
        event = ev.sign(ev.Event("room-2", seq, "session_interrupted", T0.isoformat(),
                                 {"session": seq}, prev), key)
        db.conn.execute("INSERT INTO fleet_events VALUES (?, ?, ?, ?, ?, ?)",
                        (event.dock, seq, event.kind, event.at, event.hash, event.encode()))
        wires.append(event.encode())
        prev = event.hash
    db.conn.close()

    with Store.open(tmp_path) as store:
        conn = store._conn
        assert store.schema_version == migrations.CURRENT_VERSION >= 6
        assert set(store.db["fleet_events"].columns_dict) == {"dock_id", "seq", "sig", "body"}
        ledger = Ledger(conn, "room-1")
        served = ledger.events_after("room-2", 0, 10)
        assert [body for _, body in served] == wires
        ring = {"room-2": key.public_key()}
        events = [ev.verify(ev.decode_event(body), ring) for _, body in served]
        stored = sum(len(row[0]) for row in conn.execute("SELECT body FROM fleet_events"))
        assert stored < sum(len(w) for w in wires) / 2
        with store.transaction("test"):
            again = ledger.ingest(events, min_interval_days=28, tz=timezone.utc, now=T0)
            following = ev.sign(ev.Event("room-2", 4, "session_interrupted", T0.isoformat(),
                                         {"session": 4}, events[-1].hash), key)
            more = ledger.ingest([following], min_interval_days=28, tz=timezone.utc, now=T0)
        assert (again.new, again.duplicates) == (0, 3)
        assert (more.new, more.equivocations) == (1, 0)
        assert ledger.high_water()["room-2"] == 4


def test_own_events_kept_before_schema_6_are_served_and_chained_onto(tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from appliance.fleet import events as ev
    from appliance.fleet.ledger import Ledger

    key = Ed25519PrivateKey.generate()
    db = open_db(tmp_path / "pendock.db")
    migrations.migrate(db, target=5)
    prev, wires = ev.GENESIS, []
    for seq in (1, 2):
        event = ev.sign(ev.Event("room-1", seq, "session_interrupted", T0.isoformat(),
                                 {"session": seq}, prev), key)
        db.conn.execute("INSERT INTO fleet_events VALUES (?, ?, ?, ?, ?, ?)",
                        (event.dock, seq, event.kind, event.at, event.hash, event.encode()))
        db.conn.execute("INSERT INTO fleet_outbox VALUES (?)", (seq,))
        wires.append(event.encode())
        prev = event.hash
    db.conn.close()

    with Store.open(tmp_path) as store:
        ledger = Ledger(store._conn, "room-1", key)
        assert ledger.own_seq() == 2
        with store.transaction("test"):
            third = ledger.record_own("session_interrupted", {"session": 3}, T0)
        assert (third.seq, third.prev) == (3, prev)
        served = ledger.events_after("room-1", 0, 10)
        assert [body for _, body in served] == wires + [ev.sign(third, key).encode()]
        assert [seq for seq, _ in ledger.outbox()] == [1, 2, 3]
        ring = {"room-1": key.public_key()}
        assert [ev.verify(ev.decode_event(b), ring).seq for _, b in served] == [1, 2, 3]
