"""A chain over real engines: two clinics, each with its Mosquitto bridged to a central one,
PostgreSQL and the ingest worker, across network namespaces (tests/support/chain.py).
Every test ends with the same check: each dock's events in the store exactly once, the
rows of each dock equal to that dock's own record, through the loss modes a bridge and a
broker really have."""
from __future__ import annotations

import sys
import time

import pytest

from appliance.fleet import keys
from appliance.fleet.ledger import Ledger
from appliance.record.store import Store

from tests.support import chain as chain_support
from tests.support.chain import Chain
from tests.support.marks import slow
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(chain_support.skip_reason() is not None,
                                reason=chain_support.skip_reason() or "")


@pytest.fixture
def chain(tmp_path):
    built = Chain(tmp_path).build()
    try:
        yield built.start()
    finally:
        built.close()


def own(chain: Chain) -> dict[str, int]:
    """Each dock's last sequence, from its own record."""
    return {d: dock.sessions(0) for d, dock in chain.docks.items()}


def acknowledged(chain: Chain, expected: dict[str, int]) -> bool:
    """Every dock heard the chain's mark for all it holds, and its outbox is empty."""
    shown = {d: dock.status() for d, dock in chain.docks.items()}
    return all(s["outbox"] == 0 and s["chain"]["acknowledged"] == expected[d] for d, s in shown.items())


def test_every_dock_s_sessions_reach_the_store_once_and_are_acknowledged_back(chain):
    for dock in chain.docks.values():
        dock.sessions(5)
    expected = own(chain)
    assert all(seq == 10 for seq in expected.values())
    assert wait_for(lambda: chain.exactly_once(expected), timeout=20, every=0.3), chain.rows()
    # The chain's acknowledgement reaches each dock and only then the outbox empties.
    assert wait_for(lambda: acknowledged(chain, expected), timeout=20, every=0.3), \
        [d.status() for d in chain.docks.values()]
    shown = chain.report()
    assert shown["sessions"] == 20
    # Scale by design: a dock holds its own clinic's events, never another clinic's.
    for name, dock in chain.docks.items():
        record = Store(dock.home / "pendock.db", readonly=True)
        try:
            held = {d for (d,) in record.conn.execute("SELECT DISTINCT dock_id FROM fleet_events")}
        finally:
            record.close()
        assert held == {d for d in chain.clinics[dock.clinic] if d != name}, (name, held)
    assert [c["clinic"] for c in shown["clinics"]] == ["north", "south"]
    assert all(d["sessions"] == 5 and d["missing"] == 0 for c in shown["clinics"] for d in c["docks"])


def test_a_kill_9_of_the_worker_mid_stream_loses_and_duplicates_nothing(chain):
    one = chain.docks["n-1"]
    one.sessions(150)
    chain.kill(chain.worker)  # mid-stream: some committed, some in flight, some not yet sent
    for dock in chain.docks.values():
        dock.sessions(20)
    chain.start_worker()
    expected = own(chain)
    assert wait_for(lambda: chain.exactly_once(expected), timeout=40, every=0.5), chain.report()
    assert wait_for(lambda: acknowledged(chain, expected), timeout=20, every=0.5)


def test_the_central_broker_killed_while_the_worker_is_away_loses_nothing(chain):
    chain.kill(chain.worker)
    for dock in chain.docks.values():
        dock.sessions(30)  # bridged to the central broker, which holds no session for the worker
    # PUBACKed by its clinic's broker, but not stored by the chain: each dock keeps them.
    time.sleep(3)  # longer than the link's acknowledgement period
    assert all(dock.status()["outbox"] == 60 for dock in chain.docks.values())
    chain.kill(chain.central)
    chain.start_central()
    chain.start_worker()
    expected = own(chain)
    assert wait_for(lambda: chain.exactly_once(expected), timeout=40, every=0.5), chain.report()
    assert wait_for(lambda: acknowledged(chain, expected), timeout=20, every=0.5)


def test_a_clinic_broker_killed_while_cut_off_loses_nothing(chain):
    chain.docks["n-1"].sessions(2)
    assert wait_for(lambda: chain.exactly_once({"n-1": 4}), timeout=20, every=0.3)
    chain.cut("north")
    for dock in ("n-1", "n-2"):
        chain.docks[dock].sessions(40)  # queued by the bridge, on a broker with no disk
    chain.kill(chain.brokers["north"])
    chain.start_clinic_broker("north")
    chain.heal("north")
    expected = own(chain)
    assert wait_for(lambda: chain.exactly_once(expected), timeout=60, every=0.5), chain.report()
    assert wait_for(lambda: acknowledged(chain, expected), timeout=30, every=0.5)


@pytest.fixture
def small_queue_chain(tmp_path):
    built = Chain(tmp_path, {"north": ("n-1",), "south": ("s-1",)},
                  clinic_conf="max_queued_messages 50\n").build()
    try:
        yield built.start()
    finally:
        built.close()


def test_a_bridge_queue_overflowing_while_cut_off_loses_nothing(small_queue_chain):
    chain = small_queue_chain
    chain.cut("north")
    # 400 events against a bridge queue of 50: dropped at the bridge (QoS 0 queues none of
    # them; with QoS 1 the queue would keep 50), asked from the dock once the link is back.
    chain.docks["n-1"].sessions(200)
    chain.docks["s-1"].sessions(10)
    chain.heal("north")
    expected = own(chain)
    assert wait_for(lambda: chain.exactly_once(expected), timeout=60, every=0.5), chain.report()
    assert wait_for(lambda: acknowledged(chain, expected), timeout=30, every=0.5)


ROGUE = r"""
import base64, json, sys, time
import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from appliance.fleet import events as ev
genuine = open(sys.argv[1], "rb").read()
forged = ev.sign(ev.Event("n-1", 999, "session_opened", "2026-03-02T10:00:00+00:00",
                          {"session": 999, "pen_serial": 1, "cartridge_serial": 0}, ev.GENESIS),
                 Ed25519PrivateKey.generate())
client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="rogue")
client.connect("127.0.0.1", 1883)
client.loop_start()
for topic, body in [("pendock/events/n-1", forged.encode()),            # a stranger's key
                    ("pendock/events/n-1", b"{not json"),               # malformed
                    ("pendock/events/s-1", genuine),                    # south's event in north
                    ("pendock/replay/n-1/chain", b'{"events": [' + forged.encode() + b']}')]:
    client.publish(topic, body, qos=1).wait_for_publish(5)
time.sleep(1)
client.loop_stop()
"""


def test_a_forged_replayed_or_malformed_event_never_reaches_the_store_and_is_counted(chain, tmp_path):
    south = chain.docks["s-1"]
    south.sessions(1)
    assert wait_for(lambda: chain.exactly_once({"s-1": 2}), timeout=20, every=0.3)
    # South's first event, genuinely signed, as it travels: replayed on north's LAN.
    record = Store(south.home / "pendock.db")
    try:
        key = keys.load_private_key(south.home / "fleet.key")
        (_, body), = Ledger(record.conn, "s-1", key).events_after("s-1", 0, 1)
    finally:
        record.close()
    genuine = tmp_path / "genuine.json"
    genuine.write_bytes(body)
    chain_support.ip("netns", "exec", chain.ns["north"], sys.executable, "-c", ROGUE, str(genuine))
    assert wait_for(lambda: sum(chain.report()["dropped"].values()) >= 4, timeout=20, every=0.3), \
        chain.report()
    dropped = chain.report()["dropped"]
    assert dropped.get("forged", 0) >= 3 and dropped.get("malformed", 0) >= 1, dropped
    rows = chain.rows()
    assert 999 not in rows.get("n-1", []) and rows["s-1"] == [1, 2]
    assert chain.report()["sessions"] == 1


def test_a_real_demo_dock_s_sessions_reach_the_store_with_what_the_owner_needs(tmp_path):
    """`pendock demo` with `[fleet] clinic`: the daemon's own journal and link child, not the
    test's driver; the dock's key added to the registry after the worker started."""
    from tests.support.demo import DemoProcess

    chain = Chain(tmp_path, {"north": ("n-1",), "south": ("s-1",)}).build()
    try:
        chain.start()
        home = tmp_path / "n-9"
        home.mkdir()
        key = keys.new_private_key(tmp_path / "n-9.key")
        keys.write_public(chain.clinic_keys("north"), "n-9", key)
        keys.write_public(chain.files / "worker" / "keys" / "north", "n-9", key)
        config = tmp_path / "n-9.toml"
        config.write_text('[fleet]\nbroker = "mqtt://127.0.0.1:1883"\ndock_id = "n-9"\nclinic = "north"\n'
                          f'key_file = "{tmp_path / "n-9.key"}"\nkeys_dir = "{chain.clinic_keys("north")}"\n')
        demo = DemoProcess(home, program=["ip", "netns", "exec", chain.ns["north"], sys.executable,
                                          "-m", "appliance"])
        demo.env["PENDOCK_CONFIG"] = str(config)
        demo.start(40)
        try:
            demo.ok("sim", "cartridge")
            assert demo.run("next-client", "BK-9", "--area", "face", "--checklist",
                            "screened,test-area").returncode == 0
            demo.ok("sim", "undock")
            demo.ok("sim", "needle", "--minutes", "5")
            demo.ok("sim", "dock")
            from appliance.chain import store

            def session():
                with store.connect(chain.pg.url) as conn:
                    return conn.execute("SELECT clinic, client_ref, area, outcome FROM chain_sessions "
                                        "WHERE dock_id = 'n-9'").fetchall()
            assert wait_for(lambda: session() == [("north", "BK-9", "face", "completed")], timeout=30,
                            every=0.5), (session(), chain.rows(), demo.json("fleet"),
                                          (tmp_path / "worker.log").read_text()[-3000:])
            shown = wait_for(lambda: (lambda f: f if f["outbox"] == 0 and f["chain"]["acknowledged"] > 0
                                      else None)(demo.json("fleet")), timeout=20, every=0.5)
            assert shown, demo.json("fleet")
            assert "Chain: clinic north; the chain has stored this dock's events up to" in demo.run("fleet").stdout
            record = Store(home / "pendock.db", readonly=True)
            try:
                own_seq = Ledger(record.conn, "n-9").own_seq()
            finally:
                record.close()
            assert chain.rows()["n-9"] == list(range(1, own_seq + 1))
        finally:
            demo.stop()
    finally:
        chain.close()


@slow
def test_a_clinic_cut_off_for_long_with_thousands_of_events_catches_up_exactly_once(chain):
    chain.cut("north")
    for _ in range(5):
        for dock in ("n-1", "n-2"):
            chain.docks[dock].sessions(500)  # 10,000 events in all, while south carries on
        chain.docks["s-1"].sessions(20)
    expected = own(chain)
    assert expected["n-1"] == expected["n-2"] == 5000
    chain.heal("north")
    assert wait_for(lambda: chain.exactly_once(expected), timeout=120, every=1), chain.report()
    assert wait_for(lambda: acknowledged(chain, expected), timeout=60, every=1)
    assert all(d["missing"] == 0 for c in chain.report()["clinics"] for d in c["docks"])
