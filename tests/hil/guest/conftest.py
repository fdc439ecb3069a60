"""Inside the HIL guest: one simulated 54-line chip for the whole run, and the header and
figures `make test-hil` prints (the chip, the pin factory, the edge latency)."""
from __future__ import annotations

import pytest

from tests.hil.guest.chip import SimChip
from tests.hil.guest.factory import HilFactory

_chip: SimChip | None = None
FIGURES: list[str] = []


def pytest_configure(config):
    global _chip
    _chip = SimChip()


def pytest_unconfigure(config):
    if _chip is not None:
        _chip.close()


def pytest_report_header(config):
    from importlib.metadata import version

    return [
        f"HIL chip: {_chip.describe()}",
        f"HIL pin factory: {HilFactory.__mro__[1].__module__}.{HilFactory.__mro__[1].__name__} "
        f"(lgpio {version('lgpio')}) on gpiochip{_chip.number}; pen link: simulated pen (mock SPI)",
    ]


def pytest_terminal_summary(terminalreporter):
    for line in FIGURES:
        terminalreporter.write_line(line)


@pytest.fixture
def chip() -> SimChip:
    return _chip


@pytest.fixture(autouse=True)
def lgpio_notifications_alive():
    """lgpio delivers every edge of the process through one thread; if a callback raises,
    that thread ends and no callback fires again. Say so where it happened."""
    import lgpio

    yield
    assert lgpio._notify_thread.is_alive(), "lgpio's notification thread died in this test: callbacks are dead"
