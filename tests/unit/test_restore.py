"""R5 at the record: a restore checks the whole file first and merges; it never forgets."""
from __future__ import annotations

import hashlib
import sqlite3
from datetime import timedelta

import pytest

from appliance.record import anchor
from appliance.record import restore as restoring
from appliance.record.store import Store
from tests.unit.test_store import T0, close, open_session, reading


def digest(folder) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.glob("pendock.db*")))).hexdigest()


@pytest.fixture
def live(tmp_path):
    with Store.open(tmp_path / "live") as store:
        store.register_pen(reading(), T0 - timedelta(days=400), "dock", True)
        yield store


def test_strangers_are_refused_before_the_record_is_touched(live, tmp_path):
    first = open_session(live, cartridge=901)
    close(live, first, T0 + timedelta(minutes=30))
    files = {}
    for name, statements in {
        "contacts": ["create table contacts(id int)"],
        "lookalike": ["create table sessions(id int, day text)", "pragma user_version = 2"],
        "future": ["create table contacts(id int)", "pragma user_version = 99"],
    }.items():
        db = sqlite3.connect(tmp_path / f"{name}.db")
        for statement in statements:
            db.execute(statement)
        db.commit()
        db.close()
        files[name] = tmp_path / f"{name}.db"
    files["garbage"] = tmp_path / "garbage.db"
    files["garbage"].write_bytes(b"\x00" * 4096)
    before = digest(live.path.parent)
    for name, path in files.items():
        with pytest.raises(restoring.RestoreRefused, match="not restored.*not changed"):
            restoring.restore(live, path, "tech", T0 + timedelta(hours=1), True)
        assert digest(live.path.parent) == before, name
    assert not list(live.path.parent.glob(".restore-*"))  # the scratch copy is gone


def test_a_backup_whose_chain_was_tampered_with_is_refused(live, tmp_path):
    open_session(live, cartridge=902)
    live.backup_to(tmp_path / "copy.db")
    db = sqlite3.connect(tmp_path / "copy.db")
    db.execute("DROP TRIGGER audit_no_update")
    db.execute("UPDATE audit SET actor = 'someone else' WHERE id = 1")
    db.commit()
    db.close()
    with pytest.raises(restoring.RestoreRefused, match="audit trail does not verify"):
        restoring.restore(live, tmp_path / "copy.db", "tech", T0, True)


def test_an_older_backup_is_merged_and_nothing_since_is_lost(live, tmp_path):
    first = open_session(live, cartridge=903, client_ref="C-1")
    close(live, first, T0 + timedelta(minutes=30))
    live.backup_to(tmp_path / "older.db")
    second = open_session(live, started_at=T0 + timedelta(hours=2), cartridge=904, client_ref="C-2")
    close(live, second, T0 + timedelta(hours=2, minutes=30))
    live.record_pen_counters(7, 20_000, 9_000)
    detail = restoring.restore(live, tmp_path / "older.db", "tech", T0 + timedelta(hours=3), True)
    assert detail["added"]["sessions"] == 0 and detail["same_dock"] is True
    assert live.cartridge_used(904) and live.cartridge_used(903)
    assert {s["client_ref"] for s in live.sessions_on(T0.date())} == {"C-1", "C-2"}
    pen = live.pen(7)
    assert (pen.last_strokes, pen.last_motor_seconds) == (20_000, 9_000)
    assert live.verify_audit().ok
    assert live.audit_entries(1)[0].action == "restored"


def test_a_backup_of_another_record_adds_what_the_live_one_lacks(live, tmp_path):
    with Store.open(tmp_path / "old-dock") as old:
        old.register_pen(reading(strokes=50_000, motor_seconds=30_000), T0 - timedelta(days=900), "dock", True)
        gone = open_session(old, started_at=T0 - timedelta(days=3), cartridge=905, client_ref="C-9")
        close(old, gone, T0 - timedelta(days=3) + timedelta(minutes=30))
        old.backup_to(tmp_path / "old.db")
    detail = restoring.restore(live, tmp_path / "old.db", "tech", T0, True)
    assert detail["added"]["sessions"] == 1 and detail["same_dock"] is False
    assert live.cartridge_used(905)
    assert live.pen(7).last_strokes == 50_000  # the higher counters: a rollback still shows
    assert [t.client_ref for t in live.treatments("C-9", T0 - timedelta(days=30))] == ["C-9"]
    assert live.verify_audit().ok


def test_the_anchor_finds_a_replaced_chain(live, tmp_path):
    assert anchor.ensure(live.path.parent, live._conn, T0)
    assert anchor.problem(live.path.parent, live._conn) is None
    with Store.open(tmp_path / "other") as other:
        other.audit("dock", "daemon_start", {}, T0, True)
        assert "replaced" in anchor.problem(live.path.parent, other._conn)


def test_a_schema_2_backup_is_migrated_on_the_copy_and_merged(live, tmp_path):
    from tests.unit.test_migrations import open_db
    from appliance.record import migrations

    path = tmp_path / "schema2.db"
    db = open_db(path)
    migrations.migrate(db, target=2)
    db.conn.execute("INSERT INTO pens VALUES (7, '1.0', ?, 100, 60, 0)", (T0.isoformat(),))
    db.conn.execute(
        "INSERT INTO sessions (day, started_at, client_ref, area, pen_serial, cartridge_serial, "
        "strokes_start, motor_seconds_start, outcome, warnings, overrides) "
        "VALUES (?, ?, 'C-old', 'face', 7, 906, 100, 60, 'completed', '[]', '[]')",
        (T0.date().isoformat(), (T0 - timedelta(days=2)).isoformat()))
    db.conn.execute("INSERT INTO spent_cartridges VALUES (906, ?)", ((T0 - timedelta(days=2)).isoformat(),))
    old_entries(db.conn, [  # the session's own entries, as schema 2 wrote them (hex hashes)
        ("session_opened", {"session": 1, "client_ref": "C-old", "area": "face", "pen_serial": 7,
                            "cartridge_serial": 906}, T0 - timedelta(days=2)),
        ("session_closed", {"session": 1, "outcome": "completed"}, T0 - timedelta(days=2, minutes=-30))])
    db.conn.close()
    before = path.read_bytes()
    detail = restoring.restore(live, path, "tech", T0, True)
    assert detail["backup_schema"] == 2 and detail["added"]["sessions"] == 1
    assert live.cartridge_used(906)
    assert path.read_bytes() == before  # the backup itself is only read
    assert live.verify_audit().ok


def old_entries(conn, entries) -> None:
    """Audit entries as schema 1 and 2 wrote them (hex hash and prev_hash), with the head."""
    from appliance.record import audit

    prev = audit.GENESIS_HASH
    for n, (action, detail, at) in enumerate(entries, start=1):
        digest = audit.entry_hash(n, at.isoformat(), "dock", action, detail, True, prev)
        conn.execute("INSERT INTO audit VALUES (?, ?, 'dock', ?, ?, 1, ?, ?)",
                     (n, at.isoformat(), action, audit.canonical_json(detail), prev, digest))
        prev = digest
    conn.execute("INSERT OR REPLACE INTO state VALUES (?, ?)",
                 (audit.HEAD_KEY, audit.canonical_json({"id": len(entries), "hash": prev})))


def test_a_user_removed_since_the_backup_does_not_come_back(live, tmp_path):
    live.add_user("ana", "manager", "scrypt$x", T0)
    live.backup_to(tmp_path / "with-ana.db")
    live.remove_user("ana", T0 + timedelta(hours=1), actor="tech")
    restoring.restore(live, tmp_path / "with-ana.db", "tech", T0 + timedelta(hours=2), True)
    assert live.user("ana") is None


def test_the_anchor_file_is_private(live):
    import stat

    anchor.ensure(live.path.parent, live._conn, T0)
    assert stat.S_IMODE(anchor.path_for(live.path.parent).stat().st_mode) == 0o600


def test_a_restore_keeps_the_lowest_chip_counter_of_both_records(live, tmp_path):
    """A chip counter only goes down: neither an older backup nor another dock's record
    can make a reset or cloned cartridge chip look new again."""
    with Store.open(tmp_path / "old-dock") as old:
        old.record_chip_counter(77, 5)  # seen there, lower
        old.record_chip_counter(78, 9)
        old.backup_to(tmp_path / "old.db")
    live.record_chip_counter(77, 12)
    live.record_chip_counter(79, 3)
    dock_id = live.chip_dock_id()
    detail = restoring.restore(live, tmp_path / "old.db", "tech", T0 + timedelta(hours=1), True)
    assert [live.chip_counter_floor(i) for i in (77, 78, 79)] == [5, 9, 3]
    assert detail["added"]["cartridge_chips"] == 2
    assert live.chip_dock_id() == dock_id  # this dock's id in its challenges stays its own
