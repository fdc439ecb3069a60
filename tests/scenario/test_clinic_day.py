"""Scenarios through the CLI against a running simulated dock (`pendock demo`)."""
from __future__ import annotations

import csv
import io
import sqlite3
from datetime import date, timedelta


def treat(demo, ref, area="face", minutes=25, depth=1.0, checklist="screened,test-area", strokes=None):
    """One whole session as a therapist does it: cartridge, client, lift, needle, back."""
    demo.ok("sim", "cartridge")
    result = demo.run("next-client", ref, "--area", area, "--checklist", checklist)
    assert result.returncode == 0, result.stdout + result.stderr
    demo.ok("sim", "undock")
    needle = ["sim", "needle", "--minutes", str(minutes), "--depth", str(depth)]
    if strokes is not None:
        needle += ["--strokes", str(strokes)]
    demo.ok(*needle)
    demo.ok("sim", "dock")


def test_the_pen_is_read_over_the_mock_spi_and_shown(demo):
    status = demo.status()
    assert status["docked"] and status["held"]
    assert set(status["locks"]) >= {"no_cartridge", "client_missing"}
    demo.ok("sim", "cartridge", "--serial", "4242")
    status = demo.status()
    assert status["pen"]["serial"] == 0x5EED0001
    assert status["pen"]["battery_mv"] == 4050
    assert status["cartridge"] == {"serial": 4242, "strokes": 0, "authenticated": True,
                                   "authentication": "authentic", "chip_counter": 16}
    assert "no_cartridge" not in status["locks"]
    for key in ("docked", "held", "locks", "warnings", "pen", "cartridge", "next_client", "session", "clock_synced"):
        assert key in status
    plain = demo.ok("status")
    assert "Pen HELD" in plain and "No client is named" in plain


def test_a_full_clinic_day(demo):
    clients = [("BK-101", "face"), ("BK-102", "neck"), ("BK-103", "hands"), ("BK-104", "face"),
               ("BK-105", "forehead"), ("BK-106", "body")]
    for minutes, (ref, area) in enumerate(clients, start=20):
        treat(demo, ref, area, minutes=minutes, depth=0.5)
        status = demo.status()
        assert status["held"] and "cartridge_reused" in status["locks"]  # the spent cartridge stays in
    sessions = demo.json("log")
    assert [s["client_ref"] for s in sessions] == [ref for ref, _ in reversed(clients)]
    for s, minutes in zip(sessions, range(25, 19, -1), strict=False):
        assert s["outcome"] == "completed"
        assert s["needling_seconds"] == minutes * 60
        assert s["strokes"] == minutes * 60 * 120
        assert s["max_depth_mm"] == 0.5
        assert s["ended_at"] > s["started_at"]
        assert s["next_eligible_date"] and s["recommended_date"]
    assert len({s["cartridge_serial"] for s in sessions}) == 6
    rows = list(csv.DictReader(io.StringIO(demo.ok("log", "--csv"))))
    assert [r["client_ref"] for r in rows] == [s["client_ref"] for s in sessions]
    assert demo.run("audit", "verify").returncode == 0


def test_a_spent_cartridge_is_refused_and_cannot_be_overridden(demo):
    demo.ok("sim", "cartridge", "--serial", "777")
    treat_with_cartridge = [("next-client", "BK-200", "--checklist", "screened,test-area")]
    for args in treat_with_cartridge:
        assert demo.run(*args).returncode == 0
    demo.ok("sim", "undock")
    demo.ok("sim", "needle", "--minutes", "10")
    demo.ok("sim", "dock")
    demo.ok("sim", "cartridge", "--remove")
    demo.ok("sim", "cartridge", "--serial", "777")  # the same cartridge put back on
    result = demo.run("next-client", "BK-201", "--checklist", "screened,test-area")
    assert result.returncode == 1
    status = demo.status()
    assert status["held"] and "cartridge_reused" in status["locks"]
    refused = demo.run("override", "cartridge_reused", "--reason", "it looks clean")
    assert refused.returncode == 1 and "never be overridden" in refused.stderr
    # A cartridge that says it has strokes on it is spent too, even if never seen here.
    demo.ok("sim", "cartridge", "--serial", "778", "--strokes", "5")
    assert "cartridge_reused" in demo.status()["locks"]
    demo.ok("sim", "cartridge")
    assert not demo.status()["held"]


def test_same_client_and_area_inside_21_days_is_held_a_different_area_is_not(demo):
    treat(demo, "BK-300", "face")
    demo.ok("sim", "clock", "--advance", "20d")
    demo.ok("sim", "cartridge")
    assert demo.run("next-client", "BK-300", "--area", "face", "--checklist", "screened,test-area").returncode == 1
    status = demo.status()
    assert status["locks"] == ["client_interval"]
    assert "client_interval" in demo.ok("status")
    # Another area of the same client is not held (only a short-interval warning for... none).
    assert demo.run("next-client", "BK-300", "--area", "neck", "--checklist", "screened,test-area").returncode == 0
    assert not demo.status()["held"]
    # Back to the face: a manager may override with a written reason, recorded on the session.
    demo.run("next-client", "BK-300", "--area", "face", "--checklist", "screened,test-area")
    assert demo.run("override", "client_interval", "--reason", "x").returncode == 2  # reason too short
    reason = ("--reason", "dermatologist approved an early touch-up")
    wrong = demo.run("override", "client_interval", *reason, stdin="manager\nnot-the-password\n")
    assert wrong.returncode == 2 and "name and password" in wrong.stderr and demo.status()["held"]
    manager = demo.run("override", "client_interval", *reason, stdin="manager\npendock-demo\n")
    assert manager.returncode == 0, manager.stderr
    status = demo.status()
    assert not status["held"] and status["overridden"] == ["client_interval"]
    demo.ok("sim", "undock")
    demo.ok("sim", "needle", "--minutes", "15")
    demo.ok("sim", "dock")
    latest = demo.json("log")[0]
    assert latest["client_ref"] == "BK-300" and latest["area"] == "face"
    assert latest["overrides"] == ["client_interval"]


def test_21_days_later_the_client_is_free_and_28_days_later_without_warning(demo):
    treat(demo, "BK-310", "face")
    demo.ok("sim", "clock", "--advance", "21d")
    demo.ok("sim", "cartridge")
    assert demo.run("next-client", "BK-310", "--checklist", "screened,test-area").returncode == 0
    assert demo.status()["warnings"] == ["interval_short"]
    demo.ok("sim", "clock", "--advance", "7d")
    assert demo.status()["warnings"] == []


def test_over_needling_and_depth_high_are_warned_on_the_closed_session(demo):
    treat(demo, "BK-400", "face", minutes=30, depth=1.5)
    treat(demo, "BK-401", "face", minutes=31, depth=1.55)
    newest, older = demo.json("log")[:2]
    assert set(newest["warnings"]) >= {"over_needling", "depth_high"}
    assert "over_needling" not in older["warnings"] and "depth_high" not in older["warnings"]


def test_the_latch_is_real_forced_removal_is_recorded(demo):
    refused = demo.run("sim", "undock")
    assert refused.returncode == 1 and "latch holds the pen" in refused.stderr
    demo.ok("sim", "undock", "--force")
    status = demo.status()
    assert status["session"]["forced"] is True
    demo.ok("sim", "dock")
    session = demo.json("log")[0]
    assert "forced_removal" in session["warnings"]


def test_a_kill_9_mid_session_leaves_it_interrupted_and_the_pen_held(demo):
    demo.ok("sim", "cartridge")
    demo.ok("next-client", "BK-500", "--checklist", "screened,test-area")
    demo.ok("sim", "undock")
    demo.kill9()
    demo.start()
    sessions = demo.json("log")
    assert sessions[0]["client_ref"] == "BK-500" and sessions[0]["outcome"] == "interrupted"
    demo.ok("sim", "dock")
    status = demo.status()
    assert status["held"] and "cartridge_reused" in status["locks"]
    with sqlite3.connect(demo.data / "pendock.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert demo.run("audit", "verify").returncode == 0


def test_faults_hold_the_pen_and_clear(demo):
    demo.ok("sim", "cartridge")
    demo.ok("next-client", "BK-600", "--checklist", "screened,test-area")
    for fault, code in (("crc", "readout_error"), ("stall", "pen_fault"), ("overtemp", "pen_fault"),
                        ("chip", "pen_fault"), ("battery-low", "battery_low")):
        demo.ok("sim", "fault", fault)
        status = demo.status()
        assert status["held"] and code in status["locks"], (fault, status["locks"])
        demo.ok("sim", "fault", "clear")
        assert not demo.status()["held"], fault


def test_bad_input_is_refused_with_exit_2_and_nothing_changes(demo):
    before = demo.status()
    for args in (("next-client", "Jane Doe"), ("next-client", "x" * 33), ("next-client", "BK-1", "--area", "elbow"),
                 ("next-client", "BK-1", "--checklist", "screened,maybe"), ("log", "--date", "2026-13-01"),
                 ("sim", "fly"), ("sim", "fault", "gremlins"), ("sim", "clock", "--advance", "soon"),
                 ("sim", "needle", "--minutes", "ten"), ("override", "no_such_code", "--reason", "because so"),
                 ("frobnicate",), ("log", "--json", "--csv")):
        result = demo.run(*args)
        assert result.returncode == 2, (args, result.returncode, result.stdout, result.stderr)
        assert result.stderr.strip(), args
        assert "Traceback" not in result.stderr
    after = demo.status()
    assert after["locks"] == before["locks"] and after["next_client"] == before["next_client"]
    assert "never a name" in demo.run("next-client", "Jane Doe").stderr or "space" in demo.run("next-client", "Jane Doe").stderr


def test_a_verb_without_a_daemon_says_so(tmp_path):
    from tests.scenario.conftest import Demo

    lonely = Demo(tmp_path / "nothing")
    result = lonely.run("status")
    assert result.returncode == 2 and "no pen-dock daemon answers" in result.stderr


def test_audit_verify_finds_a_tampered_entry(demo):
    treat(demo, "BK-700")
    assert demo.run("audit", "verify").returncode == 0
    db = sqlite3.connect(demo.data / "pendock.db")
    try:
        triggers = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='trigger'")]
        for name in triggers:  # a tamperer with file access drops the guards first
            db.execute(f"DROP TRIGGER {name}")
        target = db.execute("SELECT id FROM audit WHERE action = 'session_opened'").fetchone()[0]
        db.execute("UPDATE audit SET detail = replace(detail, 'BK-700', 'BK-999') WHERE id = ?", (target,))
        db.commit()
    finally:
        db.close()
    result = demo.run("audit", "verify")
    assert result.returncode == 1
    assert f"entry {target}" in result.stdout


def test_backup_restore_and_purge(demo, tmp_path):
    treat(demo, "BK-800")
    backup = tmp_path / "copy.db"
    demo.ok("backup", str(backup))
    assert backup.exists()
    assert demo.run("backup", str(backup)).returncode == 1  # never overwrites
    treat(demo, "BK-801")
    assert len(demo.json("log")) == 2
    demo.ok("restore", str(backup))
    # R5: a restore merges; the session after the backup is kept (tests/scenario/test_restore.py).
    assert [s["client_ref"] for s in demo.json("log")] == ["BK-801", "BK-800"]
    assert demo.run("audit", "verify").returncode == 0
    # Retention: what the interval and course rules still need is refused.
    assert demo.run("purge", "--before", demo.status()["today"]).returncode == 1
    demo.ok("sim", "clock", "--advance", "400d")
    today = date.fromisoformat(demo.status()["today"])
    cutoff = (today - timedelta(days=200)).isoformat()
    result = demo.json("purge", "--before", cutoff)
    assert result["purged"] == 2
    assert demo.run("audit", "verify").returncode == 0


def test_session_overrun_and_an_unsynced_clock_are_warned(demo):
    demo.ok("sim", "cartridge")
    demo.ok("next-client", "BK-900", "--checklist", "screened,test-area")
    demo.ok("sim", "clock", "--unsync")
    status = demo.status()
    assert not status["held"] and "clock_unsynced" in status["warnings"] and status["clock_synced"] is False
    demo.ok("sim", "undock")
    demo.ok("sim", "clock", "--advance", "89m")
    assert "session_overrun" not in demo.status()["warnings"]
    demo.ok("sim", "clock", "--advance", "2m")
    assert "session_overrun" in demo.status()["warnings"]
    demo.ok("sim", "dock")
    warnings = demo.json("log")[0]["warnings"]
    assert "session_overrun" in warnings and "clock_unsynced" in warnings


def test_a_missing_checklist_warns_and_the_course_completes_after_six(demo):
    for _ in range(6):
        treat(demo, "BK-950", "neck", minutes=20)
        demo.ok("sim", "clock", "--advance", "28d")
    demo.ok("sim", "cartridge")
    demo.ok("next-client", "BK-950", "--area", "neck")  # no checklist ticked
    status = demo.status()
    assert not status["held"]
    assert set(status["warnings"]) == {"course_complete", "checklist_missing"}


def test_selftest_passes_with_the_pen_held_free_and_away(demo):
    assert demo.run("selftest").returncode == 0  # held
    demo.ok("sim", "cartridge")
    demo.ok("next-client", "BK-990", "--checklist", "screened,test-area")
    result = demo.run("selftest")
    assert result.returncode == 0, result.stdout  # free: the latch stays released
    assert not demo.status()["held"]
    demo.ok("sim", "undock")
    out = demo.ok("selftest")
    assert "pulsed with no pen seated" in out and demo.status()["held"]


def test_the_readme_demo_needs_no_flags(tmp_path):
    """`make demo` then `pendock status` in another shell: no --data anywhere."""
    from tests.scenario.conftest import Demo

    runtime = tmp_path / "run"
    runtime.mkdir()
    demo = Demo(tmp_path / "unused")
    demo.env.pop("PENDOCK_DATA")
    demo.env.update(XDG_STATE_HOME=str(tmp_path / "state"), XDG_RUNTIME_DIR=str(runtime))
    demo.start()
    try:
        assert (tmp_path / "state" / "pendock-demo" / "pendock.db").exists()
        status = demo.status()
        assert status["docked"] and "no_cartridge" in status["locks"]
        demo.ok("sim", "cartridge")
        assert "no_cartridge" not in demo.status()["locks"]
    finally:
        demo.stop()
    assert not list(runtime.iterdir())  # the link to the socket is gone with the demo
