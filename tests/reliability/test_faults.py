"""R2, daemon side: each fault holds the pen with a clear code, and clears when the fault does.

The daemon runs in this process on mock pins with the simulated pen (as under `pendock
demo`), driven through its control socket as the CLI drives it.
"""
from __future__ import annotations

import errno
import os
import subprocess
from datetime import datetime
from pathlib import Path

import pytest

from appliance.daemon.control import Refused
from tests.support.inprocess import CHECKLIST, SimDock
from tests.support.powercut import PowerCutDisk, fuse_unavailable
from tests.support.waiting import wait_for


def sessions(sim):
    return sim.store.sessions_on(sim.clock.now().date())  # these tests never move the clock


# -- seat switch bounce -----------------------------------------------------------------

def test_seat_bounce_while_released_opens_no_session(sim):
    assert not sim.ready_for_client("B-1")["held"]
    sim.sim.bounce_seat(True)  # the pen rocks in the cradle and stays
    status = sim.call("sim.dock")["status"]
    assert status["docked"] and not status["held"]
    assert status["session"] is None and sessions(sim) == []
    assert "session_opened" not in sim.audit_actions()


def test_seat_bounce_on_return_closes_the_session_once(sim):
    """The pen comes back rocking: the switch chatters for 100 ms while the daemon's loop
    runs (it wakes on every edge), each flip far shorter than the settle time."""
    assert not sim.ready_for_client("B-2")["held"]
    sim.call("sim.undock")
    sim.call("sim.needle", minutes=10, depth=1.0)
    sim.sim.pen.state.docked = True  # the contacts touch; only the hall switch chatters
    sim.sim.bounce_seat(True, flips=20, gap_s=0.005)  # from this thread, as the loop polls
    status = sim.call("sim.dock")["status"]
    assert status["held"] and "cartridge_reused" in status["locks"]
    assert [s["outcome"] for s in sessions(sim)] == ["completed"]
    assert sim.audit_actions().count("session_closed") == 1
    assert sim.audit_actions().count("session_opened") == 1


# -- CRC errors -------------------------------------------------------------------------

def test_persistent_crc_error_holds_with_readout_error_and_clears(sim):
    assert not sim.ready_for_client("C-1")["held"]
    status = sim.call("sim.fault", name="crc")["status"]
    assert status["held"] and "readout_error" in status["locks"]
    assert status["light"] == "red" and "CRC" in status["readout_error"].upper()
    assert sim.dock.hw.latch.is_held
    status = sim.call("sim.fault", name="clear")["status"]
    assert "readout_error" not in status["locks"] and not status["held"]


def test_intermittent_crc_error_is_read_through_by_retries(sim):
    assert not sim.ready_for_client("C-2")["held"]
    before = sim.sim.pen.reads
    status = sim.call("sim.fault", name="crc-intermittent")["status"]
    used = sim.sim.pen.reads - before
    assert "readout_error" not in status["locks"] and not status["held"]
    assert status["pen"] is not None
    assert used >= 2, "the fault never hit a read: the test proves nothing"


# -- pen lifted mid-read ------------------------------------------------------------------

def test_pen_lifted_mid_read_still_records_the_session(sim):
    """Released, and the therapist lifts the pen while the dock happens to read it: the
    broken frame must not hide the session that starts."""
    assert not sim.ready_for_client("L-1")["held"]
    pen, honest = sim.sim.pen, sim.sim.pen.frame_bytes

    def lifted_during_transfer():
        sim.sim.undock(latch_held=False)  # the seat opens and the contacts break...
        pen.frame_bytes = honest
        return honest()[:20]  # ...so only part of the frame arrives
    pen.frame_bytes = lifted_during_transfer
    with sim.dock.lock:
        sim.dock._next_poll = 0.0  # the next tick reads the pen
    sim.dock.hw.seat.changed.set()
    status = wait_for(lambda: (s := sim.status())["session"] and s)
    assert status, f"no session after the pen left: {sim.status()}"
    assert status["session"]["client_ref"] == "L-1" and not status["session"]["forced"]
    status = sim.call("sim.dock")["status"]
    assert status["last_session"]["outcome"] == "completed"


def test_pen_lifted_mid_read_while_held_keeps_it_held(sim):
    """Held (no client named), the therapist tugs the pen up against the latch while the
    dock reads it: the contacts break mid-transfer, only part of each frame arrives. The
    broken reads must show as a readout error with the pen held and no session; when the
    contacts close again the error clears."""
    sim.call("sim.cartridge")
    assert sim.status()["held"]
    pen, honest = sim.sim.pen, sim.sim.pen.frame_bytes
    pen.frame_bytes = lambda: honest()[:20]

    def read_now():
        with sim.dock.lock:
            sim.dock._next_poll = 0.0
        sim.dock.hw.seat.changed.set()

    read_now()
    status = wait_for(lambda: (s := sim.status())["readout_error"] and s)
    assert status, f"the broken frame went unnoticed: {sim.status()}"
    assert status["held"] and "readout_error" in status["locks"] and sim.dock.hw.latch.is_held
    assert status["session"] is None and "session_opened" not in sim.audit_actions()
    pen.frame_bytes = honest
    read_now()
    status = wait_for(lambda: not (s := sim.status())["readout_error"] and s)
    assert status and "readout_error" not in status["locks"] and status["held"]


# -- counter rollback -----------------------------------------------------------------------

def test_counter_rollback_holds_until_a_technician_rebaselines(sim):
    sim.session_cycle("R-1", minutes=5)
    sim.sim.pen.state.strokes -= 50_000  # a swapped board, or tampering
    status = sim.ready_for_client("R-2")
    assert status["held"] and "counter_rollback" in status["locks"] and status["light"] == "red"
    with pytest.raises(Refused):
        sim.call("override", code="counter_rollback", reason="the manager cannot clear this")
    status = sim.call("rebaseline", reason="pen board replaced by the technician")
    assert "counter_rollback" not in status["locks"] and not status["held"]
    assert "rebaseline" in sim.audit_actions()


# -- cartridge swapped mid-session ------------------------------------------------------

def test_cartridge_swapped_mid_session_is_noted_and_the_new_one_spent(sim):
    assert not sim.ready_for_client("S-1")["held"]
    sim.call("sim.undock")
    sim.call("sim.needle", minutes=5, depth=1.0)
    swapped = sim.call("sim.cartridge")["cartridge_serial"]
    sim.call("sim.needle", minutes=5, depth=1.0)
    status = sim.call("sim.dock")["status"]
    closed = status["last_session"]
    assert closed["outcome"] == "completed" and "cartridge_changed" in closed["warnings"]
    assert closed["needling_seconds"] == 600
    assert status["held"] and "cartridge_reused" in status["locks"]
    assert status["cartridge"]["serial"] == swapped
    status = sim.call("sim.cartridge")["status"]  # a new sterile one clears it
    assert "cartridge_reused" not in status["locks"]


# -- disk full, read-only folder --------------------------------------------------------------

def _mount_tmpfs(where: Path, size: str) -> str | None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True)
    return None if done.returncode == 0 else (done.stderr.strip() or "mount failed")


@pytest.fixture
def small_disk(tmp_path):
    where = tmp_path / "small"
    why = _mount_tmpfs(where, "2m")
    if why:
        pytest.skip(f"cannot mount a small tmpfs here ({why}); run as root")
    yield where
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _fill(where: Path) -> Path:
    """Write zeros until the filesystem says ENOSPC."""
    filler = where / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC, error
    finally:
        os.close(fd)
    return filler


def test_disk_full_holds_with_storage_error_and_recovers(small_disk, tmp_path):
    sim = SimDock(small_disk / "data", tmp_path / "control.sock")
    try:
        sim.call("sim.cartridge")
        filler = _fill(small_disk)
        with pytest.raises(Refused) as refused:
            sim.call("next_client", ref="F-1", area="face", checklist=CHECKLIST)
        assert "space" in str(refused.value)
        # The cartridge comes off: a new decision must be recorded, and it cannot be.
        status = sim.call("sim.cartridge", remove=True)["status"]
        assert status["held"] and "storage_error" in status["locks"] and not status["storage_ok"]
        assert status["light"] == "red" and sim.dock.hw.latch.is_held
        filler.unlink()
        status = wait_for(lambda: (s := sim.status())["storage_ok"] and s)
        assert status and "storage_error" not in status["locks"]
        sim.call("sim.cartridge")
        status = sim.call("next_client", ref="F-1", area="face", checklist=CHECKLIST)
        assert not status["held"]
        assert "storage_recovered" in sim.audit_actions()
        assert sim.store.verify_audit().ok
    finally:
        sim.close()


def test_a_session_begun_while_the_disk_is_full_is_recorded_once_it_is_not(small_disk, tmp_path):
    """The pen was free, the disk filled, the therapist lifted it: the session must not be lost."""
    sim = SimDock(small_disk / "data", tmp_path / "control.sock")
    try:
        assert not sim.ready_for_client("F-2")["held"]
        filler = _fill(small_disk)
        status = sim.call("sim.undock")["status"]
        assert status["session"] is not None and not status["storage_ok"]
        sim.call("sim.needle", minutes=12, depth=1.0)
        status = sim.call("sim.dock")["status"]
        assert status["held"] and "storage_error" in status["locks"]
        filler.unlink()
        status = wait_for(lambda: (s := sim.status())["storage_ok"] and s["session"] is None and s)
        assert status, "the waiting session was not written after the disk freed up"
        day = sim.clock.now().date()
        [session] = [s for s in sim.store.sessions_on(day) if s["client_ref"] == "F-2"]
        assert session["outcome"] == "completed" and session["needling_seconds"] == 12 * 60
        assert sim.store.cartridge_used(session["cartridge_serial"])
        assert sim.store.verify_audit().ok
    finally:
        sim.close()


def test_daemon_refuses_to_start_on_a_read_only_folder_and_names_it(tmp_path):
    where = tmp_path / "ro"
    why = _mount_tmpfs(where, "1m")
    if why:
        pytest.skip(f"cannot mount a tmpfs here ({why})")
    try:
        (where / "data").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(where)], check=True)
        from appliance.record.store import StorageError
        with pytest.raises(StorageError) as error:
            SimDock(where / "data", tmp_path / "control.sock")
        assert str(where) in str(error.value)
    finally:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


@pytest.mark.skipif(fuse_unavailable() is not None, reason=str(fuse_unavailable()))
def test_data_folder_turning_read_only_holds_with_storage_error_and_recovers(tmp_path):
    disk = PowerCutDisk(tmp_path / "disk", tmp_path / "image.pickle")
    disk.boot()
    sim = None
    try:
        sim = SimDock(disk.mountpoint, tmp_path / "control.sock")
        sim.call("sim.cartridge")
        disk.read_only(True)
        with pytest.raises(Refused):
            sim.call("next_client", ref="O-1", area="face", checklist=CHECKLIST)
        status = sim.call("sim.cartridge", remove=True)["status"]
        assert status["held"] and "storage_error" in status["locks"]
        disk.read_only(False)
        status = wait_for(lambda: (s := sim.status())["storage_ok"] and s)
        assert status and "storage_error" not in status["locks"]
        sim.call("sim.cartridge")
        assert not sim.call("next_client", ref="O-1", area="face", checklist=CHECKLIST)["held"]
    finally:
        if sim is not None:
            sim.close()
        disk.close()


# -- the wall clock jumps ------------------------------------------------------------------------

def test_wall_clock_back_a_day_mid_session_keeps_durations_right(sim):
    assert not sim.ready_for_client("K-1")["held"]
    sim.call("sim.undock")
    sim.call("sim.clock", jump="-1d")
    sim.call("sim.needle", minutes=20, depth=1.0)
    status = sim.status()
    assert 1150 <= status["session"]["out_seconds"] <= 1300  # the monotonic clock, not the wall
    assert status["clock_synced"] is False  # the wall now reads earlier than the record
    closed = sim.call("sim.dock")["status"]["last_session"]
    assert closed["needling_seconds"] == 1200 and closed["strokes"] == 1200 * 120
    assert "session_overrun" not in closed["warnings"]
    assert "clock_unsynced" in closed["warnings"]
    # The end is the start plus the time out on the monotonic clock, not the jumped wall.
    start = datetime.fromisoformat(closed["started_at"])
    end = datetime.fromisoformat(closed["ended_at"])
    assert 1150 <= (end - start).total_seconds() <= 1300


def test_wall_clock_forward_a_year_mid_session_is_no_overrun(sim):
    assert not sim.ready_for_client("K-2")["held"]
    sim.call("sim.undock")
    sim.call("sim.clock", jump="365d")
    sim.call("sim.needle", minutes=20, depth=1.0)
    assert "session_overrun" not in sim.status()["warnings"]
    closed = sim.call("sim.dock")["status"]["last_session"]
    assert closed["needling_seconds"] == 1200 and "session_overrun" not in closed["warnings"]
    start = datetime.fromisoformat(closed["started_at"])
    assert (datetime.fromisoformat(closed["ended_at"]) - start).total_seconds() < 1300


def test_interval_rules_follow_the_wall_clock(sim):
    sim.session_cycle("K-3")
    status = sim.ready_for_client("K-3")
    assert "client_interval" in status["locks"]  # same client and area, same day
    sim.call("sim.clock", jump="365d")  # the wall alone: not confirmed, not trusted (R6)
    status = sim.call("sim.cartridge")["status"]
    assert "client_interval" in status["locks"] and status["clock_synced"] is False
    sim.call("sim.clock", advance="365d")  # a year really passes (both clocks): the rule frees the client
    sim.call("sim.clock", synced=True)  # NTP confirms the wall clock's year
    status = sim.call("sim.cartridge")["status"]
    assert "client_interval" not in status["locks"] and not status["held"]


def test_wall_clock_back_before_the_last_session_holds_the_client(sim):
    sim.session_cycle("K-4")
    sim.call("sim.clock", jump="-1d")  # the last session now lies "in the future"
    status = sim.ready_for_client("K-4")
    assert status["held"] and "client_interval" in status["locks"]


def test_unsynced_clock_is_flagged_and_recorded(sim):
    sim.call("sim.clock", synced=False)
    status = sim.ready_for_client("K-5")
    assert "clock_unsynced" in status["warnings"] and status["clock_synced"] is False
    assert not status["held"]  # a warning, not a lock
    entry = sim.store.audit_entries(limit=1)[0]
    assert entry.clock_synced is False
    sim.call("sim.clock", synced=True)
    assert "clock_unsynced" not in sim.status()["warnings"]


def test_another_pen_docked_mid_session_ends_it_as_interrupted(tmp_path):
    sim = SimDock(tmp_path / "data", tmp_path / "control.sock")
    try:
        assert not sim.ready_for_client("P-1")["held"]
        first = sim.sim.pen.state.pen_serial
        sim.call("sim.undock")
        sim.sim.pen.state.pen_serial = first + 1  # a second pen goes into the cradle
        status = sim.call("sim.dock")["status"]
        assert status["session"] is None and status["pen"]["serial"] == first + 1
        closed = status["last_session"]
        assert closed["pen_serial"] == first and closed["outcome"] == "interrupted"
        assert "pen_changed" in closed["warnings"] and closed["needling_seconds"] == 0
        assert "pen_registered" in sim.audit_actions()
        assert "cartridge_reused" in status["locks"]  # the simulated pens share the spent cartridge
        assert sim.store.verify_audit().ok
    finally:
        sim.close()
