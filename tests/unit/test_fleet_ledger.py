"""The fleet ledger in a real record: own events in the outbox, peers' events applied in
order, idempotently, with the conflicts a partition leaves found at merge."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.fleet import events as ev
from appliance.fleet.ledger import Ledger
from appliance.record.store import Store

UTC = timezone.utc
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
KEYS = {"room-1": Ed25519PrivateKey.generate(), "room-2": Ed25519PrivateKey.generate()}


@pytest.fixture
def stores(tmp_path):
    one, two = Store(tmp_path / "one.db"), Store(tmp_path / "two.db")
    yield one, two
    one.close()
    two.close()


def record(store: Store, dock: str, kind: str, payload: dict, at: datetime) -> ev.Event:
    with store.transaction("test event"):
        return Ledger(store.db.conn, dock).record_own(kind, payload, at)


def opened(session: int, ref="BK-1", area="face", cartridge=1000, overrides=()) -> dict:
    return {"session": session, "client_ref": ref, "area": area, "pen_serial": 42,
            "cartridge_serial": cartridge + session, "overrides": list(overrides)}


def ship(source: Store, target: Store, target_dock: str, *, reverse=False, after=0):
    """Everything `room-1` holds of its own, as peers would receive it."""
    rows = Ledger(source.db.conn, "room-1", KEYS["room-1"]).events_after("room-1", after, 10_000)
    events = [ev.verify(ev.decode_event(body), {d: k.public_key() for d, k in KEYS.items()})
              for _, body in rows]
    if reverse:
        events.reverse()
    with target.transaction("ingest"):
        return Ledger(target.db.conn, target_dock).ingest(events, min_interval_days=21,
                                                          tz=UTC, now=T0)


def test_own_events_wait_in_the_outbox_until_acknowledged(stores):
    one, _ = stores
    first = record(one, "room-1", "session_opened", opened(1), T0)
    second = record(one, "room-1", "session_closed", {"session": 1, "outcome": "completed"}, T0)
    ledger = Ledger(one.db.conn, "room-1", KEYS["room-1"])
    assert (first.seq, second.seq) == (1, 2) and second.prev == first.hash
    assert ledger.outbox_count() == 2
    with one.transaction("ack"):
        ledger.acknowledged([1])
    assert [seq for seq, _ in ledger.outbox()] == [2]


def test_a_peers_session_counts_across_docks_and_duplicates_change_nothing(stores):
    one, two = stores
    record(one, "room-1", "session_opened", opened(1), T0)
    record(one, "room-1", "session_closed", {"session": 1, "outcome": "completed", "strokes": 9}, T0)
    first = ship(one, two, "room-2")
    assert first.new == 2 and first.duplicates == 0
    again = ship(one, two, "room-2")
    assert again.new == 0 and again.duplicates == 2
    peer = Ledger(two.db.conn, "room-2")
    assert peer.peer_session_keys() == [("room-1", 1, "completed")]
    assert two.cartridge_used(1001)  # spent in room 1: reused in room 2
    assert peer.high_water()["room-1"] == 2


def test_events_out_of_order_wait_for_the_gap(stores):
    one, two = stores
    record(one, "room-1", "session_opened", opened(1), T0)
    record(one, "room-1", "session_closed", {"session": 1, "outcome": "completed"}, T0)
    rows = Ledger(one.db.conn, "room-1", KEYS["room-1"]).events_after("room-1", 1, 10)  # seq 2 only
    ring = {d: k.public_key() for d, k in KEYS.items()}
    late = [ev.verify(ev.decode_event(body), ring) for _, body in rows]
    with two.transaction("ingest"):
        Ledger(two.db.conn, "room-2").ingest(late, min_interval_days=21, tz=UTC, now=T0)
    peer = Ledger(two.db.conn, "room-2")
    assert peer.high_water().get("room-1") == 0 and peer.peer_session_keys() == []
    ship(one, two, "room-2")
    assert peer.peer_session_keys() == [("room-1", 1, "completed")]


def test_pen_counters_seen_elsewhere_raise_the_local_record(stores):
    one, two = stores
    record(one, "room-1", "pen_registered", {"serial": 42, "firmware": "1.2", "strokes": 100,
                                             "motor_seconds": 50}, T0)
    record(one, "room-1", "pen_counters", {"serial": 42, "strokes": 5000, "motor_seconds": 900}, T0)
    ship(one, two, "room-2")
    pen = two.pen(42)
    assert (pen.last_strokes, pen.last_motor_seconds, pen.service_motor_seconds) == (5000, 900, 50)
    record(one, "room-1", "rebaseline", {"serial": 42, "strokes": 10, "motor_seconds": 5,
                                         "service_motor_seconds": 5}, T0 + timedelta(hours=1))
    result = ship(one, two, "room-2", after=2)
    # A technician's act on a pen takes effect where it was done, not from a peer's key (S9).
    assert two.pen(42).last_strokes == 5000
    assert result.not_applied == [{"dock_id": "room-1", "seq": 3, "kind": "rebaseline", "serial": 42}]


def test_a_partition_conflict_is_found_once_and_an_override_is_not_one(stores):
    one, two = stores
    # room 2 treated BK-1's face 3 days after room 1, blind to it.
    with two.transaction("local"):
        two.db.conn.execute(
            "INSERT INTO pens (serial, firmware, first_seen, last_strokes, last_motor_seconds, "
            "service_motor_seconds) VALUES (42, '1', ?, 0, 0, 0)", (T0.isoformat(),))
    two.open_session(started_at=T0 + timedelta(days=3), client_ref="BK-1", area="face",
                     pen_serial=42, cartridge_serial=77, strokes_start=0, motor_seconds_start=0)
    record(one, "room-1", "session_opened", opened(1), T0)
    record(one, "room-1", "session_opened", opened(2, ref="BK-2"), T0)
    result = ship(one, two, "room-2")
    assert [c["client_ref"] for c in result.conflicts] == ["BK-1"]
    assert result.conflicts[0]["first"]["dock_id"] == "room-1"
    assert ship(one, two, "room-2").conflicts == []  # found once
    assert Ledger(two.db.conn, "room-2").conflict_count() == 1
    # A manager's override of the interval, later, on purpose: not a conflict.
    record(one, "room-1", "session_opened",
           opened(3, ref="BK-3", overrides=["client_interval"]), T0 + timedelta(days=5))
    record(one, "room-1", "session_opened", opened(4, ref="BK-3"), T0)
    assert ship(one, two, "room-2").conflicts == []


def forged(seq: int, kind: str, payload: dict, prev: str = ev.GENESIS) -> ev.Event:
    """An event signed with room-1's (stolen) key."""
    return ev.sign(ev.Event("room-1", seq, kind, T0.isoformat(), payload, prev), KEYS["room-1"])


def ingest(store: Store, events: list[ev.Event]):
    with store.transaction("ingest"):
        return Ledger(store.db.conn, "room-2").ingest(events, min_interval_days=21, tz=UTC, now=T0)


def test_an_equivocating_event_is_an_alarm_and_what_both_say_is_merged(stores):
    one, two = stores
    record(one, "room-1", "session_opened", opened(1), T0)
    ship(one, two, "room-2")
    result = ingest(two, [forged(1, "session_opened", opened(1, ref="BK-9"))])
    assert result.equivocations == 1
    assert result.equivocated == [{"dock_id": "room-1", "seq": 1, "why": "two events for one sequence number"}]
    refs = {r[0] for r in two.db.conn.execute("SELECT client_ref FROM fleet_sessions")}
    assert refs == {"BK-1"}  # one session per (dock, session): the first telling holds


def pen_due_on(store: Store) -> None:
    """Pen 42 on room-2, due for service (900 motor seconds since its last service at 0)."""
    with store.transaction("local pen"):
        store.db.conn.execute(
            "INSERT INTO pens (serial, firmware, first_seen, last_strokes, last_motor_seconds, "
            "service_motor_seconds) VALUES (42, '1', ?, 5000, 900000, 0)", (T0.isoformat(),))


def test_a_forged_service_reset_from_another_docks_key_frees_no_pen_here(stores):
    _, two = stores
    pen_due_on(two)
    result = ingest(two, [forged(1, "service_reset", {"serial": 42, "motor_seconds": 900000})])
    assert two.pen(42).service_motor_seconds == 0
    assert result.not_applied == [{"dock_id": "room-1", "seq": 1, "kind": "service_reset", "serial": 42}]


def test_a_forged_event_first_does_not_hide_the_genuine_sessions_after_it(stores):
    one, two = stores
    pen_due_on(two)
    # The thief's event takes room-1's next place first...
    assert ingest(two, [forged(1, "service_reset", {"serial": 42, "motor_seconds": 900000})]).new == 1
    # ...then room-1's genuine events arrive: a session at that place, and more after it.
    record(one, "room-1", "session_opened", opened(1, ref="BK-5"), T0)
    record(one, "room-1", "session_closed", {"session": 1, "outcome": "completed"}, T0)
    record(one, "room-1", "session_opened", opened(2, ref="BK-6"), T0)
    result = ship(one, two, "room-2")
    assert result.equivocations >= 1 and {a["seq"] for a in result.equivocated} >= {1}
    sessions = {r[0]: r[1] for r in two.db.conn.execute("SELECT client_ref, outcome FROM fleet_sessions")}
    assert sessions == {"BK-5": "completed", "BK-6": "open"}  # the client treated on room-1 counts here
    assert two.pen(42).service_motor_seconds == 0
