"""The chip exchange over the pen link (mock SPI), against the simulated pen and chips:
the same two transactions a real pen answers (hw/cartridge_auth.toml)."""
from __future__ import annotations

import os
import time
from zoneinfo import ZoneInfo

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from appliance.hardware import chipauth
from appliance.hardware.devices import DockHardware
from appliance.hardware.pinmap import load_pinmap
from appliance.hardware.sim import SimClock, Simulator

DOCK = os.urandom(16)


@pytest.fixture
def rig():
    previous = Device.pin_factory
    factory = MockFactory()
    Device.pin_factory = factory
    pinmap = load_pinmap()
    sim = Simulator(pinmap, factory, SimClock(ZoneInfo("UTC")))
    hw = DockHardware.from_pinmap(pinmap, retries=2, pin_factory=factory)
    sim._drive_seat(True)
    trusted = chipauth.trusted_by_id({"demo": sim.chips.maker_key.public_key()})
    yield sim, hw, trusted
    hw.close()
    sim.pen.close()
    factory.reset()
    Device.pin_factory = previous


def exchange(hw, trusted, dock_id=DOCK):
    nonce = os.urandom(16)
    answer = hw.pen.challenge_chip(chipauth.encode_challenge(nonce, dock_id))
    return chipauth.verify(answer, nonce, DOCK, trusted)


def test_a_genuine_cartridge_answers_over_the_link_and_counts_down(rig):
    sim, hw, trusted = rig
    serial = sim.fit_cartridge(0xCAFE)
    first, second = exchange(hw, trusted), exchange(hw, trusted)
    assert (first.verdict, first.cartridge_id) == ("authentic", serial)
    assert second.counter == first.counter - 1
    sim.remove_cartridge()
    sim.fit_cartridge(0xCAFE)  # the same cartridge back: its chip remembers its counter
    assert exchange(hw, trusted).counter == second.counter - 1
    sim.reset_counter()
    assert exchange(hw, trusted).counter == first.counter  # as new: for the record to unmask


@pytest.mark.parametrize("how", ["forged", "clone"])
def test_forged_and_cloned_cartridges_are_unauthentic_over_the_link(rig, how):
    sim, hw, trusted = rig
    if how == "forged":
        sim.fit_cartridge(0xBEEF, forged=True)
    else:
        sim.fit_cartridge(clone_of=0xBEEF)
    assert exchange(hw, trusted).verdict == "unauthentic"


def test_an_answer_for_another_dock_is_unauthentic_here(rig):
    sim, hw, trusted = rig
    sim.fit_cartridge(7)
    assert exchange(hw, trusted, dock_id=os.urandom(16)).verdict == "unauthentic"


def test_a_pen_without_the_exchange_leaves_the_answer_blank(rig):
    sim, hw, trusted = rig
    sim.fit_cartridge(7)
    sim.pen.state.chip_link = False
    assert exchange(hw, trusted).verdict == "unverified"
    assert hw.pen.read().cartridge_serial == 7  # the frame itself is untouched


def test_the_exchange_costs_a_few_transfers(rig):
    sim, hw, trusted = rig
    sim.fit_cartridge(7)
    started = time.perf_counter()
    assert exchange(hw, trusted).verdict == "authentic"
    assert time.perf_counter() - started < 1.0
