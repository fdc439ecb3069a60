"""The facts behind each reason (status.reasons[].detail): dates, shares, hours, where seen."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from appliance.core.config import Config
from appliance.core.model import History, NextClient, PenReading, PenRecord, Treatment
from appliance.core.reason_facts import (CRADLE_CHARGE_MV_PER_MINUTE, CartridgeSeen, FactInputs, battery_share,
                                         charge_minutes, detail, pen_facts, sentence, sessions_left)

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc)
READING = PenReading(pen_serial=7, firmware="1.4", strokes=1000, motor_seconds=50 * 3600 + 360,
                     cartridge_serial=42, cartridge_strokes=120, max_depth_mm=0.5, battery_mv=3450,
                     temperature_c=61.0, faults=frozenset({"overtemp"}))
CLIENT = NextClient("C-1", "face", frozenset({"screened"}))


def inputs(**changes) -> FactInputs:
    base = dict(config=Config(), now=NOW, reading=READING, next_client=CLIENT,
                history=History(pen=PenRecord(7, 1000, 50 * 3600, 0),
                                treatments=(Treatment("C-1", "face", NOW - timedelta(days=10)),
                                            Treatment("C-1", "neck", NOW - timedelta(days=2)),
                                            Treatment("C-1", "face", NOW - timedelta(days=40)))))
    base.update(changes)
    return FactInputs(**base)


def test_client_interval_names_the_last_date_and_the_next_eligible_date():
    facts = detail("client_interval", inputs())
    assert facts["last_date"] == "2026-11-18" and facts["next_eligible_date"] == "2026-12-09"
    assert facts["days_since"] == 10 and facts["treatments_in_window"] == 2
    assert "2026-12-09" in sentence("client_interval", facts) and "2026-11-18" in sentence("client_interval", facts)


def test_battery_as_a_share_and_sessions_left():
    facts = detail("battery_low", inputs())
    assert facts["battery_percent"] == battery_share(3450) == 17
    assert facts["sessions_left"] == 0 and sessions_left(3900, 3600) == 3
    assert "17%" in sentence("battery_low", facts)


def test_a_low_pen_is_charging_in_the_cradle_with_the_minutes_to_go():
    """3450 mV against the 3600 mV minimum, at the cradle's rate: 150 mV to go."""
    facts = detail("battery_low", inputs())
    assert facts["charge_minutes"] == charge_minutes(3450, 3600) == -(-150 // CRADLE_CHARGE_MV_PER_MINUTE)
    assert charge_minutes(3600, 3600) == 0 and charge_minutes(3599, 3600) == 1
    words = sentence("battery_low", facts)
    assert "charging in the cradle" in words and f"about {facts['charge_minutes']} minutes to go" in words
    assert "frees the pen by itself" in words


def test_battery_low_says_to_leave_the_pen_charging_not_to_dock_it_again():
    from appliance.core.rules import describe

    text = describe("battery_low")
    assert "dock it again" not in text.action and "charging in the cradle" in text.action


def test_service_hours_and_pen_facts():
    facts = detail("service_due", inputs())
    assert facts["motor_hours_since_service"] == 50.1 and facts["hours_over"] == 0.1
    assert pen_facts(inputs())["hours_to_service"] == -0.1


def test_cartridge_seen_before_says_where_and_when():
    seen = CartridgeSeen(12, datetime(2026, 11, 20, 10, tzinfo=timezone.utc), "C-9")
    facts = detail("cartridge_reused", inputs(cartridge_seen=seen))
    assert facts["seen_session"] == 12 and facts["seen_date"] == "2026-11-20"
    assert "session 12 on 2026-11-20" in sentence("cartridge_reused", facts)


def test_faults_checklist_and_no_facts():
    assert detail("pen_fault", inputs())["faults"] == ["overtemp"]
    assert detail("checklist_missing", inputs())["missing"] == ["test-area"]
    assert detail("no_pen", inputs(reading=None)) == {}
    assert sentence("no_pen", {}) == ""


def test_the_status_carries_the_facts_in_each_reason():
    from appliance.core.model import Decision
    from appliance.daemon.status import present_status

    status = present_status(docked=True, released=False, decision=Decision(locks=("client_interval", "battery_low")),
                            reading=READING, next_client=CLIENT, light="red", now=NOW, tz=timezone.utc,
                            pin_factory="MockFactory", facts=inputs())
    interval, battery = status["reasons"]
    assert interval["detail"]["next_eligible_date"] == "2026-12-09" and "2026-12-09" in interval["detail_words"]
    assert battery["detail"]["battery_percent"] == 17
    assert status["pen"]["battery_percent"] == 17 and "hours_to_service" in status["pen"]
    bare = present_status(docked=True, released=False, decision=Decision(locks=("client_interval",)),
                          light="red", now=NOW, tz=timezone.utc, pin_factory="MockFactory")
    assert "detail" not in bare["reasons"][0]  # the presenter still works without facts
