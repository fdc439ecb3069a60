"""What a session costs on disk (P6): its audit entries hold no empty keys and no
microseconds, and the entries written before, in the longer form, still verify and still
rebuild the fleet events signed from them."""
from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.core.model import PenReading, SessionResult
from appliance.fleet import events as ev
from appliance.fleet.journal import Journal
from appliance.fleet.ledger import Ledger
from appliance.record.store import Store

T0 = datetime(2026, 3, 2, 10, 0, 5, 123456, tzinfo=timezone.utc)
KEY = Ed25519PrivateKey.generate()
RING = {"room-1": KEY.public_key()}


class Clock:
    def now(self) -> datetime:
        return T0


def reading(cartridge=555) -> PenReading:
    return PenReading(pen_serial=7, firmware="1.2", strokes=1000, motor_seconds=600,
                      cartridge_serial=cartridge, cartridge_strokes=0, max_depth_mm=0.0,
                      battery_mv=4000, temperature_c=30.0)


@pytest.fixture
def store(tmp_path):
    with Store(tmp_path / "pendock.db") as opened:
        opened.register_pen(reading(), T0 - timedelta(days=1), "dock", True)
        opened.journal = Journal("room-1", Clock())
        yield opened


def session(store, start=T0, warnings=(), overrides=(), forced=False, cartridge=555,
            client_ref="C-1", needling=1500, closing_warnings=()):
    sid = store.open_session(started_at=start, client_ref=client_ref, area="face", pen_serial=7,
                             cartridge_serial=cartridge, strokes_start=1000,
                             motor_seconds_start=600, warnings=warnings, overrides=overrides,
                             forced=forced, checklist=("screened", "test-area"))
    end = start + timedelta(minutes=25, microseconds=7)
    store.close_session(sid, SessionResult(end, needling, 9000, 1.25, closing_warnings),
                        "completed", 10000, 2100, None, None)
    return sid


def details(store, action):
    return [json.loads(d) for (d,) in store._conn.execute(
        "SELECT detail FROM audit WHERE action = ? ORDER BY id", (action,))]


def test_a_plain_sessions_entries_leave_out_empty_lists_and_false(store):
    session(store)
    assert details(store, "session_opened") == [
        {"session": 1, "client_ref": "C-1", "area": "face", "pen_serial": 7,
         "cartridge_serial": 555}]
    assert details(store, "session_closed") == [
        {"session": 1, "outcome": "completed", "needling_seconds": 1500, "strokes": 9000,
         "max_depth_mm": 1.25}]


def test_what_a_session_did_have_is_kept_and_zero_is_not_none(store):
    session(store, warnings=("battery_low",), overrides=("client_interval",), forced=True,
            cartridge=0, client_ref=None, needling=0, closing_warnings=("deep",))
    opened, = details(store, "session_opened")
    assert opened == {"session": 1, "area": "face", "pen_serial": 7, "cartridge_serial": 0,
                      "warnings": ["battery_low"], "overrides": ["client_interval"],
                      "forced": True}
    closed, = details(store, "session_closed")
    assert closed["needling_seconds"] == 0 and closed["warnings"] == ["battery_low", "deep"]


def test_times_are_kept_to_the_second(store):
    session(store)
    ats = [at for (at,) in store._conn.execute("SELECT at FROM audit")]
    assert ats and all(len(at) == len("2026-03-02T10:00:05+00:00") for at in ats)
    row = store._conn.execute("SELECT started_at, ended_at, checklist, warnings FROM sessions"
                              ).fetchone()
    assert tuple(row) == ("2026-03-02T10:00:05+00:00", "2026-03-02T10:25:05+00:00",
                          '["screened","test-area"]', "[]")
    first_used, = store._conn.execute("SELECT first_used FROM spent_cartridges").fetchone()
    assert first_used == "2026-03-02T10:00:05+00:00"
    assert store.session(1)["started_at"] == "2026-03-02T10:00:05+00:00"


def test_older_longer_entries_and_new_ones_verify_rebuild_and_apply_on_a_peer(store, tmp_path):
    # An entry as written before: every key, microseconds; signed into an event from it.
    store.audit("dock", "session_opened",
                {"session": 9, "client_ref": "C-0", "area": "face", "pen_serial": 7,
                 "cartridge_serial": 444, "warnings": [], "overrides": [], "forced": False},
                T0 - timedelta(hours=1), True)
    session(store)
    session(store, start=T0 + timedelta(hours=1), warnings=("battery_low",))
    assert store.verify_audit().ok
    own = store._conn.execute("SELECT count(*), count(audit_id) FROM fleet_own").fetchone()
    assert own[0] == own[1] == 5  # every event rebuilt from its audit entry, none copied
    served = Ledger(store._conn, "room-1", KEY).events_after("room-1", 0, 100)
    events = [ev.verify(ev.decode_event(body), RING) for _, body in served]
    assert events[0].payload["warnings"] == [] and "warnings" not in events[1].payload

    with Store(tmp_path / "peer.db") as peer:
        with peer.transaction("ingest"):
            Ledger(peer._conn, "room-2").ingest(events, min_interval_days=28, tz=timezone.utc,
                                                now=T0)
        rows = peer._conn.execute("SELECT session, warnings, overrides, forced, outcome "
                                  "FROM fleet_sessions ORDER BY session").fetchall()
    assert [tuple(r) for r in rows] == [(1, "[]", "[]", 0, "completed"),
                                        (2, '["battery_low"]', "[]", 0, "completed"),
                                        (9, "[]", "[]", 0, "open")]


def test_a_clinic_docks_session_stays_within_p6_with_room_for_page_fill(tmp_path):
    """The bench (tests/bench/bench_fleet_disk.py) measures pages over 1,000 sessions; this
    counts the bytes SQLite holds for 20 sessions, fleet journal on, which pages can only
    add to (about 8 % in the bench): 90 % of P6's 2,048 B leaves that room."""
    from tests.support.inprocess import SimDock

    sim = SimDock(tmp_path / "data", tmp_path / "control.sock", loop=False)
    try:
        sim.dock.hw.seat.settle_s = 0.001
        sim.store.journal = Journal("room-1", sim.clock)

        def held() -> int:
            conn = sim.store._conn
            if not conn.execute("SELECT 1 FROM pragma_module_list WHERE name = 'dbstat'"
                                ).fetchone():
                pytest.skip("this SQLite has no dbstat table")
            return conn.execute("SELECT sum(payload) FROM dbstat").fetchone()[0]

        for n in range(1, 26):
            sim.session_cycle(f"P-{n}", minutes=1)
            if n == 5:
                before = held()
        per_session = (held() - before) / 20
    finally:
        sim.close()
    assert per_session <= 0.9 * 2048, f"{per_session:.0f} B a session"
