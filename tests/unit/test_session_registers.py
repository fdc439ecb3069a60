"""Session registers (frame v2): the session-open transaction, the simulated pen's side of
it, the dock's bookkeeping, and the depth scenario on an in-process simulated dock."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from hypothesis import given
from hypothesis import strategies as st

from appliance.daemon.session_registers import SessionRegisters
from appliance.hardware import frame, session_link
from appliance.hardware.devices import DockHardware
from appliance.hardware.pinmap import load_pinmap
from appliance.hardware.sim import PenState, SimClock, Simulator
from tests.support.inprocess import SimDock


# --- the transaction ----------------------------------------------------------------------

def test_the_request_is_command_tag_and_crc():
    data = session_link.request(0x01020304)
    assert data[:5] == bytes([0x53, 1, 2, 3, 4])
    assert int.from_bytes(data[5:], "big") == frame.crc16(data[:5])
    assert session_link.SESSION_OPEN.command != frame.READ_COMMAND


@given(st.integers(1, 2**32 - 1))
def test_the_pen_parses_what_the_dock_sends(tag):
    assert session_link.parse(session_link.request(tag)) == tag


@pytest.mark.parametrize("damage", ["crc", "command", "short", "zero"])
def test_the_pen_ignores_a_damaged_or_foreign_request(damage):
    data = bytearray(session_link.request(77))
    if damage == "crc":
        data[-1] ^= 1
    elif damage == "command":
        data[0] = frame.READ_COMMAND
    elif damage == "short":
        del data[-1]
    else:
        data[1:5] = bytes(4)
        data[5:] = frame.crc16(bytes(data[:5])).to_bytes(2, "big")
    assert session_link.parse(bytes(data)) is None


@pytest.mark.parametrize("tag", [0, -1, 2**32])
def test_a_tag_out_of_range_is_refused(tag):
    with pytest.raises(ValueError, match="session tag"):
        session_link.request(tag)


def test_new_tags_are_never_zero():
    assert all(0 < session_link.new_tag() < 2**32 for _ in range(1000))


# --- the simulated pen over the mock SPI ----------------------------------------------------

@pytest.fixture
def rig():
    factory = MockFactory()
    previous, Device.pin_factory = Device.pin_factory, factory
    pinmap = load_pinmap()
    sim = Simulator(pinmap, factory, SimClock(ZoneInfo("UTC")))
    hw = DockHardware.from_pinmap(pinmap, retries=1, pin_factory=factory)
    yield sim, hw
    hw.close()
    sim.pen.close()
    factory.reset()
    Device.pin_factory = previous


def test_a_v2_pen_zeroes_its_depth_and_reports_the_tag_after_a_session_open(rig):
    sim, hw = rig
    sim.pen.state.max_depth_mm = 2.0
    before = hw.pen.read()
    assert (before.frame_version, before.session_tag, before.max_depth_mm) == (2, None, 2.0)
    hw.pen.open_session(0xBEEF)
    after = hw.pen.read()
    assert (after.session_tag, after.max_depth_mm) == (0xBEEF, 0.0)
    assert after.strokes == before.strokes  # lifetime counters are not session registers


def test_a_v1_pen_ignores_the_session_open(rig):
    sim, hw = rig
    sim.pen.state = PenState(frame_version=1, max_depth_mm=2.0)
    hw.pen.open_session(0xBEEF)
    reading = hw.pen.read()
    assert (reading.frame_version, reading.session_tag, reading.max_depth_mm) == (1, None, 2.0)


def test_registers_open_once_per_dock_and_claim_only_a_tag_that_took():
    class Pen:
        sent: list[int] = []

        def open_session(self, tag):
            self.sent.append(tag)

    tags = iter([11, 12])
    registers, pen = SessionRegisters(new_tag=lambda: next(tags)), Pen()
    fresh = PenState().reading()
    assert registers.needs_opening(fresh) and registers.tag_for_session(fresh) is None
    assert registers.open(pen) == 11 and pen.sent == [11]
    took = PenState(session_tag=11).reading()
    assert not registers.needs_opening(took) and registers.tag_for_session(took) == 11
    assert registers.tag_for_session(PenState(session_tag=12).reading()) is None  # not ours
    assert not registers.needs_opening(PenState(frame_version=1).reading())  # v1 cannot be opened
    assert not registers.needs_opening(None)
    registers.forget()
    assert registers.needs_opening(took)  # a new dock: a new session, a new tag


# --- the depth scenario, in process --------------------------------------------------------

@pytest.fixture
def dock(tmp_path):
    dock = SimDock(tmp_path / "data", tmp_path / "s.sock", loop=False)
    yield dock
    dock.close()


def session(dock, ref, area, depth):
    dock.call("sim.cartridge")
    assert not dock.call("next_client", ref=ref, area=area, checklist="screened,test-area")["held"]
    dock.call("sim.undock")
    dock.call("sim.needle", minutes=10, depth=depth)
    return dock.call("sim.dock")["status"]["last_session"]


def test_eyes_at_0_4_after_body_at_2_0_closes_at_0_4_without_depth_high(dock):
    body = session(dock, "BK-1", "body", 2.0)
    assert (body["max_depth_mm"], body["warnings"]) == (2.0, [])
    eyes = session(dock, "BK-2", "eyes", 0.4)
    assert eyes["max_depth_mm"] == 0.4
    assert "depth_high" not in eyes["warnings"] and eyes["warnings"] == []


def test_a_pen_whose_registers_were_not_opened_closes_unmeasured(dock, monkeypatch):
    dock.call("sim.cartridge")
    dock.call("next_client", ref="BK-1", area="body", checklist="screened,test-area")
    dock.call("sim.undock")
    dock.call("sim.needle", minutes=10, depth=2.0)
    # From here the pen does not take a session-open (a bad contact on those bytes): its
    # depth register still holds the body session's 2.0 mm when the eyes session closes.
    monkeypatch.setattr(dock.sim.pen.state, "open_session", lambda tag: False)
    assert dock.call("sim.dock")["status"]["last_session"]["max_depth_mm"] == 2.0
    assert dock.status()["pen"]["session_registers"] is False
    dock.call("sim.cartridge")
    dock.call("next_client", ref="BK-2", area="eyes", checklist="screened,test-area")
    dock.call("sim.undock")
    dock.call("sim.needle", minutes=10, depth=0.4)
    eyes = dock.call("sim.dock")["status"]["last_session"]
    assert eyes["max_depth_mm"] is None
    assert eyes["warnings"] == ["depth_unmeasured"]


def test_a_v1_pen_is_read_flagged_and_its_sessions_record_no_depth(dock):
    dock.sim.pen.state.frame_version = 1
    dock.dock.settle()
    status = dock.status()
    assert status["pen"]["frame_version"] == 1 and status["pen"]["session_registers"] is False
    assert "pen_frame_v1" in status["warnings"]
    eyes = session(dock, "BK-3", "eyes", 0.4)
    assert eyes["max_depth_mm"] is None
    assert "depth_unmeasured" in eyes["warnings"] and "pen_frame_v1" in eyes["warnings"]


def test_the_page_shows_an_unmeasured_depth_as_not_measured_never_as_zero():
    from datetime import timezone

    from appliance.page.view import session_row

    row = {"id": 1, "started_at": "2026-11-28T10:00:00+00:00", "ended_at": "2026-11-28T10:20:00+00:00",
           "outcome": "completed", "warnings": ["depth_unmeasured"], "max_depth_mm": None}
    assert session_row(row, timezone.utc).depth == "not measured"
    assert session_row(dict(row, max_depth_mm=0.4), timezone.utc).depth == "0.40 mm"
    assert session_row(dict(row, outcome="open", ended_at=None), timezone.utc).depth == "-"
    assert session_row(row, timezone.utc).warnings[0].short == "Depth not measured"
