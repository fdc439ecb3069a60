"""The fleet's event envelope: what a peer believes, and what it drops and counts."""
from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.fleet import events as ev

KEY_A, KEY_B = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
RING = {"room-1": KEY_A.public_key(), "room-2": KEY_B.public_key()}


def opened(seq=1, dock="room-1", key=KEY_A, **payload) -> ev.Event:
    body = {"session": 7, "client_ref": "BK-1", "area": "face", "pen_serial": 42,
            "cartridge_serial": 9001, **payload}
    return ev.sign(ev.Event(dock, seq, "session_opened", "2026-03-02T10:00:00+00:00", body,
                            ev.GENESIS), key)


def test_a_signed_event_survives_the_wire_and_verifies():
    event = opened()
    back = ev.verify(ev.decode_event(event.encode()), RING)
    assert back == event
    assert back.payload["client_ref"] == "BK-1"


def category(raw: bytes) -> str:
    with pytest.raises(ev.Rejected) as caught:
        ev.verify(ev.decode_event(raw), RING)
    return caught.value.category


def test_a_changed_payload_is_forged():
    wire = opened().wire()
    wire["payload"]["client_ref"] = "BK-2"
    assert category(ev.canonical(wire)) == "forged"


def test_an_event_signed_by_another_docks_key_is_forged():
    assert category(opened(key=KEY_B).encode()) == "forged"


def test_a_dock_outside_the_key_ring_is_forged():
    stranger = Ed25519PrivateKey.generate()
    assert category(opened(dock="room-9", key=stranger).encode()) == "forged"


def test_unsigned_events_are_counted_as_unsigned():
    wire = opened().wire()
    wire["sig"] = ""
    assert category(ev.canonical(wire)) == "unsigned"
    del wire["sig"]
    assert category(ev.canonical(wire)) == "unsigned"


@pytest.mark.parametrize("raw", [
    b"not json", b"\xff\xfe", b"[]", b'{"v":1}', b'{"events": 3}',
    json.dumps({**opened().wire(), "seq": -1}).encode(),
    json.dumps({**opened().wire(), "seq": True}).encode(),
    json.dumps({**opened().wire(), "kind": "drop_tables"}).encode(),
    json.dumps({**opened().wire(), "at": "yesterday"}).encode(),
    json.dumps({**opened().wire(), "at": "2026-03-02T10:00:00"}).encode(),
    json.dumps({**opened().wire(), "payload": {"session": "x"}}).encode(),
    json.dumps({**opened().wire(), "extra": 1}).encode(),
    b"[" * 5000 + b"]" * 5000,
])
def test_malformed_bytes_are_rejected_not_raised(raw):
    assert category(raw) in ("malformed", "oversized")


def test_an_oversized_event_is_refused_before_parsing():
    raw = b'{"v":1,"pad":"' + b"x" * ev.MAX_EVENT_BYTES + b'"}'
    assert category(raw) == "oversized"


def test_notes_are_signed_and_checked():
    raw = ev.sign_note("room-1", {"after": {"room-2": 5}}, KEY_A)
    assert ev.open_note(raw, RING) == ("room-1", {"after": {"room-2": 5}})
    forged = ev.sign_note("room-1", {"after": {"room-2": 5}}, KEY_B)
    with pytest.raises(ev.Rejected, match="forged"):
        ev.open_note(forged, RING)
    with pytest.raises(ev.Rejected, match="unsigned"):
        ev.open_note(json.dumps({"dock": "room-1", "note": {}}).encode(), RING)
    with pytest.raises(ev.Rejected, match="malformed"):
        ev.seq_map({"room-2": -3})
