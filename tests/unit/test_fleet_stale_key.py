"""A peer's key in the ring that no longer verifies its events (a demo dock started again
with a new data folder has a new key): the link reads the ring again and, when the file is
still the old key, says so in `pendock fleet`'s last_error, naming the file; never silent."""
from __future__ import annotations

from datetime import timezone

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.fleet import events as ev
from appliance.fleet import keys
from appliance.fleet.link import PREFIX, FleetLink
from appliance.fleet.settings import parse_broker
from appliance.record.store import Store


class Clock:
    def now(self):
        from datetime import datetime

        return datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)


def opened(key, seq=1) -> ev.Event:
    body = {"session": 7, "client_ref": "BK-1", "area": "face", "pen_serial": 42, "cartridge_serial": 9001}
    return ev.sign(ev.Event("room-b", seq, "session_opened", "2026-03-02T10:00:00+00:00", body, ev.GENESIS), key)


def link_in(tmp_path, ring_dir) -> FleetLink:
    own = keys.new_private_key(tmp_path / "fleet.key")
    keys.write_public(ring_dir, "room-a", own)
    Store(tmp_path / "pendock.db").close()
    return FleetLink(dock_id="room-a", broker=parse_broker("mqtt://127.0.0.1:1"), db_path=tmp_path / "pendock.db",
                     key=own, keyring=keys.load_keyring(ring_dir), clock=Clock(), keys_dir=ring_dir,
                     min_interval_days=21, tz=timezone.utc, stale_after_s=60)


def test_a_stale_peer_key_is_named_and_a_renewed_one_is_read_again(tmp_path):
    ring = tmp_path / "fleet-keys"
    old_b, new_b = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys.write_public(ring, "room-b", old_b)
    link = link_in(tmp_path, ring)
    try:
        link._ring_read = 0  # as if the ring was read long ago
        link.inbox.put((f"{PREFIX}/events/room-b", opened(new_b).encode()))
        link._handle_inbox()
        assert link.dropped["forged"] == 1
        assert str(ring / "room-b.pub") in link.last_error and "stale" in link.last_error
        assert link.status()["last_error"] == link.last_error

        keys.write_public(ring, "room-b", new_b)  # the technician copies the current key
        link._ring_read = 0
        link.inbox.put((f"{PREFIX}/events/room-b", opened(new_b, seq=1).encode()))
        link._handle_inbox()
        assert link.dropped["forged"] == 1  # this time believed
        assert link.ledger.high_water().get("room-b", 0) == 1  # and recorded
    finally:
        link.store.close()
