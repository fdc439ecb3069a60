"""The store: sessions, pens, history, state, users, read-only readers, failures."""
from __future__ import annotations

import sqlite3
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from appliance.record import audit as audit_chain
from appliance.record import migrations
from appliance.core.model import PenReading, SessionResult
from appliance.record.store import LOG_KEYS, StorageError, Store, StoreError

TZ = ZoneInfo("Europe/Berlin")
T0 = datetime(2024, 3, 1, 9, 0, tzinfo=TZ)


def reading(serial=7, strokes=1000, motor_seconds=600, cartridge=555) -> PenReading:
    return PenReading(pen_serial=serial, firmware="1.2", strokes=strokes,
                      motor_seconds=motor_seconds, cartridge_serial=cartridge,
                      cartridge_strokes=0, max_depth_mm=0.0, battery_mv=4000,
                      temperature_c=30.0)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path) as opened:
        opened.register_pen(reading(), T0 - timedelta(days=400), "dock", True)
        yield opened


def open_session(store, started_at=T0, client_ref="C-1", area="face", cartridge=555, **more):
    return store.open_session(started_at=started_at, client_ref=client_ref, area=area,
                              pen_serial=7, cartridge_serial=cartridge, strokes_start=1000,
                              motor_seconds_start=600, tz=TZ, **more)


def close(store, session_id, ended_at, outcome="completed", warnings=()):
    result = SessionResult(ended_at=ended_at, needling_seconds=1500, strokes=9000,
                           max_depth_mm=1.25, warnings=warnings)
    store.close_session(session_id, result, outcome, 10000, 2100,
                        ended_at.date() + timedelta(days=21),
                        ended_at.date() + timedelta(days=28))


def query_plan(store, method, *args) -> str:
    """EXPLAIN QUERY PLAN of the SELECTs a store method really runs."""
    statements = []
    store._conn.set_trace_callback(statements.append)
    try:
        method(*args)
    finally:
        store._conn.set_trace_callback(None)
    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert selects, f"{method.__name__} ran no SELECT"
    plans = []
    for sql in selects:
        plans += [row[-1] for row in store._conn.execute(f"EXPLAIN QUERY PLAN {sql}")]
    return "\n".join(plans)


# -- opening ---------------------------------------------------------------------------


def test_writer_pragmas_make_commits_durable(store):
    conn = store._conn
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    assert store.schema_version == migrations.CURRENT_VERSION


def test_committed_records_survive_reopening(tmp_path):
    with Store.open(tmp_path) as first:
        first.register_pen(reading(), T0, "dock", True)
        session_id = open_session(first)
    with Store.open(tmp_path) as second:
        assert second.session(session_id)["outcome"] == "open"
        second.audit("tech", "selftest", {}, T0, True)  # tail read at open
        assert second.verify_audit().ok
        assert [e.action for e in second.audit_entries(10)] == [
            "selftest", "session_opened", "pen_registered"]


def test_newer_schema_is_refused_with_an_actionable_message(tmp_path):
    Store.open(tmp_path).close()
    current = migrations.CURRENT_VERSION
    newer = current + 1  # whatever the newest schema is, one past it
    raw = sqlite3.connect(tmp_path / "pendock.db")
    raw.execute(f"PRAGMA user_version = {newer}")
    raw.close()
    for readonly in (False, True):
        with pytest.raises(StoreError) as refused:
            Store.open(tmp_path, readonly=readonly)
        assert (f"database schema {newer} is newer than this software ({current}): upgrade "
                "pen-dock or restore a backup") in str(refused.value)


# -- read-only readers ------------------------------------------------------------------


def test_reader_refuses_a_missing_database(tmp_path):
    with pytest.raises(StoreError, match="no record at"):
        Store.open(tmp_path, readonly=True)
    assert not (tmp_path / "pendock.db").exists()


def test_reader_sees_commits_and_cannot_write(store, tmp_path):
    reader = Store.open(tmp_path, readonly=True)
    try:
        session_id = open_session(store)
        assert reader.session(session_id)["client_ref"] == "C-1"
        assert reader.verify_audit().ok
        with pytest.raises(StoreError, match="read-only"):
            reader.set_state("next_client", {"ref": "X"})
        with pytest.raises(StoreError, match="read-only"):
            reader.audit("page", "login", {}, T0, True)
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader._conn.execute("DELETE FROM sessions")
        assert store.session(session_id) is not None
    finally:
        reader.close()


# -- sessions ---------------------------------------------------------------------------


def test_session_round_trip(store):
    session_id = open_session(store, warnings=["checklist_missing"],
                              overrides=["client_interval"], checklist={"test-area", "screened"})
    opened = store.session(session_id)
    assert opened["outcome"] == "open" and opened["ended_at"] is None
    assert store.open_sessions() == [opened]

    ended = T0 + timedelta(minutes=40)
    close(store, session_id, ended, warnings=("over_needling", "checklist_missing"))
    closed = store.session(session_id)
    assert set(LOG_KEYS) <= set(closed)
    assert closed["started_at"] == "2024-03-01T09:00:00+01:00"
    assert closed["ended_at"] == "2024-03-01T09:40:00+01:00"
    assert closed["outcome"] == "completed"
    assert closed["warnings"] == ["checklist_missing", "over_needling"]
    assert closed["overrides"] == ["client_interval"]
    assert closed["checklist"] == ["screened", "test-area"]
    assert closed["forced"] is False
    assert (closed["needling_seconds"], closed["strokes"], closed["max_depth_mm"]) == (
        1500, 9000, 1.25)
    assert (closed["strokes_end"], closed["motor_seconds_end"]) == (10000, 2100)
    assert closed["next_eligible_date"] == "2024-03-22"
    assert closed["recommended_date"] == "2024-03-29"
    assert store.open_sessions() == []
    actions = [e.action for e in store.audit_entries(2)]
    assert actions == ["session_closed", "session_opened"]


def test_a_session_closes_once(store):
    session_id = open_session(store)
    close(store, session_id, T0 + timedelta(minutes=5))
    with pytest.raises(StoreError, match="not open"):
        close(store, session_id, T0 + timedelta(minutes=6))
    with pytest.raises(ValueError, match="outcome"):
        close(store, open_session(store, cartridge=556), T0, outcome="open")


def test_session_of_an_unknown_pen_is_refused_and_nothing_is_written(store):
    with pytest.raises(StoreError, match="pen 99 is not registered"):
        store.open_session(started_at=T0, client_ref="C", area="face", pen_serial=99,
                           cartridge_serial=1, strokes_start=0, motor_seconds_start=0)
    assert store.sessions_on(T0.date()) == []
    assert not store.cartridge_used(1)


def test_day_is_the_dock_local_date(store):
    late_utc = datetime(2024, 3, 1, 23, 30, tzinfo=timezone.utc)  # 00:30 in Berlin
    session_id = open_session(store, started_at=late_utc)
    assert store.session(session_id)["day"] == "2024-03-02"
    assert [s["id"] for s in store.sessions_on(date(2024, 3, 2))] == [session_id]
    assert store.sessions_on(date(2024, 3, 1)) == []


def test_sessions_on_is_newest_first_by_instant(store):
    # 27 Oct 2024 in Berlin: 02:30+02:00 happens before 02:10+01:00 (clocks went back).
    earlier = datetime(2024, 10, 27, 2, 30, fold=0, tzinfo=TZ)
    later = datetime(2024, 10, 27, 2, 10, fold=1, tzinfo=TZ)
    morning = datetime(2024, 10, 27, 9, 0, tzinfo=TZ)
    ids = {moment: open_session(store, started_at=moment, cartridge=n)
           for n, moment in enumerate((later, morning, earlier), start=1)}
    open_session(store, started_at=morning + timedelta(days=1), cartridge=9)
    day = store.sessions_on(date(2024, 10, 27))
    assert [s["id"] for s in day] == [ids[morning], ids[later], ids[earlier]]
    assert len(store.sessions_on(date(2024, 10, 28))) == 1


def test_day_and_history_queries_use_their_indexes(store):
    assert "idx_sessions_day" in query_plan(store, store.sessions_on, T0.date())
    assert "idx_sessions_client" in query_plan(store, store.treatments, "C-1", T0)
    assert "idx_sessions_open" in query_plan(store, store.open_sessions)
    cartridge_plan = query_plan(store, store.cartridge_used, 555)
    assert "idx_sessions_cartridge" in cartridge_plan
    assert "SCAN sessions" not in cartridge_plan


def test_interrupt_open_sessions_closes_and_audits_them(store):
    first = open_session(store, cartridge=1)
    second = open_session(store, cartridge=2)
    close(store, second, T0 + timedelta(minutes=10))
    third = open_session(store, cartridge=3)
    at = T0 + timedelta(hours=2)
    assert store.interrupt_open_sessions(at) == [first, third]
    assert store.open_sessions() == []
    for session_id in (first, third):
        row = store.session(session_id)
        assert (row["outcome"], row["ended_at"]) == ("interrupted", at.isoformat())
    assert store.session(second)["outcome"] == "completed"
    interrupted = [e.detail["session"] for e in store.audit_entries(2)]
    assert sorted(interrupted) == [first, third]
    assert store.interrupt_open_sessions(at) == []
    assert store.verify_audit().ok


# -- history ----------------------------------------------------------------------------


def test_cartridge_used(store):
    assert not store.cartridge_used(555)
    open_session(store, cartridge=555)
    assert store.cartridge_used(555)
    assert not store.cartridge_used(556)
    assert not store.cartridge_used(0)  # no cartridge is never "used"


def test_treatments_since_newest_first_finished_only(store):
    days_ago = {}
    for n, days in enumerate((40, 25, 10, 3), start=1):
        started = T0 - timedelta(days=days)
        days_ago[days] = open_session(store, started_at=started, cartridge=n)
        close(store, days_ago[days], started + timedelta(minutes=30))
    open_session(store, started_at=T0, cartridge=50)  # still open: not a treatment yet
    other = open_session(store, started_at=T0 - timedelta(days=2), client_ref="C-2",
                         cartridge=51)
    close(store, other, T0)

    found = store.treatments("C-1", T0 - timedelta(days=30))
    assert [t.started_at for t in found] == [T0 - timedelta(days=d) for d in (3, 10, 25)]
    assert {(t.client_ref, t.area) for t in found} == {("C-1", "face")}


def test_treatments_cut_on_the_instant_not_the_text(store):
    started = datetime(2024, 6, 1, 10, 0, tzinfo=TZ)  # stored as 10:00+02:00 = 08:00 UTC
    close(store, open_session(store, started_at=started), started + timedelta(minutes=30))
    just_before = datetime(2024, 6, 1, 7, 59, tzinfo=timezone.utc)
    just_after = datetime(2024, 6, 1, 8, 1, tzinfo=timezone.utc)
    assert len(store.treatments("C-1", just_before)) == 1
    assert store.treatments("C-1", just_after) == ()


def test_history_gathers_pen_cartridge_and_client(store):
    close(store, open_session(store, started_at=T0 - timedelta(days=5), cartridge=555), T0)
    history = store.history(reading(cartridge=555), "C-1", T0, 180)
    assert history.pen.serial == 7
    assert history.cartridge_used_before
    assert [t.started_at for t in history.treatments] == [T0 - timedelta(days=5)]
    fresh = store.history(reading(serial=8, cartridge=777), None, T0, 180)
    assert (fresh.pen, fresh.cartridge_used_before, fresh.treatments) == (None, False, ())


def test_purge_keeps_open_sessions_spent_cartridges_and_the_chain(store):
    old = open_session(store, started_at=T0 - timedelta(days=800), cartridge=1)
    close(store, old, T0 - timedelta(days=800))
    still_open = open_session(store, started_at=T0 - timedelta(days=700), cartridge=2)
    recent = open_session(store, started_at=T0, cartridge=3)
    close(store, recent, T0)
    audit_before = store.verify_audit().checked

    cutoff = date(2023, 3, 1)
    assert store.purge_before(cutoff, "manager", T0) == 1
    assert store.session(old) is None
    assert store.session(still_open) is not None and store.session(recent) is not None
    assert store.cartridge_used(1)  # purged, still spent
    result = store.verify_audit()
    assert result.ok and result.checked == audit_before + 1
    assert store.audit_entries(1)[0].detail == {"before": "2023-03-01", "count": 1}


# -- pens -------------------------------------------------------------------------------


def test_pen_counters_service_and_rebaseline(store):
    assert store.pen(7).last_strokes == 1000
    with pytest.raises(StoreError, match="already registered"):
        store.register_pen(reading(), T0, "dock", True)
    store.record_pen_counters(7, 5000, 3000)
    pen = store.pen(7)
    assert (pen.last_strokes, pen.last_motor_seconds, pen.service_motor_seconds) == (
        5000, 3000, 600)
    store.service_reset(7, 3000, "tech", "new motor", T0, True)
    assert store.pen(7).service_motor_seconds == 3000
    store.rebaseline(7, 10, 20, "tech", "board swapped", T0, True)
    pen = store.pen(7)
    assert (pen.last_strokes, pen.last_motor_seconds, pen.service_motor_seconds) == (10, 20, 20)
    rebaselined, reset = store.audit_entries(2)
    assert (rebaselined.action, rebaselined.actor) == ("rebaseline", "tech")
    assert rebaselined.detail["previous_strokes"] == 5000
    assert reset.detail["reason"] == "new motor"
    with pytest.raises(StoreError, match="pen 8 is not registered"):
        store.record_pen_counters(8, 1, 1)
    assert store.pen(8) is None


# -- state, users, tokens ---------------------------------------------------------------


def test_state_values(store):
    assert store.get_state("next_client", {"none": True}) == {"none": True}
    store.set_state("next_client", {"ref": "C-1", "area": "face"})
    store.set_state("overrides", ["client_interval"])
    assert store.get_state("next_client") == {"ref": "C-1", "area": "face"}
    store.set_state("next_client", None)
    assert store.get_state("next_client") is None
    assert store.get_state("overrides") == ["client_interval"]
    with pytest.raises(ValueError):
        store.set_state(audit_chain.HEAD_KEY, {})


def test_users_and_tokens(store):
    store.add_user("ana", "manager", "hash-a", T0, actor="root")
    assert store.user("ana") == {"name": "ana", "role": "manager", "password_hash": "hash-a",
                                 "created_at": T0.isoformat()}
    with pytest.raises(StoreError, match="already exists"):
        store.add_user("ana", "therapist", "hash-b", T0)
    assert store.user("bob") is None
    token_id = store.add_token("scraper", "tok-hash", T0)
    assert store.token_by_hash("tok-hash") == {"id": token_id, "name": "scraper",
                                               "token_hash": "tok-hash",
                                               "created_at": T0.isoformat()}
    assert store.token_by_hash("other") is None
    assert [e.action for e in store.audit_entries(2)] == ["token_created", "user_added"]
    assert store.verify_audit().ok


# -- transactions and failures ------------------------------------------------------------


def count(store, table):
    return store._conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def test_transaction_is_all_or_nothing(store):
    audit_rows = count(store, "audit")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.set_state("next_client", {"ref": "C-9"})
            open_session(store)
            raise RuntimeError("caller changed its mind")
    assert store.get_state("next_client") is None
    assert count(store, "sessions") == 0 and count(store, "audit") == audit_rows
    store.audit("dock", "lock", {}, T0, True)  # the in-memory tail was rolled back too
    assert store.verify_audit().ok

    with store.transaction():
        store.set_state("next_client", {"ref": "C-9"})
        open_session(store)
    assert store.get_state("next_client") == {"ref": "C-9"}
    assert count(store, "sessions") == 1


def test_storage_error_then_recovery(store):
    sessions, audit_rows = count(store, "sessions"), count(store, "audit")
    store._conn.execute("PRAGMA query_only = ON")  # as a full disk or read-only folder would
    with pytest.raises(StorageError) as failed:
        open_session(store)
    message = str(failed.value)
    assert "could not write the new session" in message and "df -h" in message
    with pytest.raises(StorageError):
        store.audit("dock", "lock", {"locks": ["storage_error"]}, T0, True)
    assert (count(store, "sessions"), count(store, "audit")) == (sessions, audit_rows)

    store._conn.execute("PRAGMA query_only = OFF")  # the disk is writable again
    session_id = open_session(store)
    assert store.session(session_id)["outcome"] == "open"
    assert store.verify_audit().ok
    assert store.audit_entries(1)[0].id == audit_rows + 1  # no gap from the failed writes


def test_a_failure_midway_rolls_back_the_whole_write(store):
    """The session insert succeeds, its audit entry fails: neither may remain."""
    def deny_audit_inserts(action, table, *_):
        return sqlite3.SQLITE_DENY if (action, table) == (sqlite3.SQLITE_INSERT, "audit") \
            else sqlite3.SQLITE_OK

    store._conn.set_authorizer(deny_audit_inserts)
    try:
        with pytest.raises(StorageError):
            open_session(store, cartridge=4242)
    finally:
        store._conn.set_authorizer(None)
    assert count(store, "sessions") == 0
    assert not store.cartridge_used(4242)
    open_session(store, cartridge=4242)
    assert store.cartridge_used(4242) and store.verify_audit().ok


def test_audit_appends_by_another_connection_keep_the_chain(store, tmp_path):
    other = sqlite3.connect(tmp_path / "pendock.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    audit_chain.append(other, "cli", "user_added", {"name": "x"}, T0, True)
    other.execute("COMMIT")
    other.close()
    store.audit("dock", "lock", {}, T0, True)
    assert store.verify_audit().ok
    assert [e.actor for e in store.audit_entries(2)] == ["dock", "cli"]


def test_closed_store_says_so(tmp_path):
    closed = Store.open(tmp_path)
    closed.close()
    closed.close()  # twice is fine
    with pytest.raises(StoreError, match="closed"):
        closed.get_state("x")
    with pytest.raises(StoreError, match="closed"):
        closed.set_state("x", 1)
