"""hw/install.sh writes every file durably: a power cut right after it says "Installed."
leaves every installed file whole (issue: units cut to 0 bytes were "masked", the dock
never started). The scratch root lives on the power-cut filesystem
(tests/support/powercut_fs.py), which forgets at the cut whatever was not fsynced; the
booted image's test (tests/bootimage) cuts a real guest's power the same way."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.powercut import PowerCutDisk, fuse_unavailable

REPO = Path(__file__).resolve().parents[2]
UNITS = ("pendock.service", "pendock-web.service", "pendock-backup.service", "pendock-backup.timer")
BOOT_CONFIG = "# stock Raspberry Pi OS lines\ndtparam=audio=on\n"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the installer runs as root (chown); CI runs as root"),
    pytest.mark.skipif(fuse_unavailable() is not None, reason=str(fuse_unavailable())),
]


def write_synced(disk: Path, path: Path, text: str) -> None:
    """A file that was on the disk before the installer ran (the image's own)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as out:
        out.write(text)
        out.flush()
        os.fsync(out.fileno())
    for folder in [path.parent, *path.parent.parents]:
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        if folder == disk:
            break


def scratch_root_on(disk: Path) -> Path:
    """A machine whose accounts exist already (a re-install: the shadow tools' lock files
    need link(), which the power-cut filesystem does not model) and a Pi's boot config."""
    root = disk / "root"
    write_synced(disk, root / "etc" / "passwd", "root:x:0:0:root:/root:/bin/bash\n"
                 "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
                 "pendock:x:998:998:Pen dock daemon:/nonexistent:/usr/sbin/nologin\n"
                 "pendock-web:x:997:997:Pen dock page:/nonexistent:/usr/sbin/nologin\n")
    write_synced(disk, root / "etc" / "group", "root:x:0:\nalice:x:1000:\ngpio:x:996:pendock\nspi:x:995:pendock\n"
                 "pendock:x:998:pendock-web\npendock-web:x:997:\npendock-tech:x:994:alice\n")
    write_synced(disk, root / "etc" / "shadow", "root:*:19000:0:99999:7:::\n")
    write_synced(disk, root / "etc" / "gshadow", "root:*::\n")
    write_synced(disk, root / "boot" / "firmware" / "config.txt", BOOT_CONFIG)
    return root


def test_a_power_cut_right_after_the_installer_leaves_every_file_whole(tmp_path):
    disk = PowerCutDisk(tmp_path / "disk", tmp_path / "surviving.pickle")
    disk.boot()
    try:
        root = scratch_root_on(disk.mountpoint)
        done = subprocess.run(["bash", str(REPO / "hw" / "install.sh"), "--root", str(root), "--no-venv",
                               "--tech", "alice"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout.rstrip().endswith("Installed."), done.stdout
        disk.cut()
        disk.boot()  # the next boot: what the disk kept
        units = root / "etc" / "systemd" / "system"
        for unit in UNITS:
            assert (units / unit).read_bytes() == (REPO / "systemd" / unit).read_bytes(), unit
        assert b"RuntimeWatchdogSec=14s" in (root / "etc/systemd/system.conf.d/pendock-watchdog.conf").read_bytes()
        assert (root / "etc/pendock/pendock.toml").read_bytes() == (REPO / "appliance/core/pendock.toml").read_bytes()
        assert b"/opt/pendock/venv/bin/pendock" in (root / "usr/local/bin/pendock").read_bytes()
        config = (root / "boot/firmware/config.txt").read_text()
        assert config.startswith(BOOT_CONFIG) and "dtparam=watchdog=on" in config
        assert (root / "var/lib/pendock/backups").is_dir()
        assert not list(root.rglob(".*.pendock-new"))  # no temporary file left behind
    finally:
        disk.close()
        shutil.rmtree(tmp_path / "disk", ignore_errors=True)
