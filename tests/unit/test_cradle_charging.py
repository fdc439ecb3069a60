"""The cradle charges the pen (hw/README "Charging"): a pen held by `battery_low` is freed
by the dock itself once its reading reaches the minimum, with nobody doing anything."""
from __future__ import annotations

from appliance.core.reason_facts import BATTERY_FULL_MV


def battery_reason(status: dict) -> dict:
    return next(r for r in status["reasons"] if r["code"] == "battery_low")


def test_a_low_pen_charging_in_the_cradle_is_freed_by_itself(sim):
    assert not sim.ready_for_client("CH-1")["held"]
    status = sim.call("sim.fault", name="battery-low")["status"]
    assert status["held"] and "battery_low" in status["locks"]
    first = battery_reason(status)["detail"]
    assert first["charge_minutes"] > 10 and "charging in the cradle" in battery_reason(status)["detail_words"]

    status = sim.call("sim.clock", advance="10m")["status"]  # seated: charging, not there yet
    assert status["held"] and "battery_low" in status["locks"]
    assert battery_reason(status)["detail"]["charge_minutes"] == first["charge_minutes"] - 10

    status = sim.call("sim.clock", advance=f"{first['charge_minutes'] - 10}m")["status"]
    assert "battery_low" not in status["locks"] and not status["held"], status["locks"]
    assert status["pen"]["battery_mv"] >= sim.config.rules.battery_min_mv


def test_only_a_seated_pen_charges_and_never_past_full(sim):
    assert not sim.ready_for_client("CH-2")["held"]
    sim.call("sim.undock")
    before = sim.sim.pen.state.battery_mv
    sim.call("sim.clock", advance="30m")
    assert sim.sim.pen.state.battery_mv == before  # out of the cradle: no charger
    status = sim.call("sim.dock")["status"]
    status = sim.call("sim.clock", advance="5h")["status"]
    assert status["pen"]["battery_mv"] == BATTERY_FULL_MV
