"""The upgrade's real health probe and open-session check against a running simulated dock
(`pendock demo`): what `pendock upgrade` asks after a restart, asked of a real daemon and page."""
from __future__ import annotations

from appliance.daemon.control import ControlClient
from appliance.release.machine import health_probe, real_machine


def test_a_healthy_dock_passes_the_probe_and_an_open_session_stops_an_upgrade(demo, tmp_path):
    client = lambda: ControlClient(demo.data / "control.sock")  # noqa: E731
    assert health_probe(client, demo.url + "/healthz", timeout_s=20)() == []
    machine = real_machine(tmp_path / "root", demo.data, client, demo.url + "/healthz", say=print)
    assert machine.busy() is None
    demo.ok("sim", "cartridge")
    demo.ok("next-client", "BK-9", "--area", "face", "--checklist", "screened,test-area")
    demo.ok("sim", "undock")
    assert "a session is open" in (machine.busy() or "")
    assert demo.status()["session"] is not None
    demo.ok("sim", "dock")
    assert machine.busy() is None


def test_a_stopped_daemon_fails_the_probe_by_its_deadline(demo):
    client = lambda: ControlClient(demo.data / "control.sock", timeout=2)  # noqa: E731
    url = demo.url + "/healthz"
    demo.stop()
    problems = health_probe(client, url, timeout_s=3)()
    assert problems and problems[0].startswith("daemon not ready")
