"""The dock with authenticated cartridges, in one process on the mock pins: whatever the
pen link brings back in place of a genuine answer to THIS dock's fresh challenge holds
the pen with cartridge_unauthentic (or cartridge_reused), and no override lifts it."""
from __future__ import annotations

import os

import pytest

from appliance.core.config import Cartridges, Config
from appliance.daemon.control import ControlError
from appliance.hardware import chipauth, simchip
from tests.support.inprocess import CHECKLIST, SimDock


def named(sim):
    return sim.call("next_client", ref="BK-9", area="face", checklist=CHECKLIST)


def held_with(sim, code):
    status = sim.status()
    assert status["held"] and code in status["locks"], status
    with pytest.raises(ControlError):
        sim.call("override", code=code, reason="the supplier says it is fine")
    assert sim.status()["held"]
    return status


class Tampering(simchip.PenChipSide):
    """A pen (or a box between pen and chip) that answers with `make(challenge)`."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def respond(self, state, challenge):  # noqa: D102 - see the class
        return self.make(state, challenge)


def tamper(sim, make):
    sim.sim.pen.chip_side = Tampering(make)


def refit(sim, serial):
    sim.call("sim.cartridge", remove=True)
    return sim.call("sim.cartridge", serial=serial)


def test_a_genuine_cartridge_frees_and_its_counter_is_on_record(sim):
    sim.call("sim.cartridge", serial=100)
    status = named(sim)
    assert not status["held"] and status["cartridge"]["authenticated"]
    assert sim.store.chip_counter_floor(100) == simchip.DEFAULT_USES
    verdicts = [(e.detail["chip"], e.detail["chip_counter"]) for e in sim.store.audit_entries(limit=50)
                if e.action in ("lock", "release") and "chip" in e.detail]
    assert verdicts == [("authentic", simchip.DEFAULT_USES)]  # once a check, not on every entry
    makers = [e.detail for e in sim.store.audit_entries(limit=50) if e.action == "cartridge_makers"]
    assert makers == [{"trusted": ["demo-maker"], "left_out": []}]


def test_the_chip_is_asked_once_per_fitting_not_on_every_poll(sim):
    sim.call("sim.cartridge", serial=110)
    for _ in range(5):
        sim.dock.settle()  # the dock reads the pen again, as it does every poll
    assert sim.sim.pen.state.chip["counter"] == simchip.DEFAULT_USES - 1  # one use spent
    sim.call("sim.undock", force=True)
    sim.call("sim.dock")  # docked again: asked again
    assert sim.sim.pen.state.chip["counter"] == simchip.DEFAULT_USES - 2


def test_a_replayed_answer_is_held(sim):
    sim.call("sim.cartridge", serial=101)
    recorded = sim.sim.pen.chip_side.pending  # the genuine answer to the last challenge
    tamper(sim, lambda state, challenge: recorded)
    refit(sim, 101)
    named(sim)
    held_with(sim, "cartridge_unauthentic")


def test_an_answer_relayed_from_another_docks_challenge_is_held(sim):
    def relay(state, challenge):
        nonce, _ = chipauth.decode_challenge(challenge)  # even the same nonce, another dock id
        return simchip.answer(state.chip, chipauth.encode_challenge(nonce, os.urandom(16)))

    tamper(sim, relay)
    sim.call("sim.cartridge", serial=102)
    named(sim)
    held_with(sim, "cartridge_unauthentic")


def test_a_chip_at_zero_is_held(sim):
    sim.sim.pen.state.chip_counters["103"] = 0
    sim.call("sim.cartridge", serial=103)
    named(sim)
    status = held_with(sim, "cartridge_unauthentic")
    assert status["cartridge"]["authenticated"] is False and status["light"] == "red"


def test_every_flipped_byte_of_the_answer_is_held(sim):
    flipped_at = {"index": 0}

    def flip(state, challenge):
        good = bytearray(simchip.answer(state.chip, challenge))
        good[flipped_at["index"]] ^= 0x01
        return bytes(good)

    tamper(sim, flip)
    named(sim)
    for index in range(chipauth.ANSWER_LENGTH):
        flipped_at["index"] = index
        refit(sim, 200 + index)
        status = sim.status()
        assert status["held"] and "cartridge_unauthentic" in status["locks"], (index, status["locks"])
        assert status["cartridge"]["authenticated"] is False
    assert sim.store.chip_counter_floor(200) is None  # nothing unauthentic reaches the record
    reasons = [e.detail.get("chip_reason") for e in sim.store.audit_entries(limit=1000) if "chip" in e.detail]
    assert len(reasons) >= chipauth.ANSWER_LENGTH and all(reasons)  # each one audited, with why


def test_a_session_carries_the_verdict_and_counter(sim):
    closed = sim.session_cycle("BK-10", minutes=5)
    row = sim.store.session(closed["id"])
    assert (row["cartridge_auth"], row["cartridge_counter"]) == ("authentic", simchip.DEFAULT_USES)
    # back in the cradle, the spent cartridge's chip answered again, one lower
    assert sim.store.chip_counter_floor(closed["cartridge_serial"]) == simchip.DEFAULT_USES - 1
    assert sim.store.verify_audit().ok


def test_a_pen_without_the_exchange_warns_or_holds_as_the_clinic_says(tmp_path):
    for required in (False, True):
        config = Config(cartridges=Cartridges(require_authentication=required))
        dock = SimDock(tmp_path / f"data-{required}", tmp_path / f"c{int(required)}.sock", config=config)
        try:
            dock.sim.pen.state.chip_link = False
            dock.call("sim.cartridge", serial=300)
            status = named(dock)
            where = status["locks"] if required else status["warnings"]
            assert "cartridge_unverified" in where and status["held"] == required, status
            assert status["cartridge"]["authenticated"] is False
        finally:
            dock.close()


def test_a_revoked_maker_no_longer_frees_its_cartridges(sim, tmp_path):
    from appliance.daemon.cartridge_check import CartridgeCheck

    (tmp_path / "makers").mkdir()  # the folder as it is after the maker's file was removed
    sim.dock.chips = CartridgeCheck(sim.dock.hw.pen, sim.store, tmp_path / "makers")
    sim.call("sim.cartridge", serial=400)
    named(sim)
    held_with(sim, "cartridge_unauthentic")
