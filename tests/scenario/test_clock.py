"""R6: the clock cannot free a pen early (through the CLI, against `pendock demo`).

A Raspberry Pi has no real-time clock: after a power cut it boots with the last saved time
until NTP answers. A dock whose simulated clock starts 30 days behind is that Pi.
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from appliance.core.config import Config
from tests.scenario.conftest import Demo
from tests.scenario.test_clinic_day import treat

CHECKLIST = "screened,test-area"
DAY = 86400


def to_eight_today() -> float:
    """Seconds from now to 08:00 today in the demo's zone: the right time in these tests,
    like the demo's `--start-at 08:00`, so a test day never runs past midnight into an
    empty "today" whenever the suite runs."""
    now = datetime.now(ZoneInfo(Config().dock.timezone))
    return (now.replace(hour=8, minute=0, second=0, microsecond=0) - now).total_seconds()


def demo_booting_with(data, *, days: float, synced: bool) -> Demo:
    """A demo whose wall clock reads `days` off the right time (a Pi without its RTC)."""
    data.mkdir(parents=True, exist_ok=True)
    state = data / "sim-pen.json"
    saved = json.loads(state.read_text()) if state.exists() else {}
    shift = to_eight_today()
    saved["_clock"] = {"wall_offset": days * DAY + shift, "synced": synced}
    state.write_text(json.dumps(saved))
    demo = Demo(data).start()
    demo.right_time_shift = shift
    return demo


def right_minute(demo) -> str:
    """What a person reads off a correct watch: the right time of these tests' world."""
    tz = ZoneInfo(demo.status()["timezone"])
    right = datetime.now(tz) + timedelta(seconds=demo.right_time_shift)
    return right.strftime("%Y-%m-%dT%H:%M")


def dock_minute(demo) -> str:
    """The demo's own wall clock to the minute: what a person reads off a correct watch when
    the simulated clock is right (the demo starts its day at 08:00, not at the real time)."""
    return datetime.fromisoformat(demo.status()["now"]).strftime("%Y-%m-%dT%H:%M")


def client_is_held_by_interval(demo, ref: str) -> bool:
    demo.ok("sim", "cartridge")
    result = demo.run("next-client", ref, "--checklist", CHECKLIST)
    status = demo.status()
    return result.returncode == 1 and status["held"] and "client_interval" in status["locks"]


@pytest.fixture
def slow_pi(tmp_path):
    """Booted 30 days behind, clock not known to be right."""
    demo = demo_booting_with(tmp_path / "data", days=-30, synced=False)
    yield demo
    demo.stop()


def test_a_session_under_a_wrong_clock_cannot_lapse_when_a_person_sets_the_clock(slow_pi):
    treat(slow_pi, "BK-600")  # released with a warning: nothing on the record says the clock is wrong
    assert "clock_unsynced" in slow_pi.json("log")[0]["warnings"]
    clock = slow_pi.json("clock")
    assert clock["known_right"] is False and clock["why"] == "unknown"
    slow_pi.ok("clock", "set", right_minute(slow_pi), "--reason", "checked against my phone")
    clock = slow_pi.json("clock")
    assert clock["known_right"] is True and clock["why"] == "person"
    assert client_is_held_by_interval(slow_pi, "BK-600")
    session = slow_pi.json("log")[0]  # re-anchored onto the corrected clock: dated today
    assert session["client_ref"] == "BK-600"
    assert session["started_at"][:10] == slow_pi.status()["today"]


def test_a_session_under_a_wrong_clock_cannot_lapse_when_ntp_corrects_it(slow_pi):
    treat(slow_pi, "BK-601")
    slow_pi.ok("sim", "clock", "--jump=30d")  # NTP steps the clock to the right time...
    slow_pi.ok("sim", "clock", "--sync")  # ...and says it is synchronised
    assert slow_pi.json("clock")["why"] == "ntp"
    assert client_is_held_by_interval(slow_pi, "BK-601")


def test_with_a_reboot_between_the_uncertain_time_counts_as_the_latest_it_could_be(tmp_path):
    demo = demo_booting_with(tmp_path / "data", days=-30, synced=False)
    try:
        treat(demo, "BK-602")
    finally:
        demo.stop()
    demo = demo_booting_with(tmp_path / "data", days=0, synced=True)  # next boot, NTP answers
    try:
        assert client_is_held_by_interval(demo, "BK-602")
        assert demo.run("audit", "verify").returncode == 0
    finally:
        demo.stop()


def test_a_clock_behind_the_record_holds_the_pen(demo):
    demo.ok("sim", "clock", "--sync", "--authenticated")  # vouched time grounded by NTS
    treat(demo, "BK-610")
    demo.ok("sim", "clock", "--jump=-30d")
    demo.ok("sim", "cartridge")
    assert demo.run("next-client", "BK-611", "--checklist", CHECKLIST).returncode == 1
    status = demo.status()
    assert status["held"] and "clock_unsynced" in status["locks"]
    reason = next(r for r in status["reasons"] if r["code"] == "clock_unsynced")
    assert reason["kind"] == "lock" and "manager" in reason["action"]
    assert "pendock" not in reason["action"]  # words for the therapist's page, never a command
    # The README's form without '=' is accepted too; 30 days more behind still holds.
    demo.ok("sim", "clock", "--jump", "-1d")
    assert "clock_unsynced" in demo.status()["locks"]


def test_a_forward_jump_the_monotonic_clock_does_not_confirm_is_not_trusted(demo):
    treat(demo, "BK-620")
    demo.ok("sim", "clock", "--jump=4000d")
    status = demo.status()
    assert status["clock_synced"] is False and "clock_unsynced" in status["warnings"] + status["locks"]
    clock = demo.json("clock")
    assert clock["known_right"] is False and clock["jumped"] is True
    # The interval rule keeps the monotonic clock's time: the client is still too recent.
    assert client_is_held_by_interval(demo, "BK-620")
    # Retention (the default purge) and an explicit purge keep today's session.
    assert demo.run("purge").returncode == 1
    jumped_today = datetime.fromisoformat(demo.status()["now"]).date()
    assert demo.run("purge", "--before", (jumped_today - timedelta(days=200)).isoformat()).returncode == 1
    db = sqlite3.connect(f"file:{demo.data / 'pendock.db'}?mode=ro", uri=True)
    try:
        assert db.execute("SELECT count(*) FROM sessions WHERE client_ref = 'BK-620'").fetchone()[0] == 1
    finally:
        db.close()


def test_time_that_really_passes_frees_the_client(demo):
    """The negative control: the same 30 days, confirmed by the monotonic clock."""
    treat(demo, "BK-630")
    demo.ok("sim", "clock", "--advance", "30d")
    demo.ok("sim", "cartridge")
    assert demo.run("next-client", "BK-630", "--checklist", CHECKLIST).returncode == 0
    assert demo.json("clock")["known_right"] is True


def test_clock_shows_why_it_is_trusted_and_set_is_audited(demo):
    clock = demo.json("clock")
    assert clock["known_right"] is True and clock["why"] == "ntp"
    assert clock["last_known_right"] and clock["now"] and clock["boot_id"]
    plain = demo.ok("clock")
    assert "known to be right" in plain
    demo.ok("clock", "set", dock_minute(demo), "--reason", "checked against the wall clock")
    assert demo.json("clock")["why"] == "person"
    db = sqlite3.connect(f"file:{demo.data / 'pendock.db'}?mode=ro", uri=True)
    try:
        actions = [r[0] for r in db.execute("SELECT action FROM audit ORDER BY id")]
    finally:
        db.close()
    assert "clock_set" in actions
    assert demo.run("audit", "verify").returncode == 0


def test_clock_set_refuses_bad_input_and_a_time_behind_the_record(demo):
    before = demo.json("clock")["now"]
    for args in (["clock", "set", "2026-13-01T10:00", "--reason", "typo test"],
                 ["clock", "set", "tomorrow", "--reason", "typo test"],
                 ["clock", "set", dock_minute(demo)],  # no reason
                 ["clock", "set", dock_minute(demo), "--reason", ""]):
        result = demo.run(*args)
        assert result.returncode == 2, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) <= 2
    demo.ok("sim", "clock", "--sync", "--authenticated")  # vouched time grounded by NTS
    treat(demo, "BK-640")
    earlier = (datetime.fromisoformat(demo.status()["now"]) - timedelta(days=3)).strftime("%Y-%m-%dT%H:%M")
    result = demo.run("clock", "set", earlier, "--reason", "set it back three days")
    assert result.returncode == 1 and "record" in result.stderr
    assert abs(datetime.fromisoformat(demo.json("clock")["now"]) - datetime.fromisoformat(before)) < timedelta(hours=1)


def test_bad_clock_jumps_and_an_empty_purge_date_are_refused_with_nothing_applied(demo):
    treat(demo, "BK-650")
    now = datetime.fromisoformat(demo.status()["now"])
    for args in (["sim", "clock", "--jump", "3000000d"], ["sim", "clock", "--jump=-3000000d"],
                 ["sim", "clock", "--advance", "3000000d"], ["purge", "--before", ""]):
        result = demo.run(*args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    status = demo.status()  # every verb still works, and the clock did not move
    assert abs(datetime.fromisoformat(status["now"]) - now) < timedelta(minutes=5)
    assert [s["client_ref"] for s in demo.json("log")] == ["BK-650"]
