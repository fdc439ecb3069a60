"""Authenticated cartridges through the CLI: `pendock sim cartridge` with --forged,
--clone-of and --reset-counter against a running simulated dock whose demo maker key
was made in its data folder at first start."""
from __future__ import annotations

import sqlite3

CHECKLIST = "screened,test-area"


def ready(demo, *fit):
    demo.ok("sim", "cartridge", *fit)
    result = demo.run("next-client", "BK-7", "--area", "face", "--checklist", CHECKLIST)
    return demo.status(), result


def assert_held_for_good(demo, code):
    status = demo.status()
    assert status["held"] and code in status["locks"], status
    refused = demo.run("override", code, "--reason", "the rep said it is fine")
    assert refused.returncode != 0 and "never" in (refused.stdout + refused.stderr)
    assert demo.status()["held"]


def test_genuine_frees_and_says_authenticated(demo):
    status, _ = ready(demo, "--serial", "5001")
    assert not status["held"], status
    assert status["cartridge"]["authenticated"] is True
    assert "cartridge_unverified" not in status["warnings"]
    assert (demo.data / "sim-maker-key.pem").stat().st_mode & 0o077 == 0  # the demo maker's secret
    assert (demo.data / "makers" / "demo-maker.pem").read_text().startswith("-----BEGIN PUBLIC KEY")
    demo.ok("sim", "undock")
    demo.ok("sim", "needle", "--minutes", "20", "--depth", "1.0")
    demo.ok("sim", "dock")
    session = demo.json("log")[0]
    assert (session["cartridge_auth"], session["cartridge_counter"]) == ("authentic", 16)


def test_forged_is_held_never_overridable(demo):
    status, _ = ready(demo, "--forged")
    assert status["cartridge"]["authenticated"] is False
    assert_held_for_good(demo, "cartridge_unauthentic")
    assert status["light"] == "red"


def test_a_clone_of_a_genuine_cartridge_is_held(demo):
    demo.ok("sim", "cartridge", "--serial", "6001")
    assert demo.status()["cartridge"]["authenticated"] is True
    demo.ok("sim", "cartridge", "--remove")
    status, _ = ready(demo, "--clone-of", "6001")
    assert status["cartridge"]["serial"] == 6001 and status["cartridge"]["authenticated"] is False
    assert_held_for_good(demo, "cartridge_unauthentic")


def test_a_reset_counter_is_a_reused_cartridge_even_with_no_session_on_record(demo):
    demo.ok("sim", "cartridge", "--serial", "7001")
    demo.ok("sim", "cartridge", "--remove")
    status, _ = ready(demo, "--serial", "7001")  # the same cartridge back on: counter went down
    assert not status["held"], status
    demo.ok("sim", "cartridge", "--reset-counter")
    status = demo.status()
    assert status["cartridge"]["authenticated"] is True  # a genuine chip, but ...
    assert_held_for_good(demo, "cartridge_reused")  # ... its counter did not go down
    with sqlite3.connect(demo.data / "pendock.db") as db:
        assert db.execute("SELECT lowest_counter FROM cartridge_chips WHERE cartridge_id = 7001").fetchone() == (15,)
    assert demo.run("audit", "verify").returncode == 0


def test_bad_sim_cartridge_arguments_are_refused_plainly(demo):
    for args in (["--clone-of", "abc"], ["--clone-of", "5", "--forged"]):
        result = demo.run("sim", "cartridge", *args)
        assert result.returncode == 2 and "Traceback" not in result.stderr, args
