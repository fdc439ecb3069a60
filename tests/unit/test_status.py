"""The status presenter: the README's `status --json` keys, and the reason flag the page filters on."""
from __future__ import annotations

from datetime import datetime, timezone

from appliance.core.model import Decision, NextClient, PenReading
from appliance.daemon.status import present_status

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
READING = PenReading(pen_serial=42, firmware="1.4", strokes=1, motor_seconds=1, cartridge_serial=0,
                     cartridge_strokes=0, max_depth_mm=0.0, battery_mv=4050, temperature_c=24.5)
CONTRACT_KEYS = ["docked", "held", "locks", "warnings", "overridden", "reasons", "pen", "cartridge",
                 "next_client", "session", "last_session", "readout_error", "clock_synced",
                 "storage_ok", "light", "now", "today", "timezone", "pin_factory"]


def present(**values):
    base = dict(docked=True, released=False, decision=Decision(locks=("no_cartridge",)),
                reading=READING, light="red", now=NOW, tz=timezone.utc, pin_factory="MockFactory")
    return present_status(**{**base, **values})


def test_the_status_has_the_contracts_keys_in_order():
    status = present(next_client=NextClient("C-1", "face", frozenset({"screened"})))
    assert list(status) == CONTRACT_KEYS
    assert status["held"] is True and status["cartridge"] is None
    assert status["next_client"] == {"ref": "C-1", "area": "face", "checklist": ["screened"]}
    assert status["reasons"][0]["code"] == "no_cartridge" and status["reasons"][0]["kind"] == "lock"


def test_live_warnings_join_the_decisions_once():
    status = present(decision=Decision(warnings=("battery_low",)),
                     live_warnings=("battery_low", "session_overrun"))
    assert status["warnings"] == ["battery_low", "session_overrun"]


def test_only_no_pen_is_left_to_the_undocked_headline():
    status = present(docked=False, reading=None, decision=Decision(locks=("no_pen", "client_missing")))
    assert [(r["code"], r["shown_undocked"]) for r in status["reasons"]] == [
        ("no_pen", False), ("client_missing", True)]
