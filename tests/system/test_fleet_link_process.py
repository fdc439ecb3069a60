"""The fleet link as the daemon's child process (appliance/fleet/child.py, process.py),
for real: `pendock demo` docks on a Mosquitto listening on 127.0.0.1 (no namespaces;
tests/system/test_fleet.py has the network). Needs Debian's mosquitto; skipped otherwise.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from appliance.fleet.provision import provision
from tests.support.demo import REPO, DemoProcess, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None, reason="needs mosquitto")
CHECKLIST = "screened,test-area"


@pytest.fixture
def broker(tmp_path):
    port = free_port()
    clinic = tmp_path / "clinic"
    provision(clinic, ["room-1", "room-2"], f"mqtt://127.0.0.1:{port}", port=port, persistence=False)
    conf = clinic / "broker" / "mosquitto.conf"
    conf.write_text(conf.read_text().replace(f"listener {port}\n", f"listener {port} 127.0.0.1\n")
                    + ("user root\n" if os.geteuid() == 0 else ""))
    process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    assert wait_for(lambda: _listening(port), timeout=10), "mosquitto did not listen"
    try:
        yield clinic
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def docks(tmp_path, broker):
    started = []

    def start(dock: str) -> DemoProcess:
        demo = DemoProcess(tmp_path / dock)
        demo.env["PENDOCK_CONFIG"] = str(broker / "docks" / dock / "fleet.toml")
        started.append(demo.start(40))
        assert wait_for(lambda: demo.json("fleet")["connected"], timeout=20, every=0.2)
        return demo

    yield start
    for demo in started:
        demo.stop()


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def link_children(pid: int) -> list[int]:
    """The fleet link processes whose parent is `pid`."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            if b"appliance.fleet.child" in _cmdline(int(child)):
                found.append(int(child))
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def _gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] in ("Z", "X")
    except OSError:
        return True


def treat(demo: DemoProcess, ref: str) -> None:
    demo.ok("sim", "cartridge")
    demo.ok("next-client", ref, "--area", "face", "--checklist", CHECKLIST)
    demo.ok("sim", "undock")
    demo.ok("sim", "needle", "--minutes", "5")
    demo.ok("sim", "dock")


def test_the_link_is_one_child_of_the_dock_with_no_secret_on_its_command_line(docks, broker):
    one = docks("room-1")
    [child] = link_children(one.proc.pid)
    cmdline = _cmdline(child)
    assert cmdline.split(b"\0")[1:4] == [b"-P", b"-m", b"appliance.fleet.child"]
    password = (broker / "docks" / "room-1" / "broker-password").read_text().strip()
    assert password and password.encode() not in cmdline


def test_an_event_goes_from_one_docks_link_process_to_the_others(docks):
    one, two = docks("room-1"), docks("room-2")
    treat(one, "BK-31")
    db = two.data / "pendock.db"

    def arrived() -> bool:
        with __import__("sqlite3").connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute("SELECT outcome FROM fleet_sessions WHERE client_ref = 'BK-31'").fetchone()
        return bool(row) and row[0] != "open"

    assert wait_for(arrived, timeout=15, every=0.1)
    assert wait_for(lambda: one.json("fleet")["outbox"] == 0, timeout=10, every=0.2)


def test_a_killed_link_process_is_started_again_and_the_dock_carries_on(docks):
    one = docks("room-1")
    [first] = link_children(one.proc.pid)
    os.kill(first, signal.SIGKILL)
    assert wait_for(lambda: link_children(one.proc.pid) not in ([], [first]), timeout=15, every=0.2)
    assert wait_for(lambda: one.json("fleet")["connected"], timeout=20, every=0.2)
    treat(one, "BK-32")
    assert wait_for(lambda: one.json("fleet")["outbox"] == 0, timeout=15, every=0.2)


def test_a_dock_killed_by_sigkill_leaves_no_link_publishing_in_its_name(docks):
    one = docks("room-1")
    [orphan] = link_children(one.proc.pid)
    one.kill9()
    assert wait_for(lambda: _gone(orphan), timeout=10, every=0.05), "the orphaned link kept running"
    one.start(40)
    assert wait_for(lambda: one.json("fleet")["connected"], timeout=20, every=0.2)
    # One client id, one connection: the broker is not passing it back and forth.
    time.sleep(3)
    shown = one.json("fleet")
    assert shown["connected"] and not shown["last_error"]


def test_the_daemon_never_loads_paho(broker, tmp_path):
    script = f"""
import json, sys, time
from dataclasses import replace
from pathlib import Path
from appliance.core.config import Config, parse_config
from tests.support.inprocess import SimDock
fleet = parse_config(Path({str(broker / 'docks' / 'room-1' / 'fleet.toml')!r}).read_text()).fleet
sim = SimDock(Path({str(tmp_path / 'd')!r}), Path({str(tmp_path / 'd.sock')!r}),
              config=replace(Config(), fleet=fleet))
try:
    deadline = time.monotonic() + 20
    while not sim.call("fleet")["connected"] and time.monotonic() < deadline:
        time.sleep(0.1)
    print(json.dumps({{"connected": sim.call("fleet")["connected"],
                      "paho": sorted(m for m in sys.modules if m.startswith("paho"))}}))
finally:
    sim.close()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                          cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout.splitlines()[-1])
    assert shown == {"connected": True, "paho": []}
