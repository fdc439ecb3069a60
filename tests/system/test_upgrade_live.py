"""A release whose daemon will not start, upgraded to on a running dock and rolled back by
itself: the running release is this checkout's bundle installed offline in a scratch
root, its daemon and page a real `pendock demo` run from `current/venv` (standing in for
the two units, so "systemctl" here restarts that demo), and the health probe, the record
backup and the rollback are the real ones."""
from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives import serialization

from appliance import __version__
from appliance.daemon.control import ControlClient
from appliance.release import bundle as bundles
from appliance.release.build import build_bundle
from appliance.release.machine import real_machine
from appliance.release.slots import COMPLETE, Layout
from appliance.release.upgrade import offline_venv, upgrade
from tests.support.demo import DemoProcess
from tests.system.test_bundle import build_checkouts_bundle
from tests.unit.test_release import tiny_wheel

REPO = Path(__file__).resolve().parents[2]


def test_a_release_whose_daemon_exits_at_start_is_rolled_back_and_the_old_one_serves_again(tmp_path):
    key = build_checkouts_bundle(tmp_path)

    # The dock as the installer would leave it (README, Updates): this release in its slot.
    root = tmp_path / "root"
    layout = Layout(root)
    keys = root / "etc/pendock/release-keys"
    keys.mkdir(parents=True)
    (keys / "maker.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    good = tmp_path / "dist" / f"pendock-{__version__}.bundle"
    manifest = bundles.verify(good, keys)
    slot = layout.release(__version__)
    bundles.extract_wheels(good, manifest, slot / "wheels")
    offline_venv(slot / "venv", slot / "wheels", f"pen-dock=={__version__}")
    (slot / COMPLETE).write_text(__version__)
    layout.point("current", __version__)

    demo = DemoProcess(tmp_path / "data", cwd=tmp_path, program=[str(layout.link("current") / "venv/bin/pendock")])
    demo.env.pop("PYTHONPATH")  # the installed release, not the checkout
    demo.start()
    starts: list[str] = []

    def systemctl(args: list[str]) -> None:  # the two units are this one demo
        if args[0] in ("stop", "restart"):
            demo.stop()
        if args[0] in ("start", "restart"):
            starts.append(str(layout.running()))
            demo.spawn()

    try:
        demo.ok("sim", "cartridge")
        demo.ok("next-client", "BK-1", "--area", "face", "--checklist", "screened,test-area")
        demo.ok("sim", "undock")
        demo.ok("sim", "needle", "--minutes", "20", "--depth", "1.0")
        demo.ok("sim", "dock")
        machine = real_machine(root, demo.data, lambda: ControlClient(demo.data / "control.sock", timeout=3),
                               demo.url + "/healthz", say=print, health_timeout_s=15)
        machine.systemctl = systemctl
        major, minor, patch = (int(part) for part in __version__.split(".")[:3])
        broken_version = f"{major}.{minor}.{patch + 1}"
        broken = build_bundle([tiny_wheel(tmp_path / "broken", broken_version,
                                          script="raise SystemExit('this release cannot start')")],
                              key, tmp_path / "dist-broken")

        outcome = upgrade(broken, machine)

        assert outcome.rolled_back and not outcome.ok, outcome
        assert outcome.problems[0].startswith("daemon not ready"), outcome.problems
        assert not [p for p in outcome.problems if p.startswith("after rollback")], outcome.problems
        assert starts == [broken_version, __version__]
        assert (layout.running(), layout.previous()) == (__version__, None)
        assert Path(outcome.backup).is_file()
        status = demo.status()  # the old release answers again, on the record as it was
        assert status["held"] is True
        sessions = demo.json("log")
        assert [s["client_ref"] for s in sessions] == ["BK-1"], sessions
    finally:
        demo.stop()
