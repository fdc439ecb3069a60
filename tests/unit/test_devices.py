"""The device layer on gpiozero's mock pins: latch, seat debounce, pen link retries."""
from __future__ import annotations

from zoneinfo import ZoneInfo

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.hardware import frame
from appliance.hardware.devices import DockHardware, Latch, PenLinkError, SeatSensor
from appliance.hardware.pinmap import load_pinmap
from appliance.hardware.sim import SimClock, Simulator


@pytest.fixture
def factory(monkeypatch):
    """Injected into every device, never set as gpiozero's global Device.pin_factory. (Its
    software SPI bus builds a throwaway device on the default factory: make that one mock,
    as appliance/simdock.py does.)"""
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    factory = MockFactory()
    yield factory
    factory.reset()


@pytest.fixture
def rig(factory):
    pinmap = load_pinmap()
    sim = Simulator(pinmap, factory, SimClock(ZoneInfo("UTC")))
    hw = DockHardware.from_pinmap(pinmap, retries=2, pin_factory=factory)
    sim._drive_seat(True)
    yield sim, hw
    hw.close()
    sim.pen.close()


def test_latch_is_held_at_start_released_only_on_request_and_held_after_an_exception(factory):
    pin = load_pinmap()["latch"].bcm
    latch = Latch(pin, pin_factory=factory)
    assert latch.is_held and factory.pin(pin).state == 0  # de-energised
    with pytest.raises(RuntimeError):
        with latch:
            latch.release()
            assert not latch.is_held and factory.pin(pin).state == 1
            raise RuntimeError("the caller crashed")
    assert latch.is_held and factory.pin(pin).state == 0
    latch.release()
    latch.close()
    assert factory.pin(pin).state == 0  # closing holds first


def test_closing_the_hardware_holds_the_latch(rig, factory):
    sim, hw = rig
    hw.latch.release()
    hw.close()
    assert factory.pin(load_pinmap()["latch"].bcm).state == 0


def test_seat_chatter_gives_one_change(factory):
    """The dock looks at the seat between every flip of the chatter (the clock is held by
    the test, so no scheduling can hide a flip): only the level that stays is reported."""
    pinmap = load_pinmap()
    sim = Simulator(pinmap, factory, SimClock(ZoneInfo("UTC")))
    now = [100.0]
    seat = SeatSensor(pinmap["seat"].bcm, pull_up=pinmap["seat"].pull_up, active_high=pinmap["seat"].active_high,
                      settle_s=0.05, pin_factory=factory, clock=lambda: now[0])
    sim._drive_seat(False)
    now[0] += 0.1
    assert seat.settled() is False
    seen = []

    def look():
        level = seat.settled()
        if level is not None and (not seen or seen[-1] != level):
            seen.append(level)

    for i in range(9):  # chatter: each level lasts 3 ms, far less than the settle time
        sim._drive_seat(i % 2 == 0)
        look()
        now[0] += 0.003
        look()
    sim._drive_seat(True)
    for _ in range(40):  # then it rests for 120 ms
        now[0] += 0.003
        look()
    assert seen == [True]
    seat.close()
    sim.pen.close()


def test_the_pen_link_reads_the_simulated_pen_over_mock_spi(rig):
    sim, hw = rig
    sim.fit_cartridge(1234)
    reading = hw.pen.read()
    assert reading.pen_serial == sim.pen.state.pen_serial
    assert reading.cartridge_serial == 1234
    assert hw.pen.read_raw() == frame.encode(sim.pen.state.reading())


def test_an_intermittent_crc_error_is_retried_a_persistent_one_is_an_error(rig):
    sim, hw = rig
    sim.set_fault("crc-intermittent")
    assert hw.pen.read().pen_serial == sim.pen.state.pen_serial
    sim.set_fault("crc")
    before = sim.pen.reads
    with pytest.raises(PenLinkError, match="no valid pen frame after 3 reads.*CRC"):
        hw.pen.read()
    assert sim.pen.reads - before == 3  # one read and two retries


def test_a_pen_lifted_mid_read_is_a_clear_error(rig):
    sim, hw = rig
    sim.pen.state.docked = False  # the pogo contacts open: the pen answers nothing
    with pytest.raises(PenLinkError):
        hw.pen.read()


def test_an_unknown_frame_version_is_not_retried(rig, monkeypatch):
    sim, hw = rig
    from dataclasses import replace

    newer = frame.encode(replace(sim.pen.state.reading(), frame_version=9))
    monkeypatch.setattr(sim.pen, "frame_bytes", lambda: newer)
    with pytest.raises(frame.UnknownVersionError, match="9"):
        hw.pen.read()


def test_every_pin_is_listed_with_its_level(rig):
    sim, hw = rig
    rows = {row["role"]: row for row in hw.levels()}
    pinmap = load_pinmap()
    assert set(pinmap.pins) <= set(rows)
    assert rows["latch"]["level"] == 0 and rows["latch"]["bcm"] == pinmap["latch"].bcm
    hw.latch.release()
    assert {row["role"]: row for row in hw.levels()}["latch"]["level"] == 1


@pytest.mark.parametrize("mode", [0, 1, 2, 3])
def test_the_pin_maps_spi_mode_reaches_the_link(factory, tmp_path, mode):
    from appliance.core.resources import hw_file

    text = hw_file("pinmap.toml").read_text().replace("mode = 0 ", f"mode = {mode} ", 1)
    path = tmp_path / "pinmap.toml"
    path.write_text(text)
    pinmap = load_pinmap(path)
    assert pinmap.spi.mode == mode
    sim = Simulator(pinmap, factory, SimClock(ZoneInfo("UTC")))  # the pen speaks the map's mode
    hw = DockHardware.from_pinmap(pinmap, retries=0, pin_factory=factory)
    try:
        assert hw.pen.clock_mode == mode
        assert hw.pen.read().pen_serial == sim.pen.state.pen_serial  # a mode mismatch garbles the frame
    finally:
        hw.close()
        sim.pen.close()


def test_the_pin_maps_max_hz_reaches_a_bus_that_has_a_rate(monkeypatch):
    """A hardware SPI bus (spidev) takes the map's speed; a bit-banged one has none to set."""
    from gpiozero.pins import mock

    class RatedInterface(mock.MockSPIInterface):
        _rate = 100_000

        def _get_rate(self):
            return self._rate

        def _set_rate(self, value):
            self._rate = value

    class RatedFactory(MockFactory):
        def _get_spi_class(self, shared, hardware):
            return RatedInterface

    factory = RatedFactory()  # injected only, as every factory here
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")  # gpiozero's software SPI bus: see factory()
    try:
        pinmap = load_pinmap()
        hw = DockHardware.from_pinmap(pinmap, pin_factory=factory)
        assert hw.pen.rate_hz == pinmap.spi.max_hz == hw.pen._spi.rate
        hw.close()
        plain = DockHardware.from_pinmap(pinmap, pin_factory=MockFactory())
        assert plain.pen.rate_hz is None  # the mock bus bit-bangs: no rate to set
        plain.close()
    finally:
        factory.reset()


def test_the_link_reads_through_the_frame_modules_transaction(rig, monkeypatch):
    sim, hw = rig
    sent = []
    real = hw.pen._spi.transfer
    monkeypatch.setattr(hw.pen._spi, "transfer", lambda data: sent.append(bytes(data)) or real(data))
    hw.pen.read()
    assert sent == [frame.read_request()]


@pytest.mark.parametrize("mode", [0, 3])
def test_the_simulated_docks_pen_link_is_a_hardware_spi_bus_with_the_maps_mode_and_rate(tmp_path, mode):
    """The simulated dock's factory gives the pen link as a Pi does (a hardware SPI bus that
    takes the mode and the speed), and the simulated pen answers it bit for bit."""
    from appliance.core.resources import hw_file
    from appliance.hardware.sim import SimFactory, SimulatedHardwareSPI

    path = tmp_path / "pinmap.toml"
    path.write_text(hw_file("pinmap.toml").read_text().replace("mode = 0 ", f"mode = {mode} ", 1))
    pinmap = load_pinmap(path)
    factory = SimFactory()
    sim = Simulator(pinmap, factory, SimClock(ZoneInfo("UTC")))
    hw = DockHardware.from_pinmap(pinmap, retries=0, pin_factory=factory)
    try:
        assert isinstance(hw.pen._spi, SimulatedHardwareSPI)
        assert (hw.pen.clock_mode, hw.pen.rate_hz) == (mode, pinmap.spi.max_hz)
        sim.pen.state.max_depth_mm = 2.0
        assert hw.pen.read_raw() == frame.encode(sim.pen.state.reading())
        hw.pen.open_session(99)
        assert (hw.pen.read().session_tag, sim.pen.state.max_depth_mm) == (99, 0.0)
        hw.pen._spi.clock_mode = (mode + 1) % 4  # the two ends disagree on the clock edges
        with pytest.raises(PenLinkError):
            hw.pen.read()
    finally:
        hw.close()
        sim.pen.close()
        factory.close()
