"""The real clock's view of synchronisation comes from systemd's flag file."""
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from appliance.hardware.clock import ClockSetError, SystemClock


def test_synced_follows_systemd_timesync_flag(tmp_path, monkeypatch):
    flag = tmp_path / "synchronized"
    clock = SystemClock(ZoneInfo("Europe/London"), sync_flag=flag)
    assert clock.synced() is False
    flag.touch()
    assert clock.synced() is True
    assert clock.now().tzinfo == ZoneInfo("Europe/London")
    first = clock.monotonic()
    assert clock.monotonic() >= first


def _no_clock_rights(monkeypatch):
    """As pendock.service runs it (ProtectClock=yes): stepping the system clock is refused."""
    def refuse(clock_id, seconds):
        raise PermissionError(1, "Operation not permitted")
    monkeypatch.setattr("appliance.hardware.clock.time.clock_settime", refuse)


def test_a_person_sets_the_time_where_the_dock_may_not_step_the_clock(tmp_path, monkeypatch):
    _no_clock_rights(monkeypatch)
    boot = tmp_path / "boot_id"
    boot.write_text("boot-1\n")
    offset_file = tmp_path / "clock-offset.json"
    clock = SystemClock(ZoneInfo("UTC"), sync_flag=tmp_path / "synchronized", boot_id=boot,
                        offset_file=offset_file)
    right = clock.now() + timedelta(days=30)  # the Pi booted a month behind
    clock.set_wall(right)
    assert abs((clock.now() - right).total_seconds()) < 5
    assert offset_file.stat().st_mode & 0o777 == 0o600
    # The daemon restarts in the same boot: the offset holds.
    again = SystemClock(ZoneInfo("UTC"), sync_flag=tmp_path / "synchronized", boot_id=boot,
                        offset_file=offset_file)
    assert abs((again.now() - right).total_seconds()) < 5
    # A new boot: the system clock is the one to believe again.
    boot.write_text("boot-2\n")
    rebooted = SystemClock(ZoneInfo("UTC"), sync_flag=tmp_path / "synchronized", boot_id=boot,
                           offset_file=offset_file)
    assert abs((rebooted.now() - datetime.now(ZoneInfo("UTC"))).total_seconds()) < 5


def test_ntp_ends_the_dock_s_own_offset(tmp_path, monkeypatch):
    _no_clock_rights(monkeypatch)
    flag = tmp_path / "synchronized"
    offset_file = tmp_path / "clock-offset.json"
    clock = SystemClock(ZoneInfo("UTC"), sync_flag=flag, offset_file=offset_file)
    clock.set_wall(clock.now() + timedelta(days=3))
    flag.touch()  # timesyncd reached a server: the system clock is right
    assert abs((clock.now() - datetime.now(ZoneInfo("UTC"))).total_seconds()) < 5
    assert not offset_file.exists()


def test_without_an_offset_file_it_says_what_to_run_as_root(tmp_path, monkeypatch):
    _no_clock_rights(monkeypatch)
    clock = SystemClock(ZoneInfo("UTC"), sync_flag=tmp_path / "synchronized")
    with pytest.raises(ClockSetError, match="timedatectl"):
        clock.set_wall(clock.now() + timedelta(days=3))
