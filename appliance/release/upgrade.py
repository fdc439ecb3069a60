"""`pendock upgrade BUNDLE` and `pendock upgrade --rollback`: switch releases, check, go back.

An upgrade: verify the bundle (refused: nothing changed), install it as releases/<V>
with its own venv from the bundle's wheels only, back the record up through the daemon
(the `pendock backup` path), point `previous` at the running release and `current` at the
new one, restart the units, check health. A failed check stops the units, puts the
record back from that backup, points `current` back and starts the old release again.
The pen stays held throughout: the latch holds when de-energised, so a stopped or
restarting daemon holds it, and a starting daemon holds it until its rules free it.
Everything that touches the machine is a field of `Machine`, so tests drive it in a
scratch root with a fake systemctl and health probe.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterator

from appliance.release import bundle as bundles
from appliance.release.bundle import BundleRefused
from appliance.release.slots import COMPLETE, Layout

UNITS = ("pendock.service", "pendock-web.service")


@dataclass
class Machine:
    """What an upgrade touches, injected: the real one is `real_machine`."""
    layout: Layout
    record_file: Path                         # the daemon's SQLite file (data dir / pendock.db)
    backup_dir: Path                          # where the pre-upgrade backups go
    systemctl: Callable[[list[str]], None]    # e.g. ["restart", *UNITS]
    health: Callable[[], list[str]]           # problems seen; [] = healthy
    backup_record: Callable[[Path], None]     # the daemon's `backup` verb into that file
    build_venv: Callable[[Path, Path, str], None]  # (venv dir, wheels dir, requirement)
    busy: Callable[[], str | None]            # why the units may not restart now, or None
    now: Callable[[], datetime]
    say: Callable[[str], None] = field(default=lambda text: None)


@dataclass
class Outcome:
    ok: bool
    running: str
    previous: str | None
    attempted: str
    problems: list[str] = field(default_factory=list)
    rolled_back: bool = False
    backup: str | None = None

    def as_dict(self) -> dict:
        return {"ok": self.ok, "running": self.running, "previous": self.previous,
                "attempted": self.attempted, "rolled_back": self.rolled_back,
                "problems": self.problems, "backup": self.backup}


def version_info(layout: Layout, program_version: str) -> dict:
    """`pendock version`: the running release, the one kept for rollback, all installed."""
    running = layout.running()
    return {"running": running or program_version, "previous": layout.previous(),
            "releases": layout.installed(), "layout": "releases" if running else "single-venv"}


def upgrade(bundle: Path, machine: Machine, allow_downgrade: bool = False) -> Outcome:
    with _one_at_a_time(machine.layout):
        return _upgrade(bundle, machine, allow_downgrade)


def rollback(machine: Machine) -> Outcome:
    """Back to `previous` by hand; the record stays as it is (days may be in it)."""
    with _one_at_a_time(machine.layout):
        return _rollback(machine)


@contextmanager
def _one_at_a_time(layout: Layout) -> Iterator[None]:
    """An exclusive flock on /opt/pendock itself (no lock file: a refusal leaves nothing)."""
    try:
        fd = os.open(layout.app, os.O_RDONLY | os.O_DIRECTORY)
    except FileNotFoundError:
        raise BundleRefused(f"{layout.app} does not exist: install pen-dock with hw/install.sh first") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BundleRefused("another upgrade or rollback is running: wait for it to finish") from None
        yield
    finally:
        os.close(fd)


def _upgrade(bundle: Path, machine: Machine, allow_downgrade: bool) -> Outcome:
    layout = machine.layout
    manifest = bundles.verify(bundle, layout.keys_dir)
    running = _running_release(layout)
    new = manifest.version
    if bundles.version_key(new) == bundles.version_key(running):
        raise BundleRefused(f"release {new} is the running release already: nothing to do")
    if bundles.version_key(new) < bundles.version_key(running) and not allow_downgrade:
        raise BundleRefused(f"release {new} is older than the running {running}: give "
                            f"--allow-downgrade to install it anyway (or use --rollback)")
    _not_busy(machine)
    machine.say(f"Bundle {bundle.name}: release {new}, signed by {manifest.signed_by}, every hash checked.")
    _install_release(bundle, manifest, machine)
    try:
        _not_busy(machine)  # again: the install took a while, and a session may have begun
    except BundleRefused:
        layout.remove_release(new)
        raise
    backup = machine.backup_dir / f"pre-upgrade-{running}-to-{new}-{machine.now():%Y%m%dT%H%M%S}.db"
    made_folder = not machine.backup_dir.is_dir()
    try:
        _backup_folder(machine.backup_dir)
        machine.backup_record(backup)
    except Exception as error:
        layout.remove_release(new)
        if made_folder:
            shutil.rmtree(machine.backup_dir, ignore_errors=True)
        raise BundleRefused(f"the record could not be backed up ({error}): nothing changed; "
                            f"check the daemon (`pendock status`) and try again") from None
    machine.say(f"Record backed up to {backup}.")
    pending = Pending(running, new, str(backup), layout.previous())
    pending.save(layout)  # until the check is done: `upgrade --finish` at boot completes it after a cut
    layout.point("previous", running)
    layout.point("current", new)
    machine.say(f"Switched to {new}; restarting {' '.join(UNITS)} (the pen is held meanwhile).")
    return _check_or_go_back(machine, pending, _restart(machine, "restart"))


def finish(machine: Machine) -> Outcome | None:
    """After a boot: an upgrade a power cut interrupted is checked and kept or rolled back
    (release and record); None when no upgrade was pending."""
    with _one_at_a_time(machine.layout):
        layout = machine.layout
        pending = Pending.load(layout)
        if pending is None:
            return None
        if layout.running() == pending.new:
            return _check_or_go_back(machine, pending, machine.health())
        # the cut came before the switch (or after a rollback's): the old release runs on
        # a record the new one never opened (a rollback restores the record before it switches)
        layout.point("previous", pending.before_previous)
        Pending.clear(layout)
        return Outcome(True, layout.running() or pending.old, pending.before_previous, pending.new,
                       ["the upgrade was cut before the switch: the old release was kept"])


def _check_or_go_back(machine: Machine, pending: Pending, problems: list[str]) -> Outcome:
    layout = machine.layout
    if not problems:
        layout.prune()
        Pending.clear(layout)
        return Outcome(True, pending.new, pending.old, pending.new, backup=pending.backup)
    machine.say(f"Release {pending.new} failed its health check ({'; '.join(problems)}): "
                f"rolling back to {pending.old}.")
    _restart(machine, "stop")
    _put_record_back(Path(pending.backup), machine.record_file)
    layout.point("current", pending.old)
    layout.point("previous", pending.before_previous)
    Pending.clear(layout)
    after = _restart(machine, "start")
    return Outcome(False, pending.old, pending.before_previous, pending.new,
                   problems + [f"after rollback: {p}" for p in after], rolled_back=True, backup=pending.backup)


@dataclass(frozen=True)
class Pending:
    """An upgrade switched but not yet checked: /opt/pendock/upgrade-pending.json."""
    old: str
    new: str
    backup: str
    before_previous: str | None

    @staticmethod
    def path(layout: Layout) -> Path:
        return layout.app / "upgrade-pending.json"

    def save(self, layout: Layout) -> None:
        part = self.path(layout).with_suffix(".part")
        with open(part, "w", encoding="utf-8") as handle:
            json.dump(self.__dict__, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(part, self.path(layout))

    @classmethod
    def load(cls, layout: Layout) -> Pending | None:
        try:
            return cls(**json.loads(cls.path(layout).read_text(encoding="utf-8")))
        except FileNotFoundError:
            return None

    @classmethod
    def clear(cls, layout: Layout) -> None:
        cls.path(layout).unlink(missing_ok=True)


def _rollback(machine: Machine) -> Outcome:
    layout = machine.layout
    running = _running_release(layout)
    previous = layout.previous()
    if previous is None or not layout.complete(previous):
        raise BundleRefused(f"no previous release to go back to (running {running}): nothing changed")
    _not_busy(machine)
    layout.point("current", previous)
    layout.point("previous", running)
    machine.say(f"Switched back to {previous}; restarting {' '.join(UNITS)} (the pen is held meanwhile).")
    problems = _restart(machine, "restart")
    return Outcome(not problems, previous, running, previous, problems)


def _not_busy(machine: Machine) -> None:
    reason = machine.busy()
    if reason:
        raise BundleRefused(f"{reason}: nothing changed; upgrade once it ends")


def _restart(machine: Machine, action: str) -> list[str]:
    """systemctl ACTION on both units, then (unless stopping) the health check's problems;
    a systemctl that fails is a failed check, so it rolls back too."""
    try:
        machine.systemctl([action, *UNITS])
    except Exception as error:
        return [f"systemctl {action} failed: {error}"]
    return [] if action == "stop" else machine.health()


def _running_release(layout: Layout) -> str:
    running = layout.running()
    if running is None:
        raise BundleRefused(f"{layout.link('current')} is missing: this dock was installed before "
                            f"releases (a single /opt/pendock/venv); reinstall with hw/install.sh "
                            f"as README, Updates, says, then upgrade")
    return running


def _install_release(bundle: Path, manifest: bundles.Manifest, machine: Machine) -> None:
    """releases/<V> with its wheels, manifest and venv; `.complete` last. Built in place
    (a venv cannot move), so a leftover of the same version is removed first."""
    layout = machine.layout
    target = layout.release(manifest.version)
    layout.remove_release(manifest.version)
    # Everyone may read and run a release (the daemon runs as its own user), whatever
    # umask root's shell had (sudo may pass on 0077).
    umask = os.umask(0o022)
    try:
        _unpack_and_build(bundle, manifest, machine, target)
    finally:
        os.umask(umask)
    (target / COMPLETE).write_text(f"{manifest.version}\n")
    machine.say(f"Installed release {manifest.version} in {target}.")


def _unpack_and_build(bundle: Path, manifest: bundles.Manifest, machine: Machine, target: Path) -> None:
    layout = machine.layout
    try:
        bundles.extract_wheels(bundle, manifest, target / "wheels")
        machine.build_venv(target / "venv", target / "wheels", f"pen-dock=={manifest.version}")
    except BundleRefused:
        layout.remove_release(manifest.version)
        raise
    except Exception as error:
        layout.remove_release(manifest.version)
        raise BundleRefused(f"release {manifest.version} could not be installed ({error}): nothing changed") from None


def _backup_folder(folder: Path) -> None:
    """The folder the daemon writes the backup into: made, if missing, with the data
    folder's owner and group (the daemon's user), as the backup unit would make it."""
    if folder.is_dir():
        return
    folder.mkdir(mode=0o750, parents=True)
    owner = folder.parent.stat()
    os.chown(folder, owner.st_uid, owner.st_gid)


def _put_record_back(backup: Path, record: Path) -> None:
    """The pre-upgrade copy over the record, by rename; its -wal/-shm belong to the new one."""
    fresh = record.with_name(record.name + ".rollback")
    shutil.copyfile(backup, fresh)
    owner = record.stat() if record.exists() else record.parent.stat()
    os.chown(fresh, owner.st_uid, owner.st_gid)  # the daemon's user, not root who runs upgrade
    os.chmod(fresh, owner.st_mode & 0o666 if record.exists() else 0o640)
    with open(fresh, "rb") as handle:
        os.fsync(handle.fileno())
    for suffix in ("-wal", "-shm"):
        Path(str(record) + suffix).unlink(missing_ok=True)
    os.replace(fresh, record)


def offline_venv(venv: Path, wheels: Path, requirement: str) -> None:
    """A venv from the bundle's wheels only (no index): what the installer builds, per release."""
    subprocess.run([sys.executable, "-P", "-m", "venv", "--system-site-packages", str(venv)], check=True)
    subprocess.run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check",
                    "--no-index", "--find-links", str(wheels), requirement], check=True)
