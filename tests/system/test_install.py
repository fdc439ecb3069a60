"""hw/install.sh against a scratch root: accounts, folders, units, boot lines, upgrade, uninstall.

The installer runs for real (useradd/groupadd --root), so these tests need root; CI runs
them as root. Each test gets its own copy of the installer's inputs (script, units, sshd
drop-in, a default config) so a change elsewhere in the tree cannot make them flaky.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
UNITS = ("pendock.service", "pendock-web.service", "pendock-backup.service", "pendock-backup.timer")
SHADOW_TOOLS = ("useradd", "groupadd", "usermod", "userdel", "groupdel", "gpasswd")
STOCK_BOOT_CONFIG = "# stock Raspberry Pi OS lines\ndtparam=audio=on\n[pi4]\narm_boost=1\n"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="useradd --root needs root; run as root (CI does)"),
    pytest.mark.skipif(
        not all(shutil.which(tool) for tool in SHADOW_TOOLS),
        reason="needs the shadow tools (useradd, groupadd, usermod, userdel, groupdel, gpasswd): apt install passwd",
    ),
    pytest.mark.skipif(shutil.which("bash") is None, reason="the installer is a bash script"),
]


# --- fixtures: the installer's inputs and a scratch root ---------------------------------


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A copy of what the installer reads from the repository, with a marked default config."""
    src = tmp_path / "src"
    (src / "hw").mkdir(parents=True)
    (src / "systemd").mkdir()
    (src / "appliance" / "core").mkdir(parents=True)
    shutil.copy2(REPO / "hw" / "install.sh", src / "hw" / "install.sh")
    for name in ("sshd_pendock.conf", "chrony-pendock.conf", "pendock-chronyc.conf", "tls-setup.sh"):
        shutil.copy2(REPO / "hw" / name, src / "hw" / name)
    for unit in UNITS:
        shutil.copy2(REPO / "systemd" / unit, src / "systemd" / unit)
    (src / "appliance" / "core" / "pendock.toml").write_text("# default config from the source tree\n[web]\nport = 8080\n")
    return src


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A scratch root with minimal account files, one ordinary user (alice), and a boot config."""
    scratch = tmp_path / "root"
    etc = scratch / "etc"
    etc.mkdir(parents=True)
    (etc / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\n")
    (etc / "group").write_text("root:x:0:\nalice:x:1000:\n")
    (etc / "shadow").write_text("root:*:19000:0:99999:7:::\nalice:*:19000:0:99999:7:::\n")
    (etc / "gshadow").write_text("root:*::\nalice:!::\n")
    for name in ("shadow", "gshadow"):
        (etc / name).chmod(0o640)
    boot = scratch / "boot" / "firmware"
    boot.mkdir(parents=True)
    (boot / "config.txt").write_text(STOCK_BOOT_CONFIG)
    return scratch


# --- helpers ------------------------------------------------------------------------------


def install(source: Path, root: Path, *args: str, expect: int = 0) -> str:
    """Run the installer into root; returns its output, failing with it when the status is off."""
    done = subprocess.run(
        ["bash", str(source / "hw" / "install.sh"), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    output = done.stdout + done.stderr
    assert done.returncode == expect, f"install.sh {' '.join(args)} exited {done.returncode}:\n{output}"
    return output


def accounts(root: Path, name: str) -> dict[str, list[str]]:
    """etc/passwd or etc/group of the scratch root as name -> fields."""
    lines = (root / "etc" / name).read_text().splitlines()
    return {fields[0]: fields for fields in (line.split(":") for line in lines if line)}


def members(root: Path, group: str) -> set[str]:
    field = accounts(root, "group")[group][3]
    return set(field.split(",")) if field else set()


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root with its mode, owner, group and content hash."""
    seen = {}
    for path in sorted(root.rglob("*")):
        info = path.lstat()
        digest = hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None
        seen[str(path.relative_to(root))] = (info.st_mode, info.st_uid, info.st_gid, digest)
    return seen


def boot_config(root: Path) -> str:
    return (root / "boot" / "firmware" / "config.txt").read_text()


# --- install ------------------------------------------------------------------------------


def test_install_creates_users_groups_and_memberships(source: Path, root: Path) -> None:
    install(source, root, "--no-venv")
    users, groups = accounts(root, "passwd"), accounts(root, "group")

    for group in ("gpio", "spi", "pendock", "pendock-web", "pendock-tech"):
        assert group in groups, f"group {group} missing"
    assert users["pendock"][3] == groups["pendock"][2], "daemon's primary group is not pendock"
    assert users["pendock-web"][3] == groups["pendock-web"][2], "page's primary group is not pendock-web"
    assert {"pendock"} <= members(root, "gpio") and {"pendock"} <= members(root, "spi")
    assert "pendock-web" in members(root, "pendock")
    # S2: the page gets no way to the pins.
    assert "pendock-web" not in members(root, "gpio") | members(root, "spi")
    for user in ("pendock", "pendock-web"):
        assert users[user][6].endswith("nologin"), f"{user} has a login shell"
        assert int(users[user][2]) < 1000, f"{user} is not a system user"


def test_install_creates_folders_config_and_units(source: Path, root: Path) -> None:
    install(source, root, "--no-venv")
    uid = int(accounts(root, "passwd")["pendock"][2])
    gid = int(accounts(root, "group")["pendock"][2])

    # S6: the page reads the record through group pendock (setgid, never group-writable);
    # backups are the daemon's user's alone.
    info = (root / "var/lib/pendock").stat()
    assert (oct(info.st_mode & 0o7777), info.st_uid, info.st_gid) == (oct(0o2750), uid, gid)
    info = (root / "var/lib/pendock/backups").stat()
    assert (oct(info.st_mode & 0o777), info.st_uid) == (oct(0o700), uid)

    config = root / "etc" / "pendock" / "pendock.toml"
    assert config.read_text() == (source / "appliance" / "core" / "pendock.toml").read_text()
    info = config.stat()
    assert (oct(info.st_mode & 0o777), info.st_uid, info.st_gid) == (oct(0o640), 0, gid)
    makers = root / "etc" / "pendock" / "makers"  # trusted cartridge makers' keys (hw/README.md)
    assert makers.is_dir() and makers.stat().st_mode & 0o777 == 0o755 and not any(makers.iterdir())

    for unit in UNITS:
        installed = root / "etc" / "systemd" / "system" / unit
        assert installed.read_text() == (source / "systemd" / unit).read_text(), unit
        assert installed.stat().st_mode & 0o777 == 0o644, unit
    watchdog = root / "etc" / "systemd" / "system.conf.d" / "pendock-watchdog.conf"
    assert "RuntimeWatchdogSec=" in watchdog.read_text()
    assert not (root / "opt" / "pendock").exists(), "--no-venv still built a venv"


def test_boot_block_is_written_once_after_the_stock_lines(source: Path, root: Path) -> None:
    install(source, root, "--no-venv")
    text = boot_config(root)

    assert text.startswith(STOCK_BOOT_CONFIG), "stock boot config lines were changed"
    assert text.count("# BEGIN pen-dock") == 1 and text.count("# END pen-dock") == 1
    block = text[text.index("# BEGIN pen-dock") : text.index("# END pen-dock")]
    # [all] first: the stock file ends inside a [pi4] section.
    assert block.splitlines()[1:] == ["[all]", "dtparam=spi=on", "dtparam=watchdog=on"]


def test_stale_and_duplicate_blocks_are_replaced_in_place(source: Path, root: Path) -> None:
    stale = "# BEGIN pen-dock\ndtparam=spi=off\n# END pen-dock\n"
    (root / "boot" / "firmware" / "config.txt").write_text("top=1\n" + stale + "middle=1\n" + stale + "bottom=1\n")
    install(source, root, "--no-venv")
    text = boot_config(root)

    assert text.count("# BEGIN pen-dock") == 1 and "dtparam=spi=off" not in text
    assert text.index("top=1") < text.index("# BEGIN pen-dock") < text.index("middle=1") < text.index("bottom=1")
    assert "dtparam=spi=on" in text


def test_older_systems_get_the_block_in_boot_config_txt(source: Path, root: Path) -> None:
    shutil.rmtree(root / "boot" / "firmware")
    (root / "boot" / "config.txt").write_text(STOCK_BOOT_CONFIG)
    install(source, root, "--no-venv")
    assert (root / "boot" / "config.txt").read_text().count("dtparam=watchdog=on") == 1
    assert not (root / "boot" / "firmware").exists()


def test_no_boot_config_is_reported_and_none_is_created(source: Path, root: Path) -> None:
    shutil.rmtree(root / "boot")
    output = install(source, root, "--no-venv")
    assert "No boot config found" in output and "dtparam=spi=on" in output
    assert not (root / "boot").exists()


def test_missing_default_config_is_reported_and_nothing_written(source: Path, root: Path) -> None:
    (source / "appliance" / "core" / "pendock.toml").unlink()
    output = install(source, root, "--no-venv")
    assert "built-in defaults" in output
    assert not (root / "etc" / "pendock" / "pendock.toml").exists()


def test_running_twice_is_the_same_as_once(source: Path, root: Path) -> None:
    install(source, root, "--no-venv")
    first = snapshot(root)
    second_output = install(source, root, "--no-venv")
    assert snapshot(root) == first
    assert "already has the pen-dock lines" in second_output
    assert boot_config(root).count("# BEGIN pen-dock") == 1


def test_upgrade_keeps_config_and_records_and_updates_units(source: Path, root: Path) -> None:
    install(source, root, "--no-venv")
    config = root / "etc" / "pendock" / "pendock.toml"
    config.write_text("# the clinic's own settings\n[web]\nhost = '192.168.1.20'\n")
    record = root / "var" / "lib" / "pendock" / "pendock.db"
    record.write_bytes(b"SQLite format 3\x00 pretend sessions")
    backup = root / "var" / "lib" / "pendock" / "backups" / "pendock-20240101.db"
    backup.write_bytes(b"old backup")
    new_unit = (source / "systemd" / "pendock.service").read_text() + "# release 2\n"
    (source / "systemd" / "pendock.service").write_text(new_unit)

    install(source, root, "--no-venv")

    assert config.read_text() == "# the clinic's own settings\n[web]\nhost = '192.168.1.20'\n"
    assert record.read_bytes() == b"SQLite format 3\x00 pretend sessions"
    assert backup.read_bytes() == b"old backup"
    assert (root / "etc" / "systemd" / "system" / "pendock.service").read_text() == new_unit


# --- technicians and sshd -----------------------------------------------------------------


def test_tech_joins_groups_and_sshd_dropin_is_installed(source: Path, root: Path) -> None:
    (root / "etc" / "ssh" / "sshd_config.d").mkdir(parents=True)
    install(source, root, "--no-venv", "--tech", "alice", "--sshd")

    assert "alice" in members(root, "pendock-tech")
    assert "alice" not in members(root, "pendock"), "a technician in the record's group could read it (S6)"
    dropin = root / "etc" / "ssh" / "sshd_config.d" / "pendock.conf"
    assert dropin.read_text() == (source / "hw" / "sshd_pendock.conf").read_text()


def test_sshd_without_a_technician_is_refused(source: Path, root: Path) -> None:
    (root / "etc" / "ssh" / "sshd_config.d").mkdir(parents=True)
    output = install(source, root, "--no-venv", "--sshd", expect=2)
    assert "lock everyone out" in output
    assert not (root / "etc" / "ssh" / "sshd_config.d" / "pendock.conf").exists()


def test_unknown_technician_is_refused(source: Path, root: Path) -> None:
    output = install(source, root, "--no-venv", "--tech", "mallory", expect=2)
    assert "mallory" in output and "adduser" in output


@pytest.mark.skipif(shutil.which("sshd") is None and not Path("/usr/sbin/sshd").exists(),
                    reason="needs sshd (apt install openssh-server)")
def test_sshd_accepts_the_dropin(tmp_path: Path) -> None:
    host_key = tmp_path / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    config = tmp_path / "sshd_config"
    config.write_text(f"HostKey {host_key}\nInclude {REPO / 'hw' / 'sshd_pendock.conf'}\n")
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    Path("/run/sshd").mkdir(exist_ok=True)  # sshd -t insists on its privilege-separation folder
    checked = subprocess.run([sshd, "-T", "-f", str(config)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    effective = checked.stdout.lower()
    for line in ("permitrootlogin no", "passwordauthentication no", "allowgroups pendock-tech",
                 "authenticationmethods publickey", "kbdinteractiveauthentication no"):
        assert line in effective, f"sshd does not apply '{line}'"


# --- refusals -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--no-venv", "--purge"), "--purge only goes with --uninstall"),
        (("--no-venv", "--bogus"), "unknown option '--bogus'"),
    ],
)
def test_bad_usage_exits_2_with_a_reason(source: Path, root: Path, args: tuple[str, ...], message: str) -> None:
    assert message in install(source, root, *args, expect=2)
    assert not (root / "var").exists(), "a refused run still changed the root"


def test_scratch_root_without_account_files_is_refused(source: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    output = install(source, empty, "--no-venv", expect=2)
    assert "etc/passwd" in output
    assert list(empty.iterdir()) == []


# --- uninstall ----------------------------------------------------------------------------


def installed_with_a_record(source: Path, root: Path) -> Path:
    install(source, root, "--no-venv")
    record = root / "var" / "lib" / "pendock" / "pendock.db"
    record.write_bytes(b"SQLite format 3\x00 sessions to keep")
    return record


def test_uninstall_removes_units_users_and_boot_block_but_keeps_records(source: Path, root: Path) -> None:
    record = installed_with_a_record(source, root)
    install(source, root, "--uninstall")

    for unit in UNITS:
        assert not (root / "etc" / "systemd" / "system" / unit).exists(), unit
    assert not (root / "etc" / "systemd" / "system.conf.d" / "pendock-watchdog.conf").exists()
    users, groups = accounts(root, "passwd"), accounts(root, "group")
    assert not {"pendock", "pendock-web"} & users.keys()
    assert not {"pendock", "pendock-web", "pendock-tech"} & groups.keys()
    assert {"gpio", "spi", "alice"} <= groups.keys(), "uninstall removed groups it must keep"
    assert "alice" in users
    assert boot_config(root) == STOCK_BOOT_CONFIG
    assert record.read_bytes() == b"SQLite format 3\x00 sessions to keep"
    assert (root / "etc" / "pendock" / "pendock.toml").exists()


def test_uninstall_purge_removes_records_and_config(source: Path, root: Path) -> None:
    installed_with_a_record(source, root)
    install(source, root, "--uninstall", "--purge")
    assert not (root / "var" / "lib" / "pendock").exists()
    assert not (root / "etc" / "pendock").exists()


def test_reinstall_after_uninstall_gives_the_kept_records_to_the_new_user(source: Path, root: Path) -> None:
    record = installed_with_a_record(source, root)
    old_uid = int(accounts(root, "passwd")["pendock"][2])
    install(source, root, "--uninstall")
    # Another system account takes the old id, so the new pendock user gets a different one.
    with open(root / "etc" / "passwd", "a") as passwd:
        passwd.write(f"squatter:x:{old_uid}:{old_uid}::/nonexistent:/usr/sbin/nologin\n")
    output = install(source, root, "--no-venv")

    new_uid = int(accounts(root, "passwd")["pendock"][2])
    assert new_uid != old_uid
    assert "Gave /var/lib/pendock" in output
    assert record.read_bytes() == b"SQLite format 3\x00 sessions to keep"
    assert record.stat().st_uid == new_uid
    assert (root / "var" / "lib" / "pendock").stat().st_uid == new_uid


# --- S6: who may touch the record, on the installed layout ---------------------------------


def may(root: Path, user: str, path: Path, bit: int) -> bool:
    """Whether `user` of the scratch root may read (4) or write (2) `path`, by its owner,
    group and mode, as the kernel decides for a non-root user."""
    passwd, groups = accounts(root, "passwd"), accounts(root, "group")
    uid, gid = int(passwd[user][2]), int(passwd[user][3])
    gids = {gid} | {int(g[2]) for g in groups.values() if user in g[3].split(",")}
    info = path.stat()
    mode = info.st_mode
    if info.st_uid == uid:
        return bool(mode & (bit << 6))
    if info.st_gid in gids:
        return bool(mode & (bit << 3))
    return bool(mode & bit)


def test_s6_only_the_daemon_writes_the_record_and_only_it_and_the_page_read_it(source: Path, root: Path) -> None:
    install(source, root, "--no-venv", "--tech", "alice")
    data = root / "var" / "lib" / "pendock"
    uid = int(accounts(root, "passwd")["pendock"][2])
    gid = int(accounts(root, "group")["pendock"][2])
    # what the daemon makes under its unit's UMask=0027 in the setgid folder
    old_umask = os.umask(0o027)
    try:
        for name in ("pendock.db", "pendock.db-wal", "pendock.db-shm"):
            (data / name).write_bytes(b"users: password hashes; tokens: token hashes")
            os.chown(data / name, uid, -1)
    finally:
        os.umask(old_umask)
    backup = data / "backups" / "pendock-20261129.db"
    fd = os.open(backup, os.O_WRONLY | os.O_CREAT, 0o600)  # as the daemon's `backup` creates it
    os.close(fd)
    os.chown(backup, uid, gid)

    record = [data / n for n in ("pendock.db", "pendock.db-wal", "pendock.db-shm")]
    assert all(p.stat().st_gid == gid for p in record), "the setgid folder did not give the record its group"
    for path in record + [backup]:
        assert may(root, "pendock", path, 4) and may(root, "pendock", path, 2), path
        assert not may(root, "alice", path, 4), f"the technician can read {path.name} (hashes)"
        assert not may(root, "alice", path, 2), f"the technician can write {path.name}"
        assert not may(root, "pendock-web", path, 2), f"the page can write {path.name}"
    assert all(may(root, "pendock-web", p, 4) for p in record), "the page cannot read the record"
    assert not may(root, "pendock-web", backup, 4), "the page can read a backup"
    assert members(root, "pendock") == {"pendock-web"}, "someone besides the page is in the record's group"
    assert "alice" in members(root, "pendock-tech")


def test_s6_an_upgrade_takes_technicians_out_of_the_record_and_tightens_old_files(source: Path, root: Path) -> None:
    install(source, root, "--no-venv")
    data = root / "var" / "lib" / "pendock"
    # what an earlier release left: a group-writable record, a world-readable backup,
    # the technician in the daemon's group
    record, backup = data / "pendock.db", data / "backups" / "pendock-20240101.db"
    record.write_bytes(b"SQLite format 3\x00 hashes")
    record.chmod(0o660)
    backup.write_bytes(b"SQLite format 3\x00 hashes")
    backup.chmod(0o644)
    subprocess.run(["usermod", "--root", str(root), "--append", "--groups", "pendock", "alice"], check=True)
    assert "alice" in members(root, "pendock")

    output = install(source, root, "--no-venv", "--tech", "alice")

    assert "Took alice out of group pendock" in output
    assert members(root, "pendock") == {"pendock-web"}
    assert record.stat().st_mode & 0o777 == 0o640 and backup.stat().st_mode & 0o777 == 0o600
    assert record.read_bytes() == b"SQLite format 3\x00 hashes", "an upgrade changed the record"


def test_pendock_is_on_every_users_path_and_runs_the_venvs(source: Path, root: Path, tmp_path: Path) -> None:
    """README's first SSH step is `pendock status`: /usr/local/bin (on Debian's PATH for
    every login shell) gets a wrapper that runs the venv's pendock with its arguments."""
    install(source, root, "--no-venv")
    wrapper = root / "usr/local/bin/pendock"
    info = wrapper.stat()
    assert (stat_mode(info), info.st_uid) == (0o755, 0)
    # Run it with the venv's path pointed at a stand-in that echoes its arguments.
    fake = tmp_path / "venv-pendock"
    fake.write_text('#!/bin/sh\necho "venv pendock: $*"\n')
    fake.chmod(0o755)
    text = wrapper.read_text().replace("/opt/pendock/venv/bin/pendock", str(fake))
    assert text != wrapper.read_text()
    (tmp_path / "wrapper").write_text(text)
    ran = subprocess.run(["sh", str(tmp_path / "wrapper"), "status", "--json", "a b"], capture_output=True, text=True)
    assert ran.stdout == "venv pendock: status --json a b\n"
    install(source, root, "--uninstall")
    assert not wrapper.exists()


def stat_mode(info: os.stat_result) -> int:
    return info.st_mode & 0o7777


def test_the_simulated_setting_is_only_there_when_asked_for(source: Path, root: Path) -> None:
    """PENDOCK_SIMULATED=yes (mock pins, simulated pen) never ships: no unit carries it, a
    plain install writes no drop-in, and an install without --simulated removes one."""
    dropin = root / "etc/systemd/system/pendock.service.d/simulated.conf"
    for unit in UNITS:
        assert "PENDOCK_SIMULATED" not in (REPO / "systemd" / unit).read_text()
    install(source, root, "--no-venv")
    assert not dropin.exists()
    out = install(source, root, "--no-venv", "--simulated")
    assert "Environment=PENDOCK_SIMULATED=yes" in dropin.read_text() and "SIMULATED" in out
    out = install(source, root, "--no-venv")
    assert not dropin.exists() and "Removed /etc/systemd/system/pendock.service.d/simulated.conf" in out
    install(source, root, "--no-venv", "--simulated", "--uninstall", expect=2)
