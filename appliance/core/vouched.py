"""Vouched time: the latest time the dock can vouch for, a lower bound of the true time.

The interval, course and retention rules count only this time (README "The clock"), so no
single source the dock cannot authenticate can free a pen early:

- within one boot it moves with the monotonic clock and nothing else;
- across a reboot, the time the dock cannot account for counts as not passed: it starts
  again from the last value it kept, plus the new boot's monotonic time;
- an authenticated source (NTS, ranked first) sets it, forwards or back; a battery-backed
  RTC may only raise it (an RTC that lost its battery reads the past);
- a person, plain NTP and a restored record never move it: they set the date shown.

Pure: the daemon (appliance/daemon/clockwatch.py) reads the clocks and keeps the value.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

# An authenticated source that agrees with vouched time within this is no correction.
AGREE = timedelta(minutes=2)
# Who may set vouched time, best first; "rtc" only raises it.
TRUSTED = ("nts", "rtc")


@dataclass(frozen=True)
class SourceReading:
    """One source of time as the dock sees it now."""

    name: str  # "nts", "rtc", "peer", "ntp", "person"
    authenticated: bool  # whether the dock can tell its answer from a stranger's
    at: datetime | None  # the time it gives now; None when it has none
    detail: str = ""  # what it is, in a few words (the chrony server, the RTC device)


@dataclass(frozen=True)
class Vouch:
    """Vouched time `at` as of monotonic `mono` in boot `boot`."""

    at: datetime
    mono: float
    boot: str
    exact: bool = False  # an authenticated source set it this boot; only the monotonic clock since
    source: str = "first start"  # what last set it
    # An authenticated source set it once, and only the monotonic clock moved it since (over
    # reboots too): then it is a lower bound of the true time, and a wall clock behind it is
    # provably wrong. Until then it is the dock's own measured time from its first start.
    grounded: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"at": self.at.isoformat(), "mono": self.mono, "boot": self.boot,
                "exact": self.exact, "source": self.source, "grounded": self.grounded}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Vouch":
        return cls(datetime.fromisoformat(str(data["at"])), float(data["mono"]),
                   str(data["boot"]), bool(data.get("exact")), str(data.get("source", "kept")),
                   bool(data.get("grounded")))


def carried(vouch: Vouch, boot: str, mono: float) -> Vouch:
    """Vouched time now, with no source but the monotonic clock: this boot's measured time,
    or after a reboot the kept value plus this boot's monotonic time (the time the dock
    was off is not counted, and nothing measured is exact any more)."""
    if vouch.boot == boot:
        return replace(vouch, at=vouch.at + timedelta(seconds=max(0.0, mono - vouch.mono)), mono=mono)
    return Vouch(vouch.at + timedelta(seconds=max(0.0, mono)), mono, boot, False, "reboot",
                 vouch.grounded)


def with_sources(vouch: Vouch, readings: list[SourceReading]) -> tuple[Vouch, timedelta]:
    """Vouched time after the authenticated sources' say, and how far they moved it (the
    correction that dates recorded on the old vouched time must take, to keep what the
    dock measured between them and now)."""
    start = vouch.at
    for name in reversed(TRUSTED):  # the best source has the last word
        reading = next((r for r in readings if r.name == name and r.authenticated and r.at), None)
        if reading is None or reading.at is None:
            continue
        if name == "rtc" and reading.at < vouch.at - AGREE:
            continue  # an RTC behind vouched time lost its battery or was set back: ignored
        if vouch.exact and abs(reading.at - vouch.at) <= AGREE:
            continue  # agrees with what the monotonic clock carried: no step for jitter
        vouch = replace(vouch, at=reading.at, exact=True, source=name, grounded=True)
    moved = vouch.at - start
    return vouch, moved


def first(wall: datetime, boot: str, mono: float) -> Vouch:
    """A dock that never kept vouched time (its first start): the wall clock as the
    start, not exact, so an authenticated source later corrects it either way."""
    return Vouch(wall, mono, boot, False, "first start", False)
