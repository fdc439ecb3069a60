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
RTC_BOOT_WINDOW_S = 600.0  # the RTC is believed in the first 10 minutes of a boot only


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
                 offset_file: Path | None = None, chrony: "ChronySource | None" = None,
                 rtc: "RtcSource | None" = None, rtc_boot_window_s: float | None = RTC_BOOT_WINDOW_S):
        self.tz = tz
        self.rtc_boot_window_s = rtc_boot_window_s
        self.chrony = chrony or ChronySource(background=True)
        self.rtc = rtc or RtcSource()
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
        """True when systemd-timesyncd says the wall clock is synchronised, or chrony
        (the installed NTP client, hw/install.sh) is synchronised to a source."""
        return self._sync_flag.exists() or self.chrony.authenticated()[0]

    def time_sources(self) -> list:
        """The sources that may vouch for the time: NTS through chrony, and the RTC."""
        return system_time_sources(self)

    def sync_mark(self) -> int | None:
        """Changes at each NTP synchronisation (the flag file's time); None when not synced."""
        try:
            return self._sync_flag.stat().st_mtime_ns
        except OSError:
            return 1 if self.chrony.authenticated()[0] else None  # chrony: synchronised, no flag

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


# -- the sources that may vouch for the time (appliance/core/vouched.py) -----------------

CHRONY_CONF = Path("/etc/chrony/conf.d/pendock-nts.conf")  # written by hw/install.sh
RTC_DIR = Path("/sys/class/rtc/rtc0")
SOURCE_TTL_S = 60.0  # the sources are asked at most once a minute (a subprocess each)
# An RTC reading before this is a lost battery (the kernel's epoch, or the chip's 2000).
RTC_SANE_FROM = datetime(2024, 1, 1).astimezone()


def parse_chrony_tracking(text: str) -> dict:
    """`chronyc -c -n tracking`: one CSV line (reference id, its address, stratum, reference
    time, offsets..., leap status last). {} when it is not one."""
    fields = next(iter(text.strip().splitlines()), "").split(",")
    if len(fields) < 14:
        return {}
    return {"ref_id": fields[0], "address": fields[1], "stratum": fields[2],
            "leap": fields[-1].strip()}


def parse_chrony_sources(text: str) -> list[dict]:
    """`chronyc -c -n sources`: mode (^ server), state (* selected), address, stratum, ..."""
    found = []
    for line in text.strip().splitlines():
        fields = line.split(",")
        if len(fields) >= 4:
            found.append({"mode": fields[0], "state": fields[1], "address": fields[2]})
    return found


def parse_chrony_authdata(text: str) -> dict[str, str]:
    """`chronyc -c -n authdata` (root or the chrony user only): address -> mode ("NTS",
    "SK" for a symmetric key, "-" for none)."""
    found = {}
    for line in text.strip().splitlines():
        fields = line.split(",")
        if len(fields) >= 2:
            found[fields[0]] = fields[1]
    return found


def chrony_requires_authentication(conf: Path = CHRONY_CONF) -> bool:
    """Whether the installed chrony configuration selects authenticated sources only
    (`authselectmode require`): then a synchronised chrony is an authenticated one."""
    try:
        lines = conf.read_text().splitlines()
    except OSError:
        return False
    return any(line.split()[:2] == ["authselectmode", "require"] for line in lines if line.strip())


def chrony_verdict(tracking: str, sources: str, authdata: str | None,
                   requires_auth: bool) -> tuple[bool, str]:
    """(authenticated, words): chrony is synchronised to a selected source, and that
    source is NTS-authenticated: by `authdata` when the dock may ask it, else by the
    installed configuration admitting authenticated sources only."""
    track = parse_chrony_tracking(tracking)
    if not track:
        return False, "chrony is not running or did not answer"
    if track["leap"].lower().startswith("not synchronised"):
        return False, "chrony is not synchronised"
    selected = [s for s in parse_chrony_sources(sources) if s["state"] == "*"]
    if not selected:
        return False, "chrony has no selected source"
    address = selected[0]["address"]
    if authdata is not None:
        mode = parse_chrony_authdata(authdata).get(address, "-")
        if mode == "NTS":
            return True, f"chrony, synchronised to {address} over NTS"
        return False, f"chrony, synchronised to {address} without NTS (mode {mode})"
    if requires_auth:
        return True, f"chrony, synchronised to {address} (authselectmode require)"
    return False, f"chrony, synchronised to {address}; NTS not required by its configuration"


class ChronySource:
    """NTS through chrony, asked as a non-root unit can ask it: `tracking` and `sources`
    over chrony's local command port, `authdata` where permitted (root).

    In the daemon (`background=True`) chronyc runs in a thread of its own, so a decision
    under the dock's lock never waits for it: until the first answer, and while one is
    being fetched, the last verdict stands (at first "not asked yet": not authenticated)."""

    def __init__(self, conf: Path = CHRONY_CONF, run=None, ttl: float = SOURCE_TTL_S,
                 background: bool = False):
        self.conf = conf
        self._run = run or _chronyc
        self.ttl = ttl
        self.background = background
        self._cached: tuple[float, bool, str] | None = None
        self._asking = False

    def authenticated(self) -> tuple[bool, str]:
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] >= self.ttl:
            if not self.background:
                self._ask(now)
            elif not self._asking:
                import threading

                self._asking = True
                threading.Thread(target=self._ask, args=(now,), name="chronyc", daemon=True).start()
        if self._cached is None:
            return False, "chrony not asked yet"
        return self._cached[1], self._cached[2]

    def _ask(self, now: float) -> None:
        try:
            tracking = self._run("tracking")
            sources = self._run("sources") if tracking else ""
            authdata = self._run("authdata") if tracking else None
            verdict = chrony_verdict(tracking, sources, authdata or None,
                                     chrony_requires_authentication(self.conf))
            self._cached = (now, *verdict)
        finally:
            self._asking = False


def _chronyc(command: str) -> str:
    """One chronyc command in CSV with numeric addresses; "" when it cannot be asked."""
    import subprocess

    try:
        done = subprocess.run(["chronyc", "-c", "-n", command], capture_output=True, text=True,
                              timeout=2, check=False)
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


class RtcSource:
    """The battery-backed real-time clock through the kernel's rtc class (the Pi 5's own,
    or a DS3231 on the I2C bus: hw/README). `since_epoch` is the RTC's time in seconds."""

    def __init__(self, rtc_dir: Path = RTC_DIR, ttl: float = SOURCE_TTL_S):
        self.rtc_dir = rtc_dir
        self.ttl = ttl
        self._cached: tuple[float, datetime | None, float] | None = None

    def reading(self, tz) -> datetime | None:
        """The RTC's time now (carried between reads by the monotonic clock), or None when
        there is no RTC or its time is before RTC_SANE_FROM (its battery ran out)."""
        now = time.monotonic()
        if self._cached is None or now - self._cached[0] >= self.ttl:
            self._cached = (now, self._read(tz), now)
        read_at, value, _ = self._cached
        return None if value is None else value + timedelta(seconds=now - read_at)

    def _read(self, tz) -> datetime | None:
        try:
            seconds = int((self.rtc_dir / "since_epoch").read_text().strip())
        except (OSError, ValueError):
            return None
        moment = datetime.fromtimestamp(seconds, tz)
        return moment if moment >= RTC_SANE_FROM else None


def rtc_may_vouch(clock: "SystemClock") -> bool:
    """The RTC vouches only for what it carried through the power cut: early in the boot
    and before plain NTP synchronised (timesyncd's kernel sync would copy an unauthenticated
    time into the RTC; chrony, on NTS alone, copies only authenticated time)."""
    if clock._sync_flag.exists():
        return False
    window = clock.rtc_boot_window_s
    return window is None or clock.monotonic() <= window


def system_time_sources(clock: "SystemClock") -> list:
    """NTS (chrony) and the RTC, for the clock watch (appliance/daemon/clockwatch.py)."""
    from appliance.core.vouched import SourceReading

    nts, words = clock.chrony.authenticated()
    rtc = clock.rtc.reading(clock.tz) if rtc_may_vouch(clock) else None
    return [SourceReading("nts", True, clock.now() if nts else None, words),
            SourceReading("rtc", True, rtc, f"RTC {clock.rtc.rtc_dir}" + ("" if rtc else " (none, or battery lost)"))]
