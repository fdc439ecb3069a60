"""The shell's view of the wall clock: trusted only after NTP or a person, and only while it
keeps step with the monotonic clock; behind the record or jumping, never trusted."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from appliance.core.vouched import Vouch
from appliance.daemon.clockwatch import ClockWatch
from appliance.record.clocked import reanchored_start

T0 = datetime(2026, 3, 1, 9, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self, wall=T0, mono=100.0, synced=True):
        self.wall, self.mono, self.is_synced, self.syncs = wall, mono, synced, 1

    def now(self):
        return self.wall

    def monotonic(self):
        return self.mono

    def boot_id(self):
        return "boot-a"

    def synced(self):
        return self.is_synced

    def sync_mark(self):
        return self.syncs if self.is_synced else None

    def advance(self, seconds):
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def test_ntp_synced_and_keeping_step_is_known_right():
    clock = FakeClock()
    watch = ClockWatch(clock)
    clock.advance(3600)
    state = watch.observe()
    assert state.known_right and state.why == "ntp" and state.effective_now == clock.wall
    assert state.last_known_right == clock.wall


def test_a_forward_jump_is_not_trusted_and_the_rules_keep_the_monotonic_time():
    clock = FakeClock()
    watch = ClockWatch(clock)
    clock.wall += timedelta(days=4000)  # the wall alone
    clock.advance(60)
    state = watch.observe()
    assert not state.known_right and state.jumped and state.why == "unknown"
    assert state.effective_now == T0 + timedelta(seconds=60)


def test_a_new_ntp_sync_is_trusted_again():
    clock = FakeClock()
    watch = ClockWatch(clock)
    clock.wall += timedelta(days=30)
    assert not watch.observe().known_right
    clock.syncs += 1  # timesyncd touched its flag: a new synchronisation
    state = watch.observe()
    assert state.known_right and state.why == "ntp" and watch.take_became_right()
    assert not watch.take_became_right()  # once


def test_behind_vouched_time_is_not_trusted_even_when_ntp_says_synced():
    """Behind is judged against vouched time (kept beside the record), not against the
    record's own dates: a restored record dated in 2099 cannot hold every pen."""
    clock = FakeClock()
    kept = Vouch(T0 + timedelta(days=30), 0.0, "an-earlier-boot", True, "nts", grounded=True)
    watch = ClockWatch(clock, high_water=T0 + timedelta(days=3000), kept=kept)
    state = watch.observe()
    assert state.behind_record and not state.known_right
    assert state.effective_now >= T0 + timedelta(days=30)  # kept, plus this boot's monotonic time
    assert state.last_known_right == T0 + timedelta(days=3000)  # the record's latest trusted time
    assert not ClockWatch(clock, high_water=T0 + timedelta(days=3000)).observe().behind_record
    # Vouched time no authenticated source ever grounded proves nothing about the wall clock.
    ungrounded = Vouch(T0 + timedelta(days=30), 0.0, "an-earlier-boot", False, "first start")
    assert not ClockWatch(clock, kept=ungrounded).observe().behind_record


def test_unknown_from_boot_until_a_person_confirms():
    clock = FakeClock(synced=False)
    watch = ClockWatch(clock)
    assert watch.state.why == "unknown" and not watch.state.known_right
    clock.wall += timedelta(days=30)  # the person's time
    state = watch.confirm("person")
    assert state.known_right and state.why == "person"
    # A daemon restart within the same boot keeps the person's confirmation.
    clock.advance(600)
    again = ClockWatch(clock, confirmed=watch.confirmation())
    assert again.state.known_right and again.state.why == "person"


def test_reanchoring_same_boot_is_exact_and_after_a_reboot_is_the_latest_possible():
    wall, mono = T0 + timedelta(days=30), 5000.0
    same = {"boot_id": "boot-a", "started_mono": 1400.0}
    start, how = reanchored_start(same, "boot-a", wall, mono)
    assert how == "monotonic" and start == wall - timedelta(seconds=3600)
    other = {"boot_id": "boot-z", "started_mono": 4900.0}
    start, how = reanchored_start(other, "boot-a", wall, mono)
    assert how == "latest" and start == wall - timedelta(seconds=mono)  # this boot's start
