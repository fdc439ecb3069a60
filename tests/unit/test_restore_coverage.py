"""R5: a restore brings back only what the backup's audit chain speaks for. An edited
genuine backup (invented or changed sessions, a user's changed password hash, a pen shown
as serviced, an invented spent cartridge, entries appended to cover them) is refused with
the record unchanged; an honest backup's users do come back."""
from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from appliance.record import audit
from appliance.record import restore as restoring
from appliance.record.store import Store
from tests.unit.test_store import T0, close, open_session, reading


@pytest.fixture
def live(tmp_path):
    with Store.open(tmp_path / "live") as store:
        store.register_pen(reading(), T0 - timedelta(days=400), "dock", True)
        yield store


@pytest.fixture
def other_dock(tmp_path):
    """Another dock's honest record: a pen, a session, a manager."""
    with Store.open(tmp_path / "old-dock") as old:
        old.register_pen(reading(serial=8, strokes=50_000, motor_seconds=30_000), T0 - timedelta(days=900),
                         "dock", True)
        gone = old.open_session(started_at=T0 - timedelta(days=3), client_ref="C-9", area="face", pen_serial=8,
                                cartridge_serial=905, strokes_start=1, motor_seconds_start=1)
        close(old, gone, T0 - timedelta(days=3) + timedelta(minutes=30))
        old.add_user("ana", "manager", "scrypt$ana-hash", T0 - timedelta(days=5))
        old.backup_to(tmp_path / "old.db")
    return tmp_path / "old.db"


def digest(folder) -> str:
    """The record's bytes: the database and its WAL (the -shm index changes with any read)."""
    import hashlib

    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.glob("pendock.db*"))
                                   if not p.name.endswith("-shm"))).hexdigest()


def edit(path, *statements) -> None:
    db = sqlite3.connect(path)
    for statement, *params in statements:
        db.execute(statement, *params)
    db.commit()
    db.close()


def refused(live, path, match: str) -> None:
    before = digest(live.path.parent)
    with pytest.raises(restoring.RestoreRefused, match=match):
        restoring.restore(live, path, "tech", T0 + timedelta(hours=5), True)
    assert digest(live.path.parent) == before


INVENT = ("INSERT INTO sessions (day, started_at, client_ref, area, pen_serial, cartridge_serial, "
          "strokes_start, motor_seconds_start, outcome, warnings, overrides) "
          "VALUES (?, ?, 'C-1', 'face', 7, ?, 1, 1, 'completed', '[]', '[]')")


def test_an_honest_backup_brings_its_users_back(live, other_dock):
    detail = restoring.restore(live, other_dock, "tech", T0, True)
    assert live.user("ana")["password_hash"] == "scrypt$ana-hash"  # NOT IN (NULL) once lost them all
    assert detail["added"]["users"] == 1 and detail["added"]["sessions"] == 1 and detail["added"]["pens"] == 1


def test_invented_sessions_yesterday_and_in_2099_are_refused(live, tmp_path):
    open_session(live, cartridge=902)
    live.backup_to(tmp_path / "copy.db")
    yesterday = T0 - timedelta(days=1)
    edit(tmp_path / "copy.db",
         (INVENT, (yesterday.date().isoformat(), yesterday.isoformat(), 990)),
         (INVENT, ("2099-01-01", "2099-01-01T09:00:00+00:00", 991)))
    refused(live, tmp_path / "copy.db", "2 session.*no session_opened entry")


def test_an_edited_session_is_refused(live, other_dock):
    edit(other_dock, ("UPDATE sessions SET client_ref = 'C-10'",))
    refused(live, other_dock, "its client_ref differs")


def test_entries_appended_to_this_docks_backup_to_cover_an_invented_session_are_refused(live, tmp_path):
    open_session(live, cartridge=902)
    live.backup_to(tmp_path / "copy.db")
    live.audit("dock", "daemon_start", {}, T0 + timedelta(hours=1), True)  # the live chain goes on
    at = T0 - timedelta(days=1)
    edit(tmp_path / "copy.db", (INVENT, (at.date().isoformat(), at.isoformat(), 990)))
    # The forger appends matching entries: the backup's own chain still verifies.
    conn = sqlite3.connect(tmp_path / "copy.db", isolation_level=None)
    session = conn.execute("SELECT max(id) FROM sessions").fetchone()[0]
    audit.append(conn, "dock", "session_opened", {"session": session, "client_ref": "C-1", "area": "face",
                                                  "pen_serial": 7, "cartridge_serial": 990}, at, True)
    audit.append(conn, "dock", "session_closed", {"session": session, "outcome": "completed"}, at, True)
    conn.close()
    refused(live, tmp_path / "copy.db", "goes past this dock's own")


def test_a_user_with_a_changed_password_hash_is_refused(live, other_dock):
    edit(other_dock, ("UPDATE users SET password_hash = 'scrypt$the-thiefs'",))
    refused(live, other_dock, "ana.*its password is not the one")


def test_an_invented_user_is_refused(live, other_dock):
    edit(other_dock, ("INSERT INTO users (name, role, password_hash, created_at) VALUES "
                      "('mallory', 'manager', 'scrypt$m', '2024-01-01T00:00:00+00:00')",))
    refused(live, other_dock, "mallory.*no user_added entry")


def test_a_pen_shown_as_just_serviced_is_refused(live, other_dock):
    edit(other_dock, ("UPDATE pens SET service_motor_seconds = 40000, last_motor_seconds = 40000 WHERE serial = 8",))
    refused(live, other_dock, "pen 8.*serviced")


def test_an_invented_spent_cartridge_is_refused(live, other_dock):
    edit(other_dock, ("INSERT INTO spent_cartridges (serial, first_used) VALUES (4242, '2024-01-01T00:00:00+00:00')",))
    refused(live, other_dock, "spent cartridge.*4242")
