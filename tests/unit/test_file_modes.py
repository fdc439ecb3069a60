"""S6: the record, its -wal/-shm and backups hold password and token hashes: readable by
the daemon's user alone (0600 in 0700), or on an installed dock (a setgid 2750 folder)
by the page's read-only group too (0640), never writable by a group nor readable by others."""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat

import pytest

from tests.support.inprocess import SimDock


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def dock_in(tmp_path):
    docks = []

    def start(data):
        dock = SimDock(data, tmp_path / f"c{len(docks)}.sock", loop=False)
        docks.append(dock)
        return dock

    yield start
    for dock in docks:
        dock.close()


def record_files(data):
    return [p for p in data.iterdir() if p.name.startswith("pendock.db")]


def test_a_new_data_folder_is_the_daemon_users_alone(tmp_path, dock_in):
    data = tmp_path / "demo"
    dock = dock_in(data)
    dock.call("sim.dock")  # some writes, so -wal and -shm exist
    assert mode(data) == 0o700
    files = record_files(data)
    assert {p.name for p in files} >= {"pendock.db", "pendock.db-wal", "pendock.db-shm"}
    assert {p.name: mode(p) for p in files} == {p.name: 0o600 for p in files}


def test_an_old_world_readable_folder_is_tightened_at_start(tmp_path, dock_in):
    data = tmp_path / "old"
    (data / "backups").mkdir(parents=True)
    data.chmod(0o775)
    (data / "backups").chmod(0o775)
    old_backup = data / "backups" / "pendock-20260101.db"
    old_backup.write_bytes(b"")
    old_backup.chmod(0o664)
    dock_in(data)
    assert mode(data) == 0o700 and mode(data / "pendock.db") == 0o600
    assert mode(data / "backups") == 0o700 and mode(old_backup) == 0o600


@contextlib.contextmanager
def restrict_suid_sgid():
    """What the unit's RestrictSUIDSGID=yes does: its seccomp filter refuses any chmod whose
    mode carries a setuid or setgid bit (EPERM), even when the folder has that bit already."""
    real_chmod = os.chmod
    refused: list[tuple[str, str]] = []

    def chmod(path, mode, *args, **kwargs):
        if mode & (stat.S_ISUID | stat.S_ISGID):
            refused.append((str(path), oct(mode)))
            raise PermissionError(errno.EPERM, "Operation not permitted", str(path))
        return real_chmod(path, mode, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "chmod", chmod)
        yield refused


def test_an_installed_setgid_folder_lets_the_page_group_read_only(tmp_path, dock_in):
    data = tmp_path / "var-lib-pendock"
    data.mkdir()
    data.chmod(0o2750)  # what hw/install.sh (as root) and StateDirectoryMode=2750 make
    with restrict_suid_sgid() as refused:
        dock_in(data)  # under RestrictSUIDSGID=yes: must start
    assert refused == []
    assert mode(data) == 0o2750
    assert all(mode(p) == 0o640 for p in record_files(data))


def test_a_too_open_installed_folder_is_named_and_left_to_the_installer(tmp_path, dock_in, caplog):
    data = tmp_path / "var-lib-pendock"
    data.mkdir()
    data.chmod(0o2770)  # what an old installer made: group-writable
    with caplog.at_level(logging.WARNING), restrict_suid_sgid() as refused:
        dock_in(data)
    assert refused == []
    assert mode(data) == 0o2770  # only root (hw/install.sh) may set a setgid mode
    assert all(mode(p) == 0o640 for p in record_files(data))
    assert any(str(data) in r.getMessage() and "hw/install.sh" in r.getMessage() for r in caplog.records)


def test_a_backup_is_0600_from_the_start(tmp_path, dock_in):
    dock = dock_in(tmp_path / "d")
    target = tmp_path / "copies" / "b.db"
    target.parent.mkdir()
    dock.call("backup", path=str(target))
    assert mode(target) == 0o600


def test_a_backup_never_follows_a_planted_link(tmp_path, dock_in):
    dock = dock_in(tmp_path / "d")
    victim = tmp_path / "victim"
    victim.write_text("keep me")
    (tmp_path / "planted.db").symlink_to(victim)
    with pytest.raises(Exception, match="exists already"):
        dock.call("backup", path=str(tmp_path / "planted.db"))
    assert victim.read_text() == "keep me"


def test_a_backup_is_written_through_its_descriptor_not_a_link_swapped_in(tmp_path, dock_in, monkeypatch):
    """R5: the file is made with O_EXCL and written through that descriptor; a symlink
    swapped in at the path while the copy is made changes nothing it points at."""
    dock = dock_in(tmp_path / "d")
    victim = tmp_path / "victim"  # an empty file anyone may read: SQLite would fill it
    victim.write_bytes(b"")
    victim.chmod(0o666)
    target = tmp_path / "b.db"
    copy = dock.store.backup_to

    def swap_then_copy(path):
        target.unlink()
        target.symlink_to(victim)  # the race: after the file was made, before it is written
        copy(path)

    monkeypatch.setattr(dock.store, "backup_to", swap_then_copy)
    answer = dock.call("backup", path=str(target))
    assert victim.read_bytes() == b"" and mode(victim) == 0o666
    assert answer["integrity"] == "ok" and answer["bytes"] > 4096
    assert not list((tmp_path / "d").glob(".backup-*"))  # the scratch copy is gone
