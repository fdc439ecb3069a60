"""Two demo docks of a clinic, started by hand, twice (README, "Setting up a clinic"):
`pendock demo --broker URL --dock-id room-a` and room-b, data folders under one parent,
sharing that parent's fleet-keys folder. Started again with new data folders beside the
first, a dock whose old public key is still in fleet-keys must say so, naming the file,
never run on deaf to its peers; and every demo dock holds a pen of its own (a serial from
its dock id), so a session on one never reads as counter_rollback on the other."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.demo import DemoProcess, free_port
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.process,
              pytest.mark.skipif(shutil.which("mosquitto") is None,
                                 reason="needs Debian's mosquitto (make test installs it)")]


@pytest.fixture
def broker(tmp_path):
    port = free_port()
    conf = tmp_path / "mosquitto.conf"
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n")
    process = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: f"127.0.0.1:{port} " in subprocess.run(["ss", "-ltnH"], capture_output=True,
                                                                       text=True).stdout, timeout=10, every=0.1)
        yield f"mqtt://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def docks():
    started: list[DemoProcess] = []

    def start(data: Path, broker: str, dock_id: str) -> DemoProcess:
        dock = DemoProcess(data, data_flag=True, demo_args=("--broker", broker, "--dock-id", dock_id))
        started.append(dock)
        return dock.start(timeout=60)

    yield start
    for dock in started:
        dock.stop()


def peers_online(dock: DemoProcess) -> bool:
    fleet = dock.json("fleet")
    return fleet["connected"] and all(peer["online"] for peer in fleet["peers"]) and bool(fleet["peers"])


def test_a_second_run_with_new_data_folders_names_the_stale_key_and_each_dock_has_its_own_pen(
        tmp_path, broker, docks):
    a1, b1 = docks(tmp_path / "a1", broker, "room-a"), docks(tmp_path / "b1", broker, "room-b")
    assert wait_for(lambda: peers_online(a1) and peers_online(b1), timeout=40, every=0.5)
    serials = {a1.status()["pen"]["serial"], b1.status()["pen"]["serial"]}
    assert len(serials) == 2, "both demo docks simulate the same pen"
    # A session on room-a's pen, then room-b sees no counter_rollback on its own pen.
    a1.sim("cartridge")
    a1.ok("next-client", "BK-1001", "--area", "face")
    a1.sim("undock")
    a1.sim("needle", "--minutes", "10")
    a1.sim("dock")
    assert wait_for(lambda: "counter_rollback" not in str(b1.status()), timeout=10, every=0.5)
    assert "counter_rollback" not in str(b1.status()["locks"])
    a1.stop()
    b1.stop()

    again = DemoProcess(tmp_path / "a2", data_flag=True, demo_args=("--broker", broker, "--dock-id", "room-a"))
    with pytest.raises(RuntimeError) as refused:
        again.start(timeout=60)
    said = str(refused.value)
    assert "exited with code 2" in said
    assert str(tmp_path / "fleet-keys" / "room-a.pub") in said and "delete" in said
