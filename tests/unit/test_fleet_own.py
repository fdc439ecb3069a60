"""This dock's own events kept by reference to their audit entry (P6): served byte for
byte as signed, verifiable by a peer, and never served if what is rebuilt differs."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.fleet import events as ev
from appliance.fleet.journal import Journal
from appliance.fleet.ledger import Ledger
from appliance.fleet.own import OwnEventBroken
from appliance.record.store import Store

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
KEY = Ed25519PrivateKey.generate()
RING = {"room-1": KEY.public_key()}


class Clock:
    def now(self) -> datetime:
        return T0


@pytest.fixture
def store(tmp_path):
    store = Store(tmp_path / "pendock.db")
    signed: list[ev.Event] = []
    journal = Journal("room-1", Clock())
    original = Ledger.record_own

    def keep(self, *args, **kwargs):
        event = original(self, *args, **kwargs)
        signed.append(event)
        return event

    Ledger.record_own = keep  # type: ignore[method-assign]
    store.journal = journal
    store.signed = signed  # type: ignore[attr-defined]
    try:
        yield store
    finally:
        Ledger.record_own = original  # type: ignore[method-assign]
        store.close()


def audited(store, action, detail, n=0):
    store.audit("dock", action, detail, T0.replace(minute=n), True)


def test_own_events_are_kept_by_reference_and_served_as_signed(store):
    audited(store, "session_opened", {"session": 1, "client_ref": "BK-1", "area": "face",
                                      "pen_serial": 7, "cartridge_serial": 9, "warnings": [],
                                      "overrides": [], "forced": False, "checklist": ["x"]})
    with store.transaction("counters"):
        store.journal(store._conn, "pen_counters",
                      {"serial": 7, "strokes": 100, "motor_seconds": 60}, None, None)
    audited(store, "session_closed", {"session": 1, "outcome": "completed", "strokes": 100,
                                      "max_depth_mm": 1.25, "warnings": ["deep"]}, 5)
    rows = store._conn.execute("SELECT seq, audit_id IS NOT NULL, body IS NULL, length(hash) "
                               "FROM fleet_own ORDER BY seq").fetchall()
    assert [tuple(r) for r in rows] == [(1, 1, 1, 32), (2, 0, 0, 32), (3, 1, 1, 32)]
    served = Ledger(store._conn, "room-1", KEY).events_after("room-1", 0, 10)
    # Recorded hashed, not signed (the decision pays for the hash only); served signed, to
    # exactly the bytes the dock's key gives the recorded event (Ed25519 is deterministic).
    assert not any(e.sig for e in store.signed)
    assert [body for _, body in served] == [ev.sign(e, KEY).encode() for e in store.signed]
    events = [ev.verify(ev.decode_event(body), RING) for _, body in served]
    assert [e.prev for e in events] == [ev.GENESIS, events[0].hash, events[1].hash]
    assert Ledger(store._conn, "room-1", KEY).outbox(after=1) == served[1:]


def test_a_detail_that_does_not_rebuild_the_payload_is_kept_whole(store):
    # A tuple in a detail is a list once stored: same JSON, still a reference. A detail
    # whose stored form differs from what was signed (here: the journal is told another
    # audit entry) must be kept whole, never served rebuilt from the wrong entry.
    audited(store, "override", {"code": "client_interval", "reason": ("a", "b")})
    with store.transaction("mismatch"):
        Ledger(store._conn, "room-1").record_own("override", {"code": "other"}, T0,
                                                 audit_id=1)
    rows = store._conn.execute("SELECT audit_id, body IS NULL FROM fleet_own ORDER BY seq")
    assert [tuple(r) for r in rows] == [(1, 1), (None, 0)]
    served = Ledger(store._conn, "room-1", KEY).events_after("room-1", 0, 10)
    assert [ev.decode_event(b).payload["code"] for _, b in served] == ["client_interval", "other"]


def test_a_kept_event_that_no_longer_rebuilds_is_refused(store):
    audited(store, "session_interrupted", {"session": 4})
    store._conn.execute("UPDATE fleet_own SET hash = zeroblob(32)")
    with pytest.raises(OwnEventBroken, match="does not rebuild"):
        Ledger(store._conn, "room-1", KEY).events_after("room-1", 0, 10)


def test_serving_own_events_needs_the_key(store):
    audited(store, "session_interrupted", {"session": 4})
    with pytest.raises(OwnEventBroken, match="key"):
        Ledger(store._conn, "room-1").events_after("room-1", 0, 10)
