"""The fleet link's process, from the daemon's side (appliance/fleet/process.py) and the
child's (appliance/fleet/child.py), without a broker: a stand-in child records what the
daemon sends and reports what a test tells it to. tests/system/test_fleet_link_process.py
runs the real child against a real Mosquitto."""
from __future__ import annotations

import io
import json
import os
import signal
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance.fleet.child import Child, OffsetClock
from appliance.fleet.process import LinkProcess
from appliance.hardware.sim import SimClock
from tests.support.waiting import wait_for

# The stand-in child: appends every line it reads to argv[1]; while argv[2] exists, says
# every 0.1 s that it is connected; exits on EOF (as the real one does).
STAND_IN = r"""
import json, os, sys, threading, time
log, connected = sys.argv[1], sys.argv[2]
def report():
    while True:
        if os.path.exists(connected):
            print(json.dumps({"status": {"dock_id": "room-1", "connected": True, "outbox": 0,
                  "peers": [], "conflicts": 0}, "contact": time.monotonic(), "connected": True}),
                  flush=True)
        time.sleep(0.1)
threading.Thread(target=report, daemon=True).start()
for line in sys.stdin:
    with open(log, "a") as out:
        out.write(line)
"""
PASSWORD = "pw-Zq8-not-on-argv"


@pytest.fixture
def stand_in(tmp_path, monkeypatch):
    log, connected = tmp_path / "lines.jsonl", tmp_path / "connected"
    monkeypatch.setattr(LinkProcess, "COMMAND", ("-c", STAND_IN, str(log), str(connected)))
    return log, connected


def lines(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def proxy(clock=None, stale_after_s=60.0) -> LinkProcess:
    settings = {"dock_id": "room-1", "password": PASSWORD, "broker": "mqtt://127.0.0.1:1"}
    initial = {"dock_id": "room-1", "connected": False, "outbox": 3, "peers": [], "conflicts": 0}
    return LinkProcess(settings, clock=clock or SimClock(ZoneInfo("UTC")), broker="mqtt://127.0.0.1:1",
                       stale_after_s=stale_after_s, initial_status=initial)


def test_the_settings_and_the_password_go_down_the_pipe_never_on_the_command_line(stand_in):
    log, _ = stand_in
    link = proxy().start()
    try:
        assert wait_for(lambda: lines(log), timeout=10)
        first = lines(log)[0]
        assert first["settings"]["password"] == PASSWORD
        cmdline = Path(f"/proc/{link.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0] == sys.executable.encode()
        assert PASSWORD.encode() not in b" ".join(cmdline)
    finally:
        link.close()


def test_a_wake_and_a_moved_clock_reach_the_child(stand_in):
    log, _ = stand_in
    clock = SimClock(ZoneInfo("UTC"))
    link = proxy(clock).start()
    try:
        link.wake()
        assert wait_for(lambda: any(m.get("wake") for m in lines(log)), timeout=10)
        clock.jump(3600)  # a demo moving its simulated clock
        time.sleep(0.15)  # past the gap between two wakes (WAKE_GAP_S)
        link.wake()
        assert wait_for(lambda: any(m.get("clock", [0])[0] > 3599 for m in lines(log)), timeout=10)
    finally:
        link.close()
    assert link._proc.returncode == 0  # asked to stop, it ended on its own (EOF)


def test_a_burst_of_events_wakes_the_child_once(stand_in):
    log, _ = stand_in
    link = proxy().start()
    try:
        for _ in range(50):  # back-to-back decisions: one process wake-up, not fifty
            link.wake()
        time.sleep(0.5)
        assert sum(1 for m in lines(log) if m.get("wake")) == 1
    finally:
        link.close()


def test_a_killed_child_is_started_again(stand_in):
    log, _ = stand_in
    link = proxy().start()
    try:
        assert wait_for(lambda: lines(log), timeout=10)
        first = link.pid
        os.kill(first, signal.SIGKILL)
        assert wait_for(lambda: link.pid != first, timeout=10)
        assert link.exits == 1
        assert "ended" in link.status()["last_error"]
        assert wait_for(lambda: sum(1 for m in lines(log) if "settings" in m) == 2, timeout=10)
    finally:
        link.close()


def test_stale_follows_the_childs_contact_and_a_dead_or_hung_child_has_none(stand_in):
    _, connected = stand_in
    connected.touch()
    link = proxy(stale_after_s=1.0).start()
    try:
        assert wait_for(lambda: link.status()["connected"], timeout=10)
        time.sleep(1.5)
        assert not link.stale()  # connected: never stale, however long
        os.kill(link.pid, signal.SIGSTOP)  # hung: its word is believed 5 s, then 1 s more
        assert wait_for(link.stale, timeout=10)
        os.kill(link.pid, signal.SIGCONT)
        assert wait_for(lambda: not link.stale(), timeout=10)
        connected.unlink()  # the restarted children never reach the broker
        os.kill(link.pid, signal.SIGKILL)
        assert wait_for(link.stale, timeout=10)
        assert link.summary()["stale"] and not link.summary()["connected"]
    finally:
        link.close()


def test_before_the_child_reports_the_status_is_the_daemons_own(stand_in):
    link = proxy(stale_after_s=60.0).start()
    try:
        shown = link.summary()
        assert shown == {"dock_id": "room-1", "peers": [], "outbox": 3, "stale": False,
                         "connected": False, "conflicts": 0, "kicked": 0, "equivocations": 0}
    finally:
        link.close()


def test_the_child_follows_the_daemons_lines_and_stops_at_eof():
    clock = OffsetClock(ZoneInfo("Europe/Berlin"))
    child = Child(type("L", (), {"wake": threading.Event(), "last_contact": lambda self: 0.0})(),
                  clock, io.StringIO())
    child.listen(io.StringIO('{"clock": [7200.0, false]}\nnot json\n[1]\n{"wake": true}\n'))
    assert child.link.wake.is_set() and child.stop.is_set()  # EOF: stop
    assert not clock.synced()
    assert abs((clock.now() - datetime.now(timezone.utc)).total_seconds() - 7200) < 5

