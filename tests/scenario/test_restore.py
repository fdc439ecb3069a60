"""R5: a restore never makes the dock forget (through the CLI, against `pendock demo`)."""
from __future__ import annotations

import hashlib
import sqlite3

from tests.scenario.test_clinic_day import treat

CHECKLIST = "screened,test-area"


def record_bytes(demo) -> dict[str, str]:
    """The hash of every file of the record (the database and its write-ahead log)."""
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(demo.data.glob("pendock.db*"))}


def audit_actions(demo) -> list[str]:
    db = sqlite3.connect(f"file:{demo.data / 'pendock.db'}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT action FROM audit ORDER BY id")]
    finally:
        db.close()


def spent_cartridge_is_held(demo, serial: str) -> bool:
    demo.ok("sim", "cartridge", "--serial", serial)
    status = demo.status()
    return status["held"] and "cartridge_reused" in status["locks"]


def make_db(path, *statements: str):
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()
    return path


def test_a_file_that_is_not_a_pendock_record_is_refused_with_the_record_unchanged(demo, tmp_path):
    demo.ok("sim", "cartridge", "--serial", "4711")
    treat_args = ("next-client", "BK-500", "--checklist", CHECKLIST)
    assert demo.run(*treat_args).returncode == 0
    demo.ok("sim", "undock")
    demo.ok("sim", "needle", "--minutes", "10")
    demo.ok("sim", "dock")
    strangers = [
        make_db(tmp_path / "contacts.db", "create table contacts(id int)"),
        make_db(tmp_path / "lookalike.db", "create table sessions(id int, day text)",
                "create table audit(id int)"),
        make_db(tmp_path / "versioned.db", "create table contacts(id int)", "pragma user_version = 3"),
    ]
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"SQLite format 3\x00" + b"\x17" * 5000)
    strangers.append(garbage)
    before = record_bytes(demo)
    for stranger in strangers:
        result = demo.run("restore", str(stranger))
        assert result.returncode == 1, (stranger.name, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "not restored" in result.stderr, result.stderr
        assert record_bytes(demo) == before, f"{stranger.name} changed the record"
    assert demo.run("audit", "verify").returncode == 0
    assert [s["client_ref"] for s in demo.json("log")] == ["BK-500"]
    assert spent_cartridge_is_held(demo, "4711")


def test_restoring_an_older_backup_keeps_every_spent_cartridge_and_treatment_since(demo, tmp_path):
    demo.ok("sim", "cartridge", "--serial", "1001")
    demo.ok("next-client", "BK-800", "--checklist", CHECKLIST)
    demo.ok("sim", "undock")
    demo.ok("sim", "needle", "--minutes", "10")
    demo.ok("sim", "dock")
    backup = tmp_path / "older.db"
    demo.ok("backup", str(backup))
    demo.ok("sim", "cartridge", "--serial", "1002")
    demo.ok("next-client", "BK-801", "--checklist", CHECKLIST)
    demo.ok("sim", "undock")
    demo.ok("sim", "needle", "--minutes", "10")
    demo.ok("sim", "dock")
    pen_before = demo.status()["pen"]

    out = demo.ok("restore", str(backup))
    assert "kept" in out  # it says what it did with what came after the backup

    assert sorted(s["client_ref"] for s in demo.json("log")) == ["BK-800", "BK-801"]
    assert spent_cartridge_is_held(demo, "1002")  # spent after the backup: still spent
    assert spent_cartridge_is_held(demo, "1001")
    demo.ok("sim", "cartridge", "--serial", "1003")
    assert demo.run("next-client", "BK-801", "--checklist", CHECKLIST).returncode == 1
    status = demo.status()
    assert "client_interval" in status["locks"]  # treated after the backup: still too recent
    assert "counter_rollback" not in status["locks"]  # the pen's counters were kept
    assert status["pen"]["strokes"] == pen_before["strokes"]
    assert demo.run("audit", "verify").returncode == 0
    assert "restored" in audit_actions(demo)


def test_a_wholesale_replaced_record_does_not_verify_as_intact(demo, tmp_path):
    from tests.scenario.conftest import Demo

    treat(demo, "BK-810")
    demo.stop()
    other = Demo(tmp_path / "other").start()  # another record, with a chain of its own
    try:
        treat(other, "BK-999")
    finally:
        other.stop()
    for suffix in ("", "-wal", "-shm"):
        (demo.data / f"pendock.db{suffix}").unlink(missing_ok=True)
    (tmp_path / "other" / "pendock.db").rename(demo.data / "pendock.db")
    demo.start()
    result = demo.run("audit", "verify")
    assert result.returncode == 1, result.stdout
    assert "anchor" in result.stdout


def test_restoring_a_backup_of_another_dock_adds_its_knowledge(demo, tmp_path):
    from tests.scenario.conftest import Demo

    other = Demo(tmp_path / "other").start()
    try:
        other.ok("sim", "cartridge", "--serial", "2001")
        other.ok("next-client", "BK-700", "--checklist", CHECKLIST)
        other.ok("sim", "undock")
        other.ok("sim", "needle", "--minutes", "10")
        other.ok("sim", "dock")
        other.ok("backup", str(tmp_path / "old-dock.db"))
    finally:
        other.stop()
    treat(demo, "BK-701")
    demo.ok("restore", str(tmp_path / "old-dock.db"))
    assert sorted(s["client_ref"] for s in demo.json("log")) == ["BK-700", "BK-701"]
    assert spent_cartridge_is_held(demo, "2001")
    assert demo.run("audit", "verify").returncode == 0
