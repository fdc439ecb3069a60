"""The real clock's view of synchronisation comes from systemd's flag file."""
from zoneinfo import ZoneInfo

from appliance.hardware.clock import SystemClock


def test_synced_follows_systemd_timesync_flag(tmp_path, monkeypatch):
    flag = tmp_path / "synchronized"
    clock = SystemClock(ZoneInfo("Europe/London"), sync_flag=flag)
    assert clock.synced() is False
    flag.touch()
    assert clock.synced() is True
    assert clock.now().tzinfo == ZoneInfo("Europe/London")
    first = clock.monotonic()
    assert clock.monotonic() >= first
