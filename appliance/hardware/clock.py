"""The dock's two clocks, injected wherever time matters.

Dates (session times, the 21-day rule) come from the wall clock; durations (how long the
pen has been out) come from the monotonic clock, which a wrong or jumping wall clock cannot
bend. The Pi has no RTC, so the wall clock also says whether it is known to be right.
"""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

# systemd-timesyncd touches this file once the clock is synchronised (systemd >= 239).
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")


class SystemClock:
    """The real clocks of the machine, in the dock's configured time zone."""

    def __init__(self, tz: ZoneInfo, *, sync_flag: Path = TIMESYNC_FLAG):
        self.tz = tz
        self._sync_flag = sync_flag

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        """True when systemd says the wall clock is synchronised (NTP or an RTC)."""
        return self._sync_flag.exists()
