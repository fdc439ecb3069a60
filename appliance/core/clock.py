"""The clock seam: what the dock asks of time, so the real clock (appliance/hardware/clock.py)
and the simulated one (appliance/hardware/sim.py) are interchangeable and the rules never
read a clock themselves (they are given `now`)."""
from __future__ import annotations

from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The wall clock, aware, in the dock's time zone: for dates and the record."""

    def monotonic(self) -> float:
        """Seconds that only move forward: for durations (how long the pen is out)."""

    def synced(self) -> bool:
        """Whether the wall clock is known to be right (the Pi has no RTC)."""

    def set_wall(self, moment: datetime) -> None:
        """Set the wall clock (`pendock clock set`, a person who knows the time)."""
