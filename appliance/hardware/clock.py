"""The dock's two clocks, injected wherever time matters.

Dates (session times, the 21-day rule) come from the wall clock; durations (how long the
pen has been out) come from the monotonic clock, which a wrong or jumping wall clock cannot
bend. The Pi has no RTC, so the wall clock also says whether it is known to be right, and
each boot has an id: a monotonic time means something only within its own boot.
"""
from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
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
        found = path.read_text().strip()
    except OSError:
        found = ""
    if found:
        return found
    import uuid  # and platform with it: only where the kernel gives no boot id (P4)

    return f"unknown-{uuid.uuid4()}"


class SystemClock:
    """The real clocks of the machine, in the dock's configured time zone.

    A person who knows the time (`pendock clock set`) steps the system clock where the dock
    may; where it may not (pendock.service has ProtectClock=yes), the dock keeps the
    difference as its own offset for the rest of this boot, in `offset_file`, so a clinic
    without internet is not stuck waiting for a technician. An NTP synchronisation or a new
    boot ends the offset: the system clock is then the one to believe.
    """

    def __init__(self, tz: ZoneInfo, *, sync_flag: Path = TIMESYNC_FLAG, boot_id: Path = BOOT_ID,
                 offset_file: Path | None = None):
        self.tz = tz
        self._sync_flag = sync_flag
        self._boot_id = read_boot_id(boot_id)
        self._offset_file = offset_file
        self._offset = self._load_offset()

    def now(self) -> datetime:
        if self._offset and self.synced():
            self._forget_offset()  # NTP has the system clock right now
        return datetime.now(self.tz) + timedelta(seconds=self._offset)

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
        """Step the system clock if the dock may; else keep the dock's own offset for this boot."""
        try:
            time.clock_settime(time.CLOCK_REALTIME, moment.timestamp())
            self._forget_offset()
            return
        except (PermissionError, OSError) as error:
            if self._offset_file is None:
                raise ClockSetError(
                    f"the dock may not set the system clock ({error}): set it as root with "
                    f"`sudo timedatectl set-time '{moment.strftime('%Y-%m-%d %H:%M')}'`, then confirm "
                    f"it with `pendock clock set`"
                ) from None
        offset = (moment - datetime.now(self.tz)).total_seconds()
        self._save_offset(offset)
        self._offset = offset

    # -- the offset, kept for this boot only -------------------------------------------
    def _load_offset(self) -> float:
        if self._offset_file is None:
            return 0.0
        try:
            saved = json.loads(self._offset_file.read_text())
            if saved.get("boot_id") == self._boot_id:
                return float(saved["offset_seconds"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass  # none, or unreadable: the system clock as it is (the clock watch judges it)
        return 0.0

    def _save_offset(self, offset: float) -> None:
        assert self._offset_file is not None
        tmp = self._offset_file.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump({"boot_id": self._boot_id, "offset_seconds": offset}, out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self._offset_file)

    def _forget_offset(self) -> None:
        self._offset = 0.0
        if self._offset_file is not None:
            try:
                self._offset_file.unlink()
            except FileNotFoundError:
                pass
