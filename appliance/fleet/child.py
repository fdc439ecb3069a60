"""The fleet link's own process: `python -m appliance.fleet.child`, started by the daemon.

Why a process: the link (paho's network thread, the worker verifying, ingesting and
publishing) would otherwise share the daemon's interpreter, and each of its slices of
the GIL delays a latch decision (bar P8: the dock's P1 is no worse with a broker).

The channel is the daemon's pipe (appliance/fleet/process.py), JSON lines:
- stdin, daemon -> here: first `{"settings": {...}}` (the broker password included: never
  on the command line, which any local user may read), then `{"wake": true}` after each
  event the dock recorded and `{"clock": [offset_s, synced]}` whenever the dock's wall
  clock moves against the system's (a simulated clock moved by a demo or a test);
- stdout, here -> daemon: `{"status": ..., "contact": t, "connected": b}` when the link's
  status changes and at least every second; `contact` is time.monotonic() of the last
  sign of the broker (CLOCK_MONOTONIC is the same for every process of this boot), null
  before the first (a child started again and again must not look like contact).

It stops on EOF of stdin (the daemon ended, even by kill -9: an orphan must not keep
publishing as this dock), on `{"stop": true}` and on SIGTERM, publishing its offline
presence on the way. SIGINT is the daemon's to handle (Ctrl-C on a demo reaches the whole
process group), so it is ignored here. Logging goes to stderr, inherited from the daemon.
"""
from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TextIO
from zoneinfo import ZoneInfo

log = logging.getLogger("pendock.fleet")

REPORT_EVERY_S = 1.0  # the status at least this often, so the daemon knows the link lives
# How often the status is compared with the last one sent: each line sent costs the
# daemon's interpreter a moment, so a few a second at most.
LOOK_EVERY_S = 0.25
# The link yields the CPU to the dock's decisions, and to anything else: propagation has
# seconds to spare (P8: 2 s), a decision milliseconds. Raising one's own nice value needs
# no privilege; pendock.service allows the system call for this (setpriority).
NICE = 19


class OffsetClock:
    """The dock's wall clock as the daemon reports it: the system clock plus an offset."""

    def __init__(self, tz: ZoneInfo, offset_s: float = 0.0, synced: bool = True):
        self.tz = tz
        self.offset_s = offset_s
        self.is_synced = synced

    def now(self) -> datetime:
        return datetime.now(self.tz) + timedelta(seconds=self.offset_s)

    def monotonic(self) -> float:
        return time.monotonic()

    def synced(self) -> bool:
        return self.is_synced

    def set_wall(self, moment: datetime) -> None:
        raise RuntimeError("the link's clock follows the daemon's; set the dock's clock instead")

    def follow(self, value: Any) -> None:
        """`[offset_s, synced]` from the daemon; anything else is ignored."""
        if isinstance(value, list) and len(value) == 2 and isinstance(value[0], (int, float)):
            self.offset_s, self.is_synced = float(value[0]), bool(value[1])


def build_link(settings: dict[str, Any], clock: OffsetClock):
    """The FleetLink (link.py, paho-mqtt) from the daemon's settings message."""
    from appliance.fleet import keys
    from appliance.fleet.link import FleetLink
    from appliance.fleet.settings import parse_broker

    keys_dir = Path(settings["keys_dir"])
    return FleetLink(
        dock_id=settings["dock_id"], broker=parse_broker(settings["broker"]),
        db_path=Path(settings["db_path"]), key=keys.load_private_key(Path(settings["key_file"])),
        keyring=keys.load_keyring(keys_dir), keys_dir=keys_dir, clock=clock,
        min_interval_days=int(settings["min_interval_days"]), tz=clock.tz,
        stale_after_s=float(settings["stale_after_s"]), username=settings["username"],
        password=settings.get("password", ""), tls_ca_file=settings.get("tls_ca_file", ""),
        synchronous=settings.get("synchronous", "FULL"), clinic=settings.get("clinic", ""))


class Child:
    def __init__(self, link, clock: OffsetClock, channel: TextIO):
        self.link = link
        self.clock = clock
        self.channel = channel
        self.stop = threading.Event()
        self._sent: str | None = None
        self._sent_at = 0.0
        self._no_contact = link.last_contact()  # the link's start, not a sign of the broker

    def listen(self, stdin: TextIO) -> None:
        """The daemon's lines, until EOF (the daemon ended) or a stop."""
        try:
            for line in stdin:
                try:
                    message = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(message, dict):
                    continue
                if "clock" in message:
                    self.clock.follow(message["clock"])
                if message.get("wake"):
                    self.link.wake.set()
                if message.get("stop"):
                    break
        finally:
            self.stop.set()

    def report(self) -> None:
        """The status when it changed, and at least every REPORT_EVERY_S."""
        status = self.link.status()
        status.pop("stale", None)  # the daemon judges staleness from `contact`
        text = json.dumps(status, sort_keys=True)
        now = time.monotonic()
        if text == self._sent and now - self._sent_at < REPORT_EVERY_S:
            return
        contact = self.link.last_contact()
        line = json.dumps({"status": status, "connected": bool(self.link.connected),
                           "contact": None if contact == self._no_contact else contact})
        self.channel.write(line + "\n")
        self.channel.flush()
        self._sent, self._sent_at = text, now

    def run(self) -> None:
        while not self.stop.wait(LOOK_EVERY_S):
            try:
                self.report()
            except (BrokenPipeError, ValueError, OSError):
                break  # the daemon is gone
        self.link.close()


def _read_settings(stdin: TextIO) -> dict[str, Any] | None:
    line = stdin.readline()
    if not line:
        return None
    message = json.loads(line)
    return message["settings"] | {"clock": message.get("clock")}


def main() -> int:
    # The channel is the inherited stdout; anything else printing (a library) goes to
    # stderr instead of corrupting it.
    channel = os.fdopen(os.dup(sys.stdout.fileno()), "w", encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdin = sys.stdin
    try:
        settings = _read_settings(stdin)
    except (ValueError, KeyError, TypeError) as error:
        print(f"pendock fleet link: the daemon's settings are unreadable ({error})", file=sys.stderr)
        return 2
    if settings is None:
        return 0  # the daemon ended before it said anything
    logging.basicConfig(level=settings.get("log_level", logging.WARNING),
                        format="%(levelname)s %(name)s (link process): %(message)s", stream=sys.stderr)
    try:
        os.setpriority(os.PRIO_PROCESS, 0, NICE)
    except OSError as error:
        log.warning("fleet: the link process keeps the daemon's priority (%s)", error)
    clock = OffsetClock(ZoneInfo(settings["timezone"]))
    clock.follow(settings.get("clock"))
    link = build_link(settings, clock)
    child = Child(link, clock, channel)
    signal.signal(signal.SIGTERM, lambda signum, frame: child.stop.set())
    threading.Thread(target=child.listen, args=(stdin,), name="daemon-pipe", daemon=True).start()
    link.start()
    child.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
