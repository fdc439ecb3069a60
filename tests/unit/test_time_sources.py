"""S7's sources: chrony's NTS state read as the unit reads it (captured `chronyc -c`
output), and the RTC through the kernel's rtc class (a stand-in folder the test drives)."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

from appliance.hardware import clock as hwclock
from appliance.hardware.clock import ChronySource, RtcSource, SystemClock, chrony_verdict

CAPTURED = Path(__file__).parent / "data" / "chronyc-nts.txt"


def captured() -> dict[str, str]:
    sections: dict[str, list[str]] = {}
    name = ""
    for line in CAPTURED.read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.startswith("["):
            name = line.strip("[]")
            sections[name] = []
        elif name:
            sections[name].append(line)
    return {key: "\n".join(lines) + "\n" for key, lines in sections.items()}


def test_chrony_synchronised_to_an_nts_source_is_authenticated():
    out = captured()
    ok, words = chrony_verdict(out["tracking"], out["sources"], out["authdata"], requires_auth=False)
    assert ok and "162.159.200.123" in words and "NTS" in words


def test_chrony_synchronised_to_a_plain_source_is_not():
    out = captured()
    plain = out["sources"].replace("^,*,162.159.200.123", "^,-,162.159.200.123").replace("^,?,192.0.2.7", "^,*,192.0.2.7")
    ok, words = chrony_verdict(out["tracking"], plain, out["authdata"], requires_auth=True)
    assert not ok and "without NTS" in words  # authdata, where the dock may ask it, decides


def test_not_synchronised_or_silent_chrony_is_not():
    out = captured()
    unsynced = out["tracking"].replace(",Normal", ",Not synchronised")
    assert not chrony_verdict(unsynced, out["sources"], out["authdata"], True)[0]
    assert not chrony_verdict("", "", None, True)[0]
    none_selected = out["sources"].replace("^,*,", "^,+,")
    assert not chrony_verdict(out["tracking"], none_selected, out["authdata"], True)[0]


def test_without_authdata_the_installed_configuration_decides(tmp_path):
    """A non-root unit may not ask `authdata`: chrony's configuration then says whether
    only authenticated sources can be selected (hw/chrony-pendock.conf)."""
    out = captured()
    assert chrony_verdict(out["tracking"], out["sources"], None, requires_auth=True)[0]
    assert not chrony_verdict(out["tracking"], out["sources"], None, requires_auth=False)[0]
    shipped = Path(__file__).parents[2] / "hw" / "chrony-pendock.conf"
    assert hwclock.chrony_requires_authentication(shipped)
    loose = tmp_path / "loose.conf"
    loose.write_text("server time.cloudflare.com iburst nts\n# authselectmode require\n")
    assert not hwclock.chrony_requires_authentication(loose)


def test_the_chrony_source_asks_at_most_once_a_minute(tmp_path):
    out, asked = captured(), []

    def run(command: str) -> str:
        asked.append(command)
        return out[command]

    source = ChronySource(conf=tmp_path / "none.conf", run=run)
    assert source.authenticated()[0] and source.authenticated()[0]
    assert asked == ["tracking", "sources", "authdata"]


def rtc_folder(tmp_path: Path, moment: datetime | None) -> Path:
    folder = tmp_path / "rtc0"
    folder.mkdir(exist_ok=True)
    if moment is not None:
        (folder / "since_epoch").write_text(f"{int(moment.timestamp())}\n")
    return folder


def test_the_rtc_gives_its_time_and_a_lost_battery_gives_none(tmp_path):
    true = datetime(2026, 12, 8, 9, 30, tzinfo=timezone.utc)
    rtc = RtcSource(rtc_folder(tmp_path, true), ttl=0)
    assert abs(rtc.reading(timezone.utc) - true) < timedelta(seconds=2)
    rtc_folder(tmp_path, datetime(2000, 1, 1, tzinfo=timezone.utc))  # the DS3231's reset value
    assert rtc.reading(timezone.utc) is None
    assert RtcSource(tmp_path / "no-rtc", ttl=0).reading(timezone.utc) is None


def test_the_system_clock_offers_both_as_authenticated_sources(tmp_path):
    out = captured()
    now = datetime.now(timezone.utc)
    clock = SystemClock(timezone.utc, sync_flag=tmp_path / "no-flag", boot_id=tmp_path / "no-boot-id",
                        chrony=ChronySource(conf=tmp_path / "none.conf", run=lambda c: out[c]),
                        rtc=RtcSource(rtc_folder(tmp_path, now), ttl=0), rtc_boot_window_s=None)
    found = {s.name: s for s in clock.time_sources()}
    assert found["nts"].authenticated and found["nts"].at is not None
    assert found["rtc"].authenticated and abs(found["rtc"].at - now) < timedelta(seconds=2)
    assert clock.synced()  # chrony synchronised, though timesyncd's flag is absent
    silent = SystemClock(timezone.utc, sync_flag=tmp_path / "no-flag", boot_id=tmp_path / "no-boot-id",
                         chrony=ChronySource(run=lambda c: ""), rtc=RtcSource(tmp_path / "none"))
    assert [s.at for s in silent.time_sources()] == [None, None] and not silent.synced()


def test_an_rtc_that_kept_time_through_a_power_cut_vouches_for_it(tmp_path):
    """The clinic without internet: the dock was off 25 days; the RTC kept time, so the
    watch's vouched time counts those days (appliance/core/vouched.py)."""
    from appliance.core.vouched import Vouch
    from appliance.daemon.clockwatch import ClockWatch

    now = datetime.now(timezone.utc)
    clock = SystemClock(timezone.utc, sync_flag=tmp_path / "no-flag", boot_id=tmp_path / "no-boot-id",
                        chrony=ChronySource(run=lambda c: ""), rtc=RtcSource(rtc_folder(tmp_path, now), ttl=0),
                        rtc_boot_window_s=None)
    kept = Vouch(now - timedelta(days=25), time.monotonic(), "the boot before the power cut", True, "rtc", grounded=True)
    watch = ClockWatch(clock, kept=kept)
    assert abs(watch.state.effective_now - now) < timedelta(seconds=5) and watch.state.vouched_source == "rtc"
    no_rtc = SystemClock(timezone.utc, sync_flag=tmp_path / "no-flag", boot_id=tmp_path / "no-boot-id",
                         chrony=ChronySource(run=lambda c: ""), rtc=RtcSource(tmp_path / "none"))
    assert ClockWatch(no_rtc, kept=kept).state.effective_now < now - timedelta(days=24)


def test_in_the_daemon_chronyc_never_holds_up_a_decision(tmp_path):
    """background=True: the first look answers at once (not authenticated yet); the
    answer arrives from chronyc's own thread."""
    import threading

    out, release = captured(), threading.Event()

    def slow(command: str) -> str:
        release.wait(5)
        return out[command]

    source = ChronySource(conf=tmp_path / "none.conf", run=slow, background=True)
    started = time.monotonic()
    assert source.authenticated() == (False, "chrony not asked yet")
    assert time.monotonic() - started < 0.5
    release.set()
    deadline = time.monotonic() + 5
    while not source.authenticated()[0] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert source.authenticated()[0]


def test_the_rtc_vouches_only_for_what_it_carried_through_the_power_cut(tmp_path):
    """Once plain NTP synchronised (timesyncd's flag), or late in the boot, the kernel may
    have copied an unauthenticated time into the RTC: it is not read as a source then."""
    now = datetime.now(timezone.utc)
    flag = tmp_path / "synchronized"
    clock = SystemClock(timezone.utc, sync_flag=flag, boot_id=tmp_path / "no-boot-id",
                        chrony=ChronySource(run=lambda c: ""), rtc=RtcSource(rtc_folder(tmp_path, now), ttl=0),
                        rtc_boot_window_s=None)
    assert {s.name: s for s in clock.time_sources()}["rtc"].at is not None
    flag.write_text("")
    assert {s.name: s for s in clock.time_sources()}["rtc"].at is None
    flag.unlink()
    clock.rtc_boot_window_s = 0.0  # this machine has been up longer than the window
    assert {s.name: s for s in clock.time_sources()}["rtc"].at is None
