"""The HIL pin factory: lgpio on the simulated chip for every pin, the simulated pen for
the SPI link. Composed here, in the test harness, not in the appliance: the dock's code
takes whatever factory it is given, as on a Pi.
"""
from __future__ import annotations

import time

import lgpio
from gpiozero.pins.lgpio import LGPIOFactory
from gpiozero.pins.mock import MockFactory

from appliance.hardware.pinmap import PinMap
from appliance.hardware.sim import SimClock, Simulator

# gpiozero asks the board for its revision to know its header; an x86 guest has none
# (no device tree, no Revision line in /proc/cpuinfo), so give it a Raspberry Pi 5's.
PI5_REVISION = 0xD04170


class HilFactory(LGPIOFactory):
    """lgpio on gpiochip `chip`; `spi()` hands out the simulated pen's bus on `pen_factory`."""

    def __init__(self, chip: int, pen_factory: MockFactory):
        self.pen_factory = pen_factory
        super().__init__(chip=chip)  # explicit: on an x86 guest nothing can guess it

    def _get_revision(self) -> int:
        return PI5_REVISION

    def spi(self, **spi_args):
        # No SPI controller in the guest: the pen link stays the simulated pen, bit-banged
        # over the mock pins it sits on (as in `pendock demo`).
        return self.pen_factory.spi(**spi_args)

    def close(self) -> None:
        # gpiozero's LGPIOPin.close() leaves the pin's callback registered with lgpio's
        # notification thread. The next factory in this process gets the same chip handle,
        # so that stale callback would take the new pins' edges, call into the closed
        # factory and raise, which ends lgpio's one notification thread: no callback would
        # ever fire again. Cancel them while the chip is still open. (A daemon opens its
        # factory once, so this only matters to tests that build several.)
        for pin in list(self.pins.values()):
            callback = getattr(pin, "_callback", None)
            if callback is not None:
                callback.cancel()
                pin._callback = None
            # Seen here: re-claiming a line at close now and then answers "GPIO busy" for a
            # moment (lgpio's alert thread may still hold the old line request); a retry passes.
            retry_busy(pin.close)
        try:
            super().close()
        finally:
            self.pen_factory.close()


def retry_busy(action, attempts: int = 100, pause_s: float = 0.01) -> None:
    """Run `action`, again while lgpio says the line is busy (for up to a second)."""
    for attempt in range(attempts):
        try:
            return action()
        except lgpio.error as error:
            if "busy" not in str(error).lower() or attempt == attempts - 1:
                raise
            time.sleep(pause_s)


def compose(chip: int, pinmap: PinMap, clock: SimClock, chips=None) -> tuple[HilFactory, Simulator]:
    """The factory and the simulated pen, built in the order the demo builds them (the pen
    before the dock's devices, so the SPI clock pin is the mock SPI kind). `chips`: the
    demo maker of its cartridges (appliance.simdock.demo_maker)."""
    pen_factory = MockFactory()
    simulator = Simulator(pinmap, pen_factory, clock, None, chips=chips)
    return HilFactory(chip, pen_factory), simulator
