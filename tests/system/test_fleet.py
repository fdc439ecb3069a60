"""Several docks, one history, over a real Mosquitto and a real network stack.

Three `pendock demo` docks and a broker, each in its own network namespace joined by veth
pairs (tests/support/clinic.py). A partition is a link really going down. Needs root and
Debian's mosquitto (`make test` installs it); skipped with the reason otherwise.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from appliance.fleet.ledger import Ledger
from tests.support import clinic as clinic_support
from tests.support.clinic import Clinic
from tests.support.demo import REPO
from tests.support.marks import slow
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(clinic_support.skip_reason() is not None,
                                reason=clinic_support.skip_reason() or "")
CHECKLIST = "screened,test-area"
# A client with no login at all: the broker must refuse it (prints "refused" or "accepted").
ANONYMOUS = """
import sys, paho.mqtt.client as mqtt
client = mqtt.Client(callback_api_version=mqtt.CallbackAPIVersion.VERSION2, client_id="anon")
try:
    code = client.connect(sys.argv[1], 1883, keepalive=5)
    client.loop(timeout=2.0)
    client.loop(timeout=2.0)
    print("accepted" if client.is_connected() else "refused")
except Exception:
    print("refused")
"""


@pytest.fixture
def clinic(tmp_path):
    built = Clinic(tmp_path).build()
    try:
        built.start_broker()
        yield built
    finally:
        built.close()


def treat(demo, ref, area="face", cartridge=None, minutes=5):
    """One whole session: a new cartridge, the client, lift, needle, back."""
    demo.ok("sim", "cartridge", *(["--serial", str(cartridge)] if cartridge else []))
    result = demo.run("next-client", ref, "--area", area, "--checklist", CHECKLIST)
    assert result.returncode == 0, result.stdout + result.stderr
    demo.ok("sim", "undock")
    demo.ok("sim", "needle", "--minutes", str(minutes))
    demo.ok("sim", "dock")


def history(clinic, dock) -> set[tuple]:
    """The clinic's sessions as this dock holds them: (dock, session, client, outcome)."""
    with sqlite3.connect(f"file:{clinic.db(dock)}?mode=ro", uri=True) as conn:
        own = {(dock, i, ref, outcome) for i, ref, outcome in conn.execute(
            "SELECT id, client_ref, outcome FROM sessions")}
        peers = set(conn.execute("SELECT dock_id, session, client_ref, outcome FROM fleet_sessions"))
    return own | peers


def converged(clinic) -> bool:
    seen = [history(clinic, dock) for dock in clinic.docks]
    return all(h == seen[0] for h in seen) and bool(seen[0])


def test_a_session_on_one_dock_holds_the_client_and_cartridge_on_the_others(clinic):
    clinic.start()
    one, two, three = (clinic.demo(d) for d in clinic.docks)
    assert one.status()["fleet"]["dock_id"] == "room-1"
    treat(one, "BK-1", cartridge=4711)
    assert wait_for(lambda: converged(clinic), timeout=10), [history(clinic, d) for d in clinic.docks]
    two.ok("sim", "cartridge", "--serial", "4711")  # the cartridge spent in room 1
    result = two.run("next-client", "BK-1", "--area", "face", "--checklist", CHECKLIST)
    assert result.returncode == 1
    locks = two.status()["locks"]
    assert "client_interval" in locks and "cartridge_reused" in locks
    # The other area of the same client, with a fresh cartridge, is free on room 3.
    three.ok("sim", "cartridge")
    assert three.run("next-client", "BK-1", "--area", "neck", "--checklist", CHECKLIST).returncode == 0
    shown = three.json("fleet")
    assert shown["outbox"] == 0 and not shown["stale"]
    assert {p["dock_id"] for p in shown["peers"]} == {"room-1", "room-2"}
    log = two.json("log", "--all-docks")
    assert [(s["dock_id"], s["client_ref"]) for s in log] == [("room-1", "BK-1")]
    assert two.json("log") == []  # this dock's own log is still its own


def test_a_partitioned_dock_keeps_working_says_it_is_stale_and_converges_with_the_conflict(clinic):
    clinic.start()
    one, two, three = (clinic.demo(d) for d in clinic.docks)
    treat(one, "BK-1")
    assert wait_for(lambda: converged(clinic), timeout=10)
    clinic.partition("room-3")
    # Nothing heard for longer than stale_after_minutes (3 s here; the keep-alive notices
    # the dead link within about 8 s): a warning, and the pen still works.
    assert wait_for(lambda: "fleet_stale" in three.status()["warnings"], timeout=30, every=0.5)
    treat(three, "BK-7")  # room 3, blind to room 1 ...
    treat(one, "BK-7")  # ... and room 1, blind to room 3: the same client and area
    treat(two, "BK-8")
    assert three.json("fleet")["outbox"] > 0  # waiting for the broker, on disk
    clinic.heal("room-3")
    assert wait_for(lambda: converged(clinic), timeout=40, every=0.5), \
        [sorted(history(clinic, d)) for d in clinic.docks]
    assert len(history(clinic, "room-1")) == 4
    for demo in (one, three):
        assert wait_for(lambda demo=demo: demo.json("fleet")["conflicts"] == 1, timeout=10)
        assert "fleet_stale" not in demo.status()["warnings"]
    conflict = one.json("fleet")["recent_conflicts"][0]
    assert conflict["client_ref"] == "BK-7"
    assert {conflict["first"]["dock_id"], conflict["second"]["dock_id"]} == {"room-1", "room-3"}
    with sqlite3.connect(f"file:{clinic.db('room-3')}?mode=ro", uri=True) as conn:
        assert conn.execute("SELECT count(*) FROM audit WHERE action = 'fleet_conflict'").fetchone()[0] == 1
    assert three.run("audit", "verify").returncode == 0
    # After the merge, room 2 holds BK-7 as well.
    two.ok("sim", "cartridge")
    assert two.run("next-client", "BK-7", "--area", "face", "--checklist", CHECKLIST).returncode == 1


def test_kill_9_with_a_full_outbox_and_a_broker_restart_lose_nothing(clinic):
    clinic.start("room-1", "room-2")
    one, two = clinic.demo("room-1"), clinic.demo("room-2")
    clinic.stop_broker("KILL")
    for ref in ("BK-21", "BK-22", "BK-23"):
        treat(one, ref)
    waiting = one.json("fleet")["outbox"]
    assert waiting >= 6  # opened and closed, three times, at least
    one.kill9()
    one.start(40)
    assert one.json("fleet")["outbox"] >= waiting  # the outbox is on disk, not in paho's memory
    clinic.start_broker()  # persistence false: a broker that remembers nothing
    assert wait_for(lambda: one.json("fleet")["outbox"] == 0, timeout=30, every=0.5)
    assert wait_for(lambda: converged_pair(clinic), timeout=30, every=0.5)
    clinic.stop_broker()
    clinic.start_broker()  # restarted: retained presence and every queue gone
    treat(two, "BK-24")
    assert wait_for(lambda: converged_pair(clinic), timeout=30, every=0.5)
    refs = {ref for _, _, ref, _ in history(clinic, "room-2")}
    assert refs == {"BK-21", "BK-22", "BK-23", "BK-24"}


def converged_pair(clinic) -> bool:
    return history(clinic, "room-1") == history(clinic, "room-2") != set()


def test_a_rogue_on_the_lan_is_dropped_counted_and_harms_nothing(clinic):
    clinic.start("room-1", "room-2")
    one, two = clinic.demo("room-1"), clinic.demo("room-2")
    treat(one, "BK-31")
    assert wait_for(lambda: converged_pair(clinic), timeout=10)
    before = history(clinic, "room-2")
    genuine = clinic.root / "genuine-event.json"
    with sqlite3.connect(f"file:{clinic.db('room-2')}?mode=ro", uri=True) as conn:
        genuine.write_bytes(Ledger(conn, "room-2").events_after("room-1", 0, 1)[0][1])
    # The rogue holds room-3's stolen broker login (room 3 is not running).
    rogue = subprocess.run(
        ["ip", "netns", "exec", clinic.ns["room-3"], sys.executable, "-m", "tests.support.rogue",
         clinic.address["room-3"], "1883", "room-3",
         str(clinic.files / "docks" / "room-3" / "broker-password"), str(genuine), "room-1"],
        cwd=REPO, capture_output=True, text=True, timeout=60)
    assert rogue.returncode == 0, rogue.stdout + rogue.stderr
    sent = json.loads(rogue.stdout.strip().splitlines()[-1])
    assert sent["forged"] == 1 and sent["acl"] == 1

    def counted():
        shown = two.json("fleet")
        dropped = shown["dropped"]
        return (dropped["forged"] >= 2 and dropped["unsigned"] >= 1 and dropped["oversized"] >= 1
                and dropped["malformed"] >= 2 and shown["duplicates"] >= 1) and shown
    shown = wait_for(counted, timeout=10, every=0.5)
    assert shown, two.json("fleet")
    assert history(clinic, "room-2") == before  # nothing of it merged
    with sqlite3.connect(f"file:{clinic.db('room-2')}?mode=ro", uri=True) as conn:
        held = [e for dock in ("room-1", "room-3") for e in Ledger(conn, "room-2").stored(dock)]
        assert held and not [e for e in held if "ROGUE" in json.dumps(e)]
    # An anonymous client is refused by the broker outright.
    anonymous = subprocess.run(
        ["ip", "netns", "exec", clinic.ns["room-3"], sys.executable, "-c", ANONYMOUS,
         clinic.address["room-3"]], capture_output=True, text=True, timeout=30)
    assert anonymous.stdout.strip() == "refused", anonymous.stdout + anonymous.stderr
    # The docks are unharmed: a new session still travels.
    treat(two, "BK-32")
    assert wait_for(lambda: converged_pair(clinic), timeout=10)
    assert one.status()["fleet"]["connected"] and two.status()["fleet"]["connected"]


def test_a_dock_put_back_to_an_older_backup_says_its_new_events_would_be_refused(clinic):
    clinic.start("room-1", "room-2")
    one = clinic.demo("room-1")
    backup = clinic.root / "older.db"
    one.ok("backup", str(backup))
    treat(one, "BK-41")
    assert wait_for(lambda: converged_pair(clinic), timeout=10)
    one.stop()
    for suffix in ("-wal", "-shm"):
        clinic.db("room-1").with_name("pendock.db" + suffix).unlink(missing_ok=True)
    clinic.db("room-1").write_bytes(backup.read_bytes())
    one.start(40)
    said = wait_for(lambda: one.json("fleet")["last_error"] or "", timeout=20, every=0.5)
    assert "restored from an older backup" in said and "new dock_id" in said


@slow
def test_a_long_partition_with_many_sessions_on_every_side_converges(clinic):
    clinic.start()
    demos = [clinic.demo(d) for d in clinic.docks]
    clinic.partition("room-2")
    clinic.partition("room-3")
    for round_ in range(8):
        for i, demo in enumerate(demos):
            treat(demo, f"BK-{round_}-{i}")
    clinic.heal("room-2")
    clinic.heal("room-3")
    assert wait_for(lambda: converged(clinic), timeout=90, every=1)
    assert len(history(clinic, "room-1")) == 24
