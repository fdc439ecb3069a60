"""The dock's two clocks, injected wherever time matters.

Dates (session times, the 21-day rule) come from the wall clock; durations (how long the
pen has been out) come from the monotonic clock, which a wrong or jumping wall clock cannot
bend. The Pi has no RTC, so the wall clock also says whether it is known to be right, and
each boot has an id: a monotonic time means something only within its own boot.
"""
from __future__ import annotations

import time
import uuid
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

# systemd-timesyncd touches this file on each successful synchronisation (systemd >= 239).
TIMESYNC_FLAG = Path("/run/systemd/timesync/synchronized")
BOOT_ID = Path("/proc/sys/kernel/random/boot_id")


class ClockSetError(Exception):
    """The wall clock could not be set; the message says what to do instead."""


def read_boot_id(path: Path = BOOT_ID) -> str:
    """The kernel's id of this boot; a random one if the kernel does not say (never shared)."""
    try:
        return path.read_text().strip() or f"unknown-{uuid.uuid4()}"
    except OSError:
        return f"unknown-{uuid.uuid4()}"


class SystemClock:
    """The real clocks of the machine, in the dock's configured time zone."""

    def __init__(self, tz: ZoneInfo, *, sync_flag: Path = TIMESYNC_FLAG, boot_id: Path = BOOT_ID):
        self.tz = tz
        self._sync_flag = sync_flag
        self._boot_id = read_boot_id(boot_id)

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def monotonic(self) -> float:
        """Seconds since this boot (CLOCK_MONOTONIC), so wall - monotonic is the boot's start."""
        return time.monotonic()

    def boot_id(self) -> str:
        return self._boot_id

    def synced(self) -> bool:
        """True when systemd says the wall clock is synchronised (NTP or an RTC)."""
        return self._sync_flag.exists()

    def sync_mark(self) -> int | None:
        """Changes at each NTP synchronisation (the flag file's time); None when not synced."""
        try:
            return self._sync_flag.stat().st_mtime_ns
        except OSError:
            return None

    def set_wall(self, moment: datetime) -> None:
        """Step the system clock. pendock.service forbids it (ProtectClock=yes, no
        CAP_SYS_TIME), so on a Pi this says what to run as root instead."""
        try:
            time.clock_settime(time.CLOCK_REALTIME, moment.timestamp())
        except (PermissionError, OSError) as error:
            raise ClockSetError(
                f"the dock may not set the system clock ({error}): set it as root with "
                f"`sudo timedatectl set-time '{moment.strftime('%Y-%m-%d %H:%M')}'`, then confirm "
                f"it with `pendock clock set`"
            ) from None
