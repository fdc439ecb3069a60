"""The record survives a power cut: the data folder on a disk that loses unsynced writes.

tests/support/powercut_fs.py is a FUSE filesystem that keeps every write in memory and
throws away, at a cut, whatever the daemon had not synced. Each cut: kill -9 the daemon
(the CPU stops), drop the unsynced writes, boot the disk and the daemon again, then check
every session the dock acknowledged, integrity_check, the audit chain and the latch.

The negative control runs the same with synchronous=NORMAL (commits not synced) and must
lose acknowledged sessions; so a pass above means something.
"""
from __future__ import annotations

import pytest

from tests.reliability.kill_loop import run
from tests.support.dockdriver import DockProcess
from tests.support.marks import slow
from tests.support.powercut import PowerCutDisk, fuse_unavailable

pytestmark = pytest.mark.skipif(fuse_unavailable() is not None, reason=str(fuse_unavailable()))


@pytest.fixture
def disk(tmp_path):
    disk = PowerCutDisk(tmp_path / "disk", tmp_path / "surviving.pickle")
    disk.boot()
    yield disk
    disk.close()


def power_cut(disk: PowerCutDisk):
    def cut(dock: DockProcess) -> None:
        dock.kill()
        disk.cut()
        disk.boot()
    return cut


def cut_loop(disk, tmp_path, cuts, *, env=None, seed=3, stop_on_problem=True):
    return run(cuts, tmp_path, seed=seed, cut=power_cut(disk), env=env, data=disk.mountpoint,
               longest_s=0.8, stop_on_problem=stop_on_problem)


def test_power_cuts_lose_no_acknowledged_session(disk, tmp_path):
    report = cut_loop(disk, tmp_path, cuts=6)
    assert report.problems == []
    assert report.kills == 6
    assert report.closed_checked >= 3, "too few sessions closed to prove anything"
    # The cuts really threw writes away (the WAL index and other unsynced bytes).
    assert any(c["live_bytes"] > c["surviving_bytes"] for c in disk.cuts)


def test_negative_control_unsynced_commits_are_lost(disk, tmp_path):
    report = cut_loop(disk, tmp_path, cuts=6, env={"PENDOCK_SQLITE_SYNCHRONOUS": "NORMAL"})
    lost = [p for p in report.problems if "lost or changed" in p or "is missing" in p]
    assert lost, f"synchronous=NORMAL lost nothing; the power-cut disk proves nothing: {report}"


@slow
def test_power_cuts_long(disk, tmp_path):
    report = cut_loop(disk, tmp_path, cuts=200, seed=11, stop_on_problem=False)
    assert report.problems == []
    assert report.closed_checked >= 100
