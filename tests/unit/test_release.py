"""Updates with rollback (README, Updates) in a scratch root: a fake systemctl, health
probe and venv builder; the bundles, slots, record backup and rollback are the real code."""
from __future__ import annotations

import hashlib
import io
import json
import os
import sqlite3
import tarfile
from datetime import datetime, timezone
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import cli
from appliance.release import bundle as bundles
from appliance.release.build import build_bundle
from appliance.release.bundle import BundleRefused
from appliance.release.slots import COMPLETE, Layout
from appliance.release.upgrade import Machine, Pending, finish, rollback, upgrade, version_info

MAKER = Ed25519PrivateKey.generate()


def fake_wheels(folder: Path, version: str) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    mine = folder / f"pen_dock-{version}-py3-none-any.whl"
    mine.write_bytes(b"PK fake project wheel " + version.encode() + os.urandom(700))
    dep = folder / "flask-3.0.0-py3-none-any.whl"
    dep.write_bytes(b"PK fake dependency wheel " + os.urandom(900))
    return [mine, dep]


def make_bundle(tmp: Path, version: str, key: Ed25519PrivateKey = MAKER) -> Path:
    return build_bundle(fake_wheels(tmp / f"wheels-{version}", version), key, tmp / "dist")


def trust(root: Path, key: Ed25519PrivateKey = MAKER, name: str = "maker.pem") -> None:
    keys = root / "etc/pendock/release-keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / name).write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))


class Dock:
    """A scratch root with release 0.1.0 running, a record, and the machine's fakes."""

    def __init__(self, tmp: Path, failing: frozenset[str] = frozenset()):
        self.root = tmp / "root"
        self.layout = Layout(self.root)
        (self.layout.release("0.1.0") / "venv/bin").mkdir(parents=True)
        (self.layout.release("0.1.0") / COMPLETE).write_text("0.1.0\n")
        self.layout.point("current", "0.1.0")
        trust(self.root)
        self.data = self.root / "var/lib/pendock"
        self.data.mkdir(parents=True)
        self.record = self.data / "pendock.db"
        with sqlite3.connect(self.record) as db:
            db.execute("CREATE TABLE sessions (id INTEGER PRIMARY KEY, client TEXT)")
            db.execute("INSERT INTO sessions (client) VALUES ('Ada')")
        db.close()
        self.failing = failing
        self.busy: str | None = None
        self.calls: list[list[str]] = []
        self.said: list[str] = []
        self.machine = Machine(
            layout=self.layout, record_file=self.record, backup_dir=self.data / "backups",
            systemctl=self.systemctl, health=self.health, backup_record=self.backup,
            build_venv=self.build_venv, busy=lambda: self.busy, now=lambda: datetime(2026, 12, 8, 4, 0, tzinfo=timezone.utc),
            say=self.said.append)

    def systemctl(self, args: list[str]) -> None:
        self.calls.append(list(args))
        if args[0] in ("restart", "start"):
            # the release that starts migrates the record (as a schema change would)
            with sqlite3.connect(self.record) as db:
                db.execute(f"CREATE TABLE IF NOT EXISTS migrated_by_{self.layout.running().replace('.', '_')} (x)")
            db.close()

    def health(self) -> list[str]:
        running = self.layout.running()
        return [f"daemon not ready: release {running} exits at start"] if running in self.failing else []

    def backup(self, path: Path) -> None:
        source, target = sqlite3.connect(self.record), sqlite3.connect(path)
        source.backup(target)
        source.close()
        target.close()

    def build_venv(self, venv: Path, wheels: Path, requirement: str) -> None:
        (venv / "bin").mkdir(parents=True)
        (venv / "bin/pendock").write_text(f"{requirement} from {sorted(p.name for p in wheels.iterdir())}\n")

    def tables(self) -> set[str]:
        with sqlite3.connect(self.record) as db:
            names = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        db.close()
        return names

    def snapshot(self) -> dict[str, str]:
        seen = {}
        for path in sorted(self.root.rglob("*")):
            key = str(path.relative_to(self.root))
            if path.is_symlink():
                seen[key] = "-> " + os.readlink(path)
            elif path.is_file():
                seen[key] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                seen[key] = "dir"
        return seen


def test_a_good_bundle_becomes_the_running_release_and_the_old_one_is_kept(tmp_path):
    dock = Dock(tmp_path)
    outcome = upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    assert outcome.ok and not outcome.rolled_back
    assert version_info(dock.layout, "x") == {"running": "0.2.0", "previous": "0.1.0",
                                             "releases": ["0.1.0", "0.2.0"], "layout": "releases"}
    assert os.readlink(dock.layout.link("current")) == "releases/0.2.0"
    assert "pen-dock==0.2.0" in (dock.layout.release("0.2.0") / "venv/bin/pendock").read_text()
    assert dock.calls == [["restart", "pendock.service", "pendock-web.service"]]
    backup = Path(outcome.backup)
    assert backup.parent == dock.data / "backups"
    with sqlite3.connect(backup) as db:  # taken before the switch: the old release's record
        assert db.execute("SELECT client FROM sessions").fetchall() == [("Ada",)]
        assert not db.execute("SELECT name FROM sqlite_master WHERE name LIKE 'migrated%'").fetchall()
    db.close()


def test_a_release_that_fails_its_health_check_is_rolled_back_with_its_record(tmp_path):
    dock = Dock(tmp_path, failing=frozenset({"0.2.0"}))
    outcome = upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    assert not outcome.ok and outcome.rolled_back
    assert outcome.running == "0.1.0" and outcome.previous is None
    assert "exits at start" in outcome.problems[0]
    assert dock.layout.running() == "0.1.0" and dock.layout.previous() is None
    assert dock.calls == [["restart", "pendock.service", "pendock-web.service"],
                          ["stop", "pendock.service", "pendock-web.service"],
                          ["start", "pendock.service", "pendock-web.service"]]
    # the failed release's migration is gone: the record is the backup's, then the old
    # release started on it
    assert "migrated_by_0_2_0" not in dock.tables()
    assert "migrated_by_0_1_0" in dock.tables()


def test_an_upgrade_after_a_failed_one_keeps_the_last_good_release_for_rollback(tmp_path):
    dock = Dock(tmp_path, failing=frozenset({"0.2.0"}))
    upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    outcome = upgrade(make_bundle(tmp_path, "0.2.1"), dock.machine)
    assert outcome.ok
    assert (dock.layout.running(), dock.layout.previous()) == ("0.2.1", "0.1.0")
    assert dock.layout.installed() == ["0.1.0", "0.2.1"]  # the failed 0.2.0 pruned


def test_rollback_by_hand_goes_back_and_keeps_the_record(tmp_path):
    dock = Dock(tmp_path)
    upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    outcome = rollback(dock.machine)
    assert outcome.ok and (outcome.running, outcome.previous) == ("0.1.0", "0.2.0")
    assert (dock.layout.running(), dock.layout.previous()) == ("0.1.0", "0.2.0")
    assert "migrated_by_0_2_0" in dock.tables()  # days of sessions may be in it: kept
    assert dock.calls[-1] == ["restart", "pendock.service", "pendock-web.service"]


def test_rollback_without_a_previous_release_is_refused_and_changes_nothing(tmp_path):
    dock = Dock(tmp_path)
    before = dock.snapshot()
    with pytest.raises(BundleRefused, match="no previous release"):
        rollback(dock.machine)
    assert dock.snapshot() == before and dock.calls == []


def _unsigned(tmp: Path) -> Path:
    signed = make_bundle(tmp, "0.2.0")
    target = tmp / "unsigned.bundle"
    with tarfile.open(signed) as source, tarfile.open(target, "w:", format=tarfile.USTAR_FORMAT) as out:
        for member in source.getmembers():
            if member.name != bundles.SIGNATURE:
                out.addfile(member, source.extractfile(member))
    return target


def _foreign(tmp: Path) -> Path:
    return make_bundle(tmp, "0.2.0", key=Ed25519PrivateKey.generate())


def _flipped(tmp: Path, where: str) -> Path:
    path = make_bundle(tmp, "0.2.0")
    data = bytearray(path.read_bytes())
    with tarfile.open(path) as tar:
        member = tar.getmember(where)
    data[member.offset_data + member.size // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return path


def _resigned_with_extra_file(tmp: Path) -> Path:
    path = make_bundle(tmp, "0.2.0")
    with tarfile.open(path, "a:") as tar:
        info = tarfile.TarInfo("wheels/evil-1.0-py3-none-any.whl")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    return path


REFUSED = {
    "unsigned": (_unsigned, "unsigned"),
    "foreign key": (_foreign, "matches no key"),
    "corrupted wheel byte": (lambda tmp: _flipped(tmp, "wheels/flask-3.0.0-py3-none-any.whl"), "SHA-256"),
    "corrupted manifest byte": (lambda tmp: _flipped(tmp, bundles.MANIFEST), "matches no key"),
    "corrupted signature byte": (lambda tmp: _flipped(tmp, bundles.SIGNATURE), "matches no key"),
    "file not in the manifest": (_resigned_with_extra_file, "does not name"),
    "older version": (lambda tmp: make_bundle(tmp, "0.0.9"), "--allow-downgrade"),
    "same version": (lambda tmp: make_bundle(tmp, "0.1.0"), "running release already"),
    "not a bundle": (lambda tmp: (tmp / "junk.bundle").write_bytes(b"hello") and tmp / "junk.bundle",
                     "not a readable bundle"),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_a_refused_bundle_changes_nothing(tmp_path, case):
    make, reason = REFUSED[case]
    dock = Dock(tmp_path)
    bundle = make(tmp_path)
    before = dock.snapshot()
    with pytest.raises(BundleRefused, match=reason):
        upgrade(bundle, dock.machine)
    assert dock.snapshot() == before
    assert dock.calls == []


def test_any_flipped_byte_anywhere_in_the_file_refuses_it(tmp_path):
    keys = tmp_path / "root/etc/pendock/release-keys"
    trust(tmp_path / "root")
    good = make_bundle(tmp_path, "0.2.0").read_bytes()
    bundles.verify(tmp_path / "dist/pendock-0.2.0.bundle", keys)  # the unflipped one passes
    flipped = tmp_path / "flipped.bundle"
    for offset in range(0, len(good), 97):  # headers, data, padding and the end blocks
        data = bytearray(good)
        data[offset] ^= 0x20
        flipped.write_bytes(bytes(data))
        with pytest.raises(BundleRefused):
            bundles.verify(flipped, keys)


def test_an_older_bundle_installs_with_allow_downgrade(tmp_path):
    dock = Dock(tmp_path)
    outcome = upgrade(make_bundle(tmp_path, "0.0.9"), dock.machine, allow_downgrade=True)
    assert outcome.ok and (dock.layout.running(), dock.layout.previous()) == ("0.0.9", "0.1.0")


def test_a_release_that_will_not_install_changes_nothing(tmp_path):
    dock = Dock(tmp_path)

    def broken_pip(venv, wheels, requirement):
        raise OSError("pip: no matching distribution")

    dock.machine.build_venv = broken_pip
    before = dock.snapshot()
    with pytest.raises(BundleRefused, match="could not be installed"):
        upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    assert dock.snapshot() == before and dock.calls == []


def test_no_trusted_key_refuses_every_bundle(tmp_path):
    dock = Dock(tmp_path)
    (dock.root / "etc/pendock/release-keys/maker.pem").unlink()
    with pytest.raises(BundleRefused, match="no release keys"):
        upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)


def test_cli_version_and_a_refused_upgrade(tmp_path, capsys):
    dock = Dock(tmp_path)
    assert cli.main(["version", "--root", str(dock.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["running"] == "0.1.0"
    foreign = _foreign(tmp_path)
    before = dock.snapshot()
    assert cli.main(["upgrade", str(foreign), "--root", str(dock.root)]) == 1
    assert "Refused: the signature matches no key" in capsys.readouterr().err
    assert dock.snapshot() == before
    assert cli.main(["upgrade", "--root", str(dock.root)]) == 2  # neither BUNDLE nor --rollback


def test_cli_version_on_a_dock_installed_before_releases(tmp_path, capsys):
    from appliance import __version__

    assert cli.main(["version", "--root", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"running": __version__, "previous": None,
                                                   "releases": [], "layout": "single-venv"}


def test_an_open_session_refuses_upgrade_and_rollback_and_changes_nothing(tmp_path):
    dock = Dock(tmp_path)
    upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    dock.calls.clear()
    dock.busy = "a session is open (restarting the daemon would interrupt it)"
    before = dock.snapshot()
    with pytest.raises(BundleRefused, match="a session is open"):
        upgrade(make_bundle(tmp_path, "0.3.0"), dock.machine)
    with pytest.raises(BundleRefused, match="a session is open"):
        rollback(dock.machine)
    assert dock.snapshot() == before and dock.calls == []


def test_a_systemctl_that_fails_counts_as_a_failed_check_and_rolls_back(tmp_path):
    dock = Dock(tmp_path)
    plain = dock.systemctl

    def failing_restart(args):
        plain(args)
        if args[0] == "restart":
            raise OSError("Job for pendock.service failed")

    dock.machine.systemctl = failing_restart
    outcome = upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    assert outcome.rolled_back and "systemctl restart failed" in outcome.problems[0]
    assert dock.layout.running() == "0.1.0"


def test_a_power_cut_while_installing_leaves_the_running_release_and_the_next_upgrade_cleans_up(tmp_path):
    dock = Dock(tmp_path)

    def cut(venv, wheels, requirement):
        (venv / "bin").mkdir(parents=True)
        raise KeyboardInterrupt  # stands for the power going: no clean-up code runs after it

    dock.machine.build_venv = cut
    with pytest.raises(KeyboardInterrupt):
        upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    assert dock.layout.running() == "0.1.0" and dock.layout.installed() == ["0.1.0"]  # half a release is no release
    dock.machine.build_venv = dock.build_venv
    assert upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine).ok
    assert dock.layout.installed() == ["0.1.0", "0.2.0"]


def test_the_real_health_probe_waits_for_ready_then_needs_selftest_and_healthz(tmp_path):
    import http.server
    import threading

    from appliance.release.machine import health_probe

    class Client:
        answers = ["not yet", "ok"]
        selftest = [{"part": "latch", "ok": True, "seen": "held"}]

        def call(self, verb, **_):
            if verb == "status":
                if self.answers.pop(0) != "ok":
                    raise OSError("connection refused")
                Client.answers = ["ok"]
                return {}
            return self.selftest

    class Healthz(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/healthz" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Healthz)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/healthz"
    naps: list[float] = []
    try:
        assert health_probe(Client, url, sleep=naps.append)() == []
        assert naps == [2.0]  # once not ready, then ready
        Client.selftest = [{"part": "latch", "ok": False, "seen": "no movement"}]
        clock = iter([0.0, 100.0])
        assert health_probe(Client, url, timeout_s=10, sleep=naps.append, monotonic=lambda: next(clock))() == \
            ["self-test FAIL latch: no movement"]
        Client.selftest = [{"part": "latch", "ok": True, "seen": "held"}]
        clock = iter([0.0, 100.0])
        problems = health_probe(Client, url.replace("healthz", "nothing"), timeout_s=10, sleep=naps.append,
                                monotonic=lambda: next(clock))()
        assert problems and "did not answer" in problems[0]
    finally:
        server.shutdown()
        server.server_close()


def tiny_wheel(folder: Path, version: str, script: str | None = None) -> Path:
    """A real (if tiny) pen-dock wheel pip accepts: METADATA, WHEEL, RECORD, one module;
    with `script`, a `pendock` command that runs it (`pendock_tiny:main`)."""
    import base64
    import zipfile

    folder.mkdir(parents=True, exist_ok=True)
    info = f"pen_dock-{version}.dist-info"
    files = {
        "pendock_tiny.py": f"VERSION = {version!r}\n\n\ndef main():\n    {script or 'pass'}\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: pen-dock\nVersion: {version}\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    if script:
        files[f"{info}/entry_points.txt"] = "[console_scripts]\npendock = pendock_tiny:main\n"
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join(record + [f"{info}/RECORD,,"]) + "\n"
    path = folder / f"pen_dock-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as wheel:
        for name, text in files.items():
            wheel.writestr(name, text)
    return path


@pytest.mark.process  # python -m venv and pip: about 30 s here
def test_the_release_venv_is_built_from_the_bundles_wheels_only(tmp_path):
    import subprocess

    from appliance.release.upgrade import offline_venv

    dock = Dock(tmp_path)
    dock.machine.build_venv = offline_venv  # the real one: python -m venv, pip --no-index
    bundle = build_bundle([tiny_wheel(tmp_path / "w", "0.2.0")], MAKER, tmp_path / "dist")
    assert upgrade(bundle, dock.machine).ok
    python = dock.root / "opt/pendock/current/venv/bin/python"
    shown = subprocess.run([str(python), "-c", "import pendock_tiny; print(pendock_tiny.VERSION)"],
                           capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "0.2.0"


def test_a_second_upgrade_while_one_runs_is_refused(tmp_path):
    import fcntl

    dock = Dock(tmp_path)
    bundle = make_bundle(tmp_path, "0.2.0")
    fd = os.open(dock.layout.app, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # the first upgrade, mid-way
        before = dock.snapshot()
        with pytest.raises(BundleRefused, match="another upgrade"):
            upgrade(bundle, dock.machine)
        with pytest.raises(BundleRefused, match="another upgrade"):
            rollback(dock.machine)
        assert dock.snapshot() == before and dock.calls == []
    finally:
        os.close(fd)
    assert upgrade(bundle, dock.machine).ok


def _cut_at_restart(dock: Dock) -> None:
    plain = dock.systemctl

    def power_goes(args):
        plain(args)
        if args[0] == "restart":
            raise KeyboardInterrupt  # the power went as the units restarted: nothing after it ran

    dock.machine.systemctl = power_goes
    with pytest.raises(KeyboardInterrupt):
        upgrade(make_bundle(dock.root.parent, "0.2.0"), dock.machine)
    dock.machine.systemctl = dock.systemctl
    assert Pending.load(dock.layout) is not None and dock.layout.running() == "0.2.0"


def test_after_a_cut_mid_upgrade_finish_at_boot_rolls_back_a_release_that_fails(tmp_path):
    dock = Dock(tmp_path, failing=frozenset({"0.2.0"}))
    _cut_at_restart(dock)
    outcome = finish(dock.machine)  # the boot: the units started the new release
    assert outcome is not None and outcome.rolled_back
    assert (dock.layout.running(), dock.layout.previous()) == ("0.1.0", None)
    assert "migrated_by_0_2_0" not in dock.tables()  # the record put back too
    assert Pending.load(dock.layout) is None
    assert finish(dock.machine) is None  # done once


def test_after_a_cut_mid_upgrade_finish_at_boot_keeps_a_healthy_release(tmp_path):
    dock = Dock(tmp_path)
    _cut_at_restart(dock)
    outcome = finish(dock.machine)
    assert outcome is not None and outcome.ok and not outcome.rolled_back
    assert (dock.layout.running(), dock.layout.previous()) == ("0.2.0", "0.1.0")
    assert "migrated_by_0_2_0" in dock.tables() and Pending.load(dock.layout) is None


def test_a_cut_between_the_two_links_keeps_the_old_release(tmp_path, monkeypatch):
    dock = Dock(tmp_path)
    plain_point = Layout.point

    def cut_before_current(layout, name, version):
        if name == "current":
            raise KeyboardInterrupt
        plain_point(layout, name, version)

    monkeypatch.setattr(Layout, "point", cut_before_current)
    with pytest.raises(KeyboardInterrupt):
        upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    monkeypatch.setattr(Layout, "point", plain_point)
    assert dock.layout.running() == "0.1.0"
    outcome = finish(dock.machine)
    assert outcome is not None and outcome.running == "0.1.0" and "cut before the switch" in outcome.problems[0]
    assert dock.layout.previous() is None and Pending.load(dock.layout) is None
    assert upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine).ok  # and the next try goes through


def test_finish_with_nothing_pending_changes_nothing(tmp_path, capsys):
    dock = Dock(tmp_path)
    before = dock.snapshot()
    assert finish(dock.machine) is None
    assert dock.snapshot() == before and dock.calls == []
    assert cli.main(["upgrade", "--finish", "--root", str(dock.root)]) == 0
    assert "No upgrade was pending" in capsys.readouterr().out


@pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root (CI runs as root)")
def test_the_record_put_back_and_the_backup_folder_belong_to_the_daemons_user(tmp_path):
    dock = Dock(tmp_path, failing=frozenset({"0.2.0"}))
    os.chown(dock.data, 4321, 4321)
    os.chown(dock.record, 4321, 4321)
    os.chmod(dock.record, 0o640)
    outcome = upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    assert outcome.rolled_back
    shown = dock.record.stat()
    assert (shown.st_uid, shown.st_gid, shown.st_mode & 0o777) == (4321, 4321, 0o640)
    folder = (dock.data / "backups").stat()
    assert (folder.st_uid, folder.st_gid) == (4321, 4321)


def test_a_session_begun_while_the_release_installed_refuses_before_the_switch(tmp_path):
    dock = Dock(tmp_path)
    plain = dock.build_venv

    def slow_install(venv, wheels, requirement):
        plain(venv, wheels, requirement)
        dock.busy = "a session is open (restarting the daemon would interrupt it)"  # begun meanwhile

    dock.machine.build_venv = slow_install
    before = dock.snapshot()
    with pytest.raises(BundleRefused, match="a session is open"):
        upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    assert dock.snapshot() == before and dock.calls == []


def test_a_release_is_readable_by_the_daemons_user_whatever_roots_umask(tmp_path):
    dock = Dock(tmp_path)
    bundle = make_bundle(tmp_path, "0.2.0")
    umask = os.umask(0o077)  # as `sudo` may pass on
    try:
        assert upgrade(bundle, dock.machine).ok
    finally:
        os.umask(umask)
    release = dock.layout.release("0.2.0")
    for path in (release, release / "wheels", release / "wheels/flask-3.0.0-py3-none-any.whl",
                 release / "venv/bin/pendock"):
        assert path.stat().st_mode & 0o005 == (0o005 if path.is_dir() else 0o004), path


def test_a_record_that_cannot_be_backed_up_refuses_and_changes_nothing(tmp_path):
    dock = Dock(tmp_path)

    def daemon_refuses(path):
        raise RuntimeError("backup integrity: database disk image is malformed")

    dock.machine.backup_record = daemon_refuses
    before = dock.snapshot()
    with pytest.raises(BundleRefused, match="could not be backed up"):
        upgrade(make_bundle(tmp_path, "0.2.0"), dock.machine)
    assert dock.snapshot() == before and dock.calls == []
