"""The dock's light as the page's band shows it (amber: waiting for you; red: stop), the
facts in the status of a running dock, and the clear_client verb."""
from __future__ import annotations


def test_the_spent_cartridge_is_a_wait_but_a_reused_one_is_a_stop(sim):
    first = sim.session_cycle("L-1", minutes=5)
    status = sim.status()
    assert "cartridge_reused" in status["locks"] and status["light"] == "amber"  # fit a new one: normal
    sim.session_cycle("L-2", minutes=5)  # another session, on a new cartridge
    sim.call("sim.cartridge", serial=str(first["cartridge_serial"]))  # the first one, fitted again
    status = sim.call("next_client", ref="L-3", area="face", checklist="screened,test-area")
    assert "cartridge_reused" in status["locks"] and status["light"] == "red"
    reused = next(r for r in status["reasons"] if r["code"] == "cartridge_reused")
    assert reused["detail"]["seen_session"] == first["id"] and "was on session" in reused["detail_words"]


def test_too_soon_is_a_stop_with_the_dates(sim):
    sim.session_cycle("L-3", minutes=5)
    sim.call("sim.cartridge")
    status = sim.call("next_client", ref="L-3", area="face", checklist="screened,test-area")
    assert status["locks"] == ["client_interval"] and status["light"] == "red"
    detail = status["reasons"][0]["detail"]
    assert detail["days_since"] == 0 and detail["next_eligible_date"] > detail["last_date"]
    assert status["pen"]["sessions_left"] >= 0 and "hours_to_service" in status["pen"]


def test_clear_the_next_client_holds_the_pen_and_is_audited(sim):
    assert not sim.ready_for_client("L-4")["held"]
    status = sim.call("clear_client")
    assert status["held"] and status["next_client"] is None and "client_missing" in status["locks"]
    assert status["light"] == "amber" and "next_client_cleared" in sim.audit_actions()


def test_a_running_session_says_its_limits(sim):
    assert not sim.ready_for_client("L-5")["held"]
    status = sim.call("sim.undock")["status"]
    assert status["session"]["needling_limit_seconds"] == 30 * 60
    assert status["session"]["overrun_limit_seconds"] == 90 * 60
