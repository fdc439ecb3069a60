"""S9 at the broker, on loopback with Debian's Mosquitto and the configuration `pendock
fleet provision` writes: one dock's login cannot knock another dock off (the client id is
the login), the broker speaks TLS with the clinic's own CA by default, and a dock knocked
off again and again (its own login used elsewhere) says so within stale_after_minutes.
Bounded: a few rogue connections, well under a minute each."""
from __future__ import annotations

import shutil
import subprocess
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from appliance.fleet.provision import provision
from tests.support.demo import DemoProcess, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None,
                                reason="needs Debian's mosquitto (make test installs it)")


def start_broker(clinic: Path, port: int) -> subprocess.Popen:
    conf = clinic / "broker" / "mosquitto.conf"
    conf.write_text(conf.read_text().replace(f"listener {port}\n", f"listener {port} 127.0.0.1\n")
                    + "user root\n")  # the test's files belong to root
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    return broker


def password(clinic: Path, dock: str) -> str:
    return (clinic / "docks" / dock / "broker-password").read_text().strip()


class Watched:
    """A plain MQTT client that counts its disconnects."""

    def __init__(self, client_id: str, user: str, secret: str, port: int, ca: Path | None = None):
        self.connected = threading.Event()
        self.drops = 0
        self.client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv311)
        self.client.username_pw_set(user, secret)
        if ca is not None:
            self.client.tls_set(ca_certs=str(ca))
        self.client.on_connect = lambda c, u, f, rc, p: self.connected.set() if not rc.is_failure else None
        self.client.on_disconnect = self._dropped
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _dropped(self, *args) -> None:
        self.drops += 1
        self.connected.clear()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def test_one_docks_login_cannot_knock_another_dock_off(tmp_path):
    port = free_port()
    clinic = tmp_path / "clinic"
    provision(clinic, ["room-1", "room-2"], f"mqtt://127.0.0.1:{port}", port=port, persistence=False)
    broker = start_broker(clinic, port)
    clients = []
    try:
        room1 = Watched("pendock-room-1", "room-1", password(clinic, "room-1"), port)
        clients.append(room1)
        assert room1.connected.wait(10)
        for _ in range(5):  # room-2's login, claiming room-1's client id, five times
            rogue = Watched("pendock-room-1", "room-2", password(clinic, "room-2"), port)
            clients.append(rogue)
            assert rogue.connected.wait(10)
            time.sleep(0.3)
        time.sleep(1)
        assert room1.drops == 0 and room1.connected.is_set()
    finally:
        for client in clients:
            client.close()
        broker.terminate()
        broker.wait(10)


def test_the_provisioned_broker_speaks_tls_with_the_clinics_ca(tmp_path):
    port = free_port()
    clinic = tmp_path / "clinic"
    provision(clinic, ["room-1"], f"mqtts://127.0.0.1:{port}", port=port, persistence=False)
    broker = start_broker(clinic, port)
    clients = []
    try:
        trusting = Watched("x", "room-1", password(clinic, "room-1"), port, clinic / "docks" / "room-1" / "clinic-ca.crt")
        clients.append(trusting)
        assert trusting.connected.wait(10)
        in_clear = Watched("y", "room-1", password(clinic, "room-1"), port)  # no TLS: refused
        clients.append(in_clear)
        assert not in_clear.connected.wait(3)
    finally:
        for client in clients:
            client.close()
        broker.terminate()
        broker.wait(10)


def test_a_dock_knocked_off_again_and_again_says_so_within_stale_after(tmp_path):
    port = free_port()
    clinic = tmp_path / "clinic"
    provision(clinic, ["room-1", "room-2"], f"mqtt://127.0.0.1:{port}", port=port, persistence=False)
    broker = start_broker(clinic, port)
    config = tmp_path / "room-1.toml"
    config.write_text((clinic / "docks" / "room-1" / "fleet.toml").read_text()
                      .replace("stale_after_minutes = 10", "stale_after_minutes = 0.5"))
    demo = DemoProcess(tmp_path / "room-1")
    demo.env["PENDOCK_CONFIG"] = str(config)
    thief = None
    try:
        demo.start(40)
        assert wait_for(lambda: demo.json("fleet")["connected"], timeout=15, every=0.5)
        assert demo.json("fleet")["stale"] is False
        started = time.monotonic()
        # room-1's own login, stolen, on another device: each connection ends the other's.
        thief = Watched("anything", "room-1", password(clinic, "room-1"), port)
        assert wait_for(lambda: demo.json("fleet")["stale"], timeout=30, every=0.5)
        took = time.monotonic() - started
        shown = demo.json("fleet")
        assert shown["kicked"] >= 3 and "another client may be using this dock's login" in shown["last_error"]
        assert "fleet_stale" in demo.json("status")["warnings"]
        assert took < 30  # stale_after_minutes = 0.5
        print(f"S9 kicked: room-1 said fleet_stale {took:.1f} s after its login was used elsewhere")
    finally:
        if thief is not None:
            thief.close()
        demo.stop()
        broker.terminate()
        broker.wait(10)


def test_an_equivocation_is_an_alarm_on_every_dock_the_liars_own_included(tmp_path):
    """A thief holding room-1's key and login signs a second event for a place in room-1's
    chain: room-2 raises the alarm, and tells room-1 (which never reads its own topic)."""
    from appliance.fleet import events as ev
    from appliance.fleet import keys

    port = free_port()
    clinic = tmp_path / "clinic"
    provision(clinic, ["room-1", "room-2"], f"mqtt://127.0.0.1:{port}", port=port, persistence=False)
    broker = start_broker(clinic, port)
    demos = {}
    thief = None
    try:
        for dock in ("room-1", "room-2"):
            demo = DemoProcess(tmp_path / dock)
            demo.env["PENDOCK_CONFIG"] = str(clinic / "docks" / dock / "fleet.toml")
            demos[dock] = demo.start(40)
        for demo in demos.values():
            assert wait_for(lambda d=demo: d.json("fleet")["connected"], timeout=15, every=0.5)
        demos["room-1"].sim("dock")  # room-1 has an event of its own: its pen, seen
        held = lambda: {p["dock_id"]: p["seq"] for p in demos["room-2"].json("fleet")["peers"]}  # noqa: E731
        assert wait_for(lambda: held().get("room-1", 0) >= 1, timeout=20, every=0.5)
        key = keys.load_private_key(clinic / "docks" / "room-1" / "fleet.key")
        lie = ev.sign(ev.Event("room-1", 1, "pen_counters", "2026-12-08T03:00:00+00:00",
                               {"serial": 4242, "strokes": 1, "motor_seconds": 1}, ev.GENESIS), key)
        thief = Watched("anything", "room-1", password(clinic, "room-1"), port)
        assert thief.connected.wait(10)
        thief.client.publish("pendock/events/room-1", ev.canonical(lie.wire()), qos=1).wait_for_publish(5)
        for dock in ("room-2", "room-1"):
            assert wait_for(lambda d=dock: demos[d].json("status")["fleet"]["equivocations"] >= 1,
                            timeout=30, every=0.5), f"{dock} raised no alarm"
        told = demos["room-1"].json("fleet")["recent_equivocations"]
        assert told and told[0]["dock_id"] == "room-1" and "seen by room-2" in told[0]["why"]
        assert "ALARM" in demos["room-2"].ok("fleet")
    finally:
        if thief is not None:
            thief.close()
        for demo in demos.values():
            demo.stop()
        broker.terminate()
        broker.wait(10)
