"""S7: no single source of time frees a pen early (through the CLI and the sim verbs,
against `pendock demo`).

Each test is one way the dock's idea of today was moved in the field: a person's
`clock set`, an NTP step nobody authenticated, a restored record. The interval, course
and retention rules count only the time the dock can vouch for (README "The clock").
"""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta

from tests.scenario.test_clinic_day import treat
from tests.scenario.test_clock import CHECKLIST, client_is_held_by_interval
from tests.scenario.test_restore import audit_actions

DAY = 86400


def minute_from_now(demo, **delta) -> str:
    now = datetime.fromisoformat(demo.status()["now"])
    return (now + timedelta(**delta)).strftime("%Y-%m-%dT%H:%M")


def sessions_of(demo, ref: str) -> int:
    db = sqlite3.connect(f"file:{demo.data / 'pendock.db'}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM sessions WHERE client_ref = ?", (ref,)).fetchone()[0]
    finally:
        db.close()


def test_a_persons_clock_set_forward_never_frees_a_client_treated_minutes_ago(demo):
    """Finding 1: `clock set <now + 21 days>` with the clock not known right freed CL-2."""
    treat(demo, "CL-2")
    demo.ok("sim", "clock", "--advance", "10m")
    demo.ok("sim", "clock", "--unsync")
    demo.ok("clock", "set", minute_from_now(demo, days=21), "--reason", "checked against my phone")
    clock = demo.json("clock")
    assert clock["why"] == "person"  # the date shown is the person's...
    assert datetime.fromisoformat(clock["vouched_until"]) < datetime.fromisoformat(clock["now"]) - timedelta(days=20)
    assert client_is_held_by_interval(demo, "CL-2")  # ...the rules count vouched time only
    reason = next(r for r in demo.status()["reasons"] if r["code"] == "client_interval")
    assert "vouch" in reason["detail_words"] and "CL-2/face" in reason["detail_words"]
    assert "pendock" not in reason["action"] + reason["detail_words"]  # words, never a shell command


def test_purge_after_a_persons_clock_set_ten_years_ahead_keeps_todays_sessions(demo):
    """Finding 1: `clock set <now + 10 years>` then `purge` deleted today's sessions."""
    treat(demo, "CL-3")
    demo.ok("sim", "clock", "--unsync")
    demo.ok("clock", "set", minute_from_now(demo, days=3653), "--reason", "typed the wrong year")
    result = demo.run("purge")  # refused (the clock is not known right) or nothing purged
    assert result.returncode == 1 or json.loads(demo.ok("--json", "purge"))["purged"] == 0, result.stderr
    shown_today = datetime.fromisoformat(demo.status()["now"]).date()
    assert demo.run("purge", "--before", (shown_today - timedelta(days=200)).isoformat()).returncode == 1
    assert sessions_of(demo, "CL-3") == 1


def test_ntp_bringing_back_the_true_time_after_a_forward_clock_set_frees_no_pen_and_holds_none(demo):
    """Finding 2: after a forward `clock set`, NTP's true time left every pen held and
    `clock set <true time>` was refused as earlier than the record."""
    demo.ok("sim", "clock", "--unsync")
    demo.ok("clock", "set", minute_from_now(demo, days=30), "--reason", "wrong month typed")
    treat(demo, "CL-4")  # dated by the mistaken clock
    # A person corrects the mistake: not refused as "earlier than the record".
    demo.ok("clock", "set", minute_from_now(demo, days=-30), "--reason", "the month was wrong, now checked")
    assert "clock_unsynced" not in demo.status()["locks"]
    demo.ok("clock", "set", minute_from_now(demo, days=30), "--reason", "wrong month typed again")
    demo.ok("sim", "clock", "--jump=-30d")
    demo.ok("sim", "clock", "--sync")  # plain NTP brings back the true time
    status = demo.status()
    assert "clock_unsynced" not in status["locks"]
    treat(demo, "CL-5")  # another client is treated: the dock works
    assert client_is_held_by_interval(demo, "CL-4")  # and CL-4 is still held (minutes ago)
    assert demo.run("audit", "verify").returncode == 0


def test_an_authenticated_source_re_anchors_what_a_forward_mistake_dated(demo):
    """Finding 2, recovery: once an authenticated source gives the true time, sessions
    dated by the mistaken clock are moved back (audited) and the dock works."""
    demo.ok("sim", "clock", "--unsync")
    demo.ok("clock", "set", minute_from_now(demo, days=400), "--reason", "wrong year typed")
    treat(demo, "CL-6")
    assert demo.json("log", "--date", minute_from_now(demo)[:10])[0]["client_ref"] == "CL-6"
    demo.ok("sim", "clock", "--jump=-400d")
    demo.ok("sim", "clock", "--sync", "--authenticated")
    assert "clock_unsynced" not in demo.status()["locks"]
    log = demo.json("log")  # today's, by the true clock: the session came back to today
    assert [s["client_ref"] for s in log] == ["CL-6"]
    assert "clock_reanchored" in audit_actions(demo)
    assert client_is_held_by_interval(demo, "CL-6")
    treat(demo, "CL-7")


def future_docks_backup(tmp_path):
    """A genuine backup of another dock whose clock stood in 2099 (not known to be right)
    when it recorded one session for CL-9: every row covered by its own audit trail."""
    from appliance.record.store import Store
    from tests.unit.test_store import close, reading

    started = datetime.fromisoformat("2099-12-08T08:00:00+00:00")
    with Store.open(tmp_path / "future-dock") as other:
        other.register_pen(reading(serial=4242), started - timedelta(days=30), "dock", True)
        session = other.open_session(started_at=started, client_ref="CL-9", area="face", pen_serial=4242,
                                     cartridge_serial=9099, strokes_start=1, motor_seconds_start=1,
                                     clock_synced=False)
        close(other, session, started + timedelta(minutes=30))
        other.backup_to(tmp_path / "future.db")
    return tmp_path / "future.db"


def test_a_restored_record_dated_in_the_future_holds_no_other_client(demo, tmp_path):
    """Finding 2: restoring a backup holding one session dated 2099 held every pen after
    the next restart."""
    treat(demo, "CL-8")
    backup = future_docks_backup(tmp_path)
    demo.ok("restore", str(backup))
    demo.stop()
    demo.start()
    status = demo.status()
    assert "clock_unsynced" not in status["locks"]
    treat(demo, "CL-10")  # any other client: the dock works
    assert client_is_held_by_interval(demo, "CL-9")  # its own client only, until the time is vouched
    demo.ok("sim", "clock", "--sync", "--authenticated")
    assert "clock_unsynced" not in demo.status()["locks"]
    assert "clock_reanchored" in audit_actions(demo)  # the 2099 session came back to now, audited
    assert sorted(s["client_ref"] for s in demo.json("log")) == ["CL-10", "CL-8", "CL-9"]
    assert client_is_held_by_interval(demo, "CL-9")


def test_a_forward_ntp_step_within_one_boot_frees_no_client(demo):
    """Finding 3: `sim clock --jump=21d; sim clock --sync` freed a client treated an hour
    earlier: plain NTP is unauthenticated, and this boot's monotonic clock measured 1 h."""
    treat(demo, "CL-11")
    demo.ok("sim", "clock", "--advance", "1h")
    demo.ok("sim", "clock", "--jump=21d")
    demo.ok("sim", "clock", "--sync")
    clock = demo.json("clock")
    assert clock["known_right"] is True and clock["why"] == "ntp"  # the shown date follows NTP
    assert client_is_held_by_interval(demo, "CL-11")
    sources = {s["name"]: s for s in clock["sources"]}
    assert sources["ntp"]["authenticated"] is False and sources["ntp"]["moves_vouched_time"] is False
    assert sources["nts"]["authenticated"] is True and sources["nts"]["has_time"] is False
    plain = demo.ok("clock")
    assert "Vouched for up to" in plain and "ntp" in plain


def test_within_one_boot_even_an_authenticated_step_does_not_add_time(demo):
    """Within one boot the monotonic clock decides elapsed time: a step of the wall clock
    that it did not measure frees no one, whoever announces it; vouched time follows the
    authenticated source and the session moves with it."""
    demo.ok("sim", "clock", "--sync", "--authenticated")
    treat(demo, "CL-12")
    demo.ok("sim", "clock", "--jump=22d")
    demo.ok("sim", "clock", "--sync", "--authenticated")
    clock = demo.json("clock")
    assert {s["name"]: s for s in clock["sources"]}["nts"]["authenticated"] is True
    assert abs(datetime.fromisoformat(clock["vouched_until"]) - datetime.fromisoformat(clock["now"])) < timedelta(minutes=2)
    assert client_is_held_by_interval(demo, "CL-12")
    demo.ok("sim", "clock", "--advance", "21d")  # time the monotonic clock measures
    demo.ok("sim", "cartridge")
    assert demo.run("next-client", "CL-12", "--checklist", CHECKLIST).returncode == 0


def test_a_reboot_counts_the_unaccounted_time_as_not_passed_until_a_trusted_source(tmp_path):
    """Across a reboot, time the dock cannot account for has not passed; the hold says so
    and names the way out; an authenticated source ends it."""
    from tests.scenario.test_clock import demo_booting_with

    demo = demo_booting_with(tmp_path / "data", days=0, synced=True)
    try:
        demo.ok("sim", "clock", "--sync", "--authenticated")  # NTS dates the session exactly
        treat(demo, "CL-13")
    finally:
        demo.stop()
    demo = demo_booting_with(tmp_path / "data", days=25, synced=True)  # powered off 25 days (plain NTP)
    try:
        assert client_is_held_by_interval(demo, "CL-13")
        reason = next(r for r in demo.status()["reasons"] if r["code"] == "client_interval")
        assert "vouch" in reason["detail_words"] and "manager" in reason["action"] + reason["detail_words"]
        demo.ok("sim", "clock", "--sync", "--authenticated")
        demo.ok("sim", "cartridge")
        assert demo.run("next-client", "CL-13", "--checklist", CHECKLIST).returncode == 0
    finally:
        demo.stop()


def test_a_dock_whose_clock_was_a_year_ahead_at_its_first_start_is_not_bricked(tmp_path):
    """A forward mistake before any trusted source: vouched time started from that clock,
    so it proves nothing about the true time; a person sets the true date, every pen
    works again, and what was measured still holds the client treated minutes ago."""
    from tests.scenario.test_clock import demo_booting_with

    demo = demo_booting_with(tmp_path / "data", days=365, synced=False)
    try:
        treat(demo, "CL-14")
        demo.ok("clock", "set", minute_from_now(demo, days=-365), "--reason", "the year was wrong")
        status = demo.status()
        assert "clock_unsynced" not in status["locks"]
        treat(demo, "CL-15")
        assert client_is_held_by_interval(demo, "CL-14")
    finally:
        demo.stop()


def test_a_session_dated_by_a_clock_set_back_counts_from_the_vouched_time(demo):
    """The date shown can be behind the true time (a person's mistake before any trusted
    source); the interval counts from the time the dock vouched for at the session."""
    demo.ok("sim", "clock", "--unsync")
    demo.ok("clock", "set", minute_from_now(demo, days=-30), "--reason", "typed the wrong month")
    treat(demo, "CL-16")  # shown as treated 30 days ago
    demo.ok("clock", "set", minute_from_now(demo, days=30), "--reason", "the month corrected")
    assert client_is_held_by_interval(demo, "CL-16")  # treated minutes ago, by vouched time


def test_retention_never_ages_a_session_by_the_date_shown(demo):
    """A session shown 11 years ago (a person's wrong date) is minutes old by vouched time:
    retention keeps it."""
    demo.ok("sim", "clock", "--unsync")
    demo.ok("clock", "set", minute_from_now(demo, days=-4000), "--reason", "typed the wrong year")
    treat(demo, "CL-17")
    result = demo.run("--json", "purge")
    assert result.returncode == 0, result.stderr
    assert sessions_of(demo, "CL-17") == 1
