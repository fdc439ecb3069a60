"""Putting the dock together and running it: the same code on a Pi and in the demo.

`start_dock` takes a pin factory (None: gpiozero's default for this machine, as on a
Pi) and a clock, and hands the factory to every device; the simulated dock
(appliance/simdock.py) passes a mock factory with the simulated pen on it and a simulated
clock. Nothing below asks which, and nothing sets gpiozero's global factory.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

from appliance.daemon import commands
from appliance.daemon.control import ControlServer, may_connect
from appliance.daemon.files import secure_data_folder
from appliance.hardware.devices import DockHardware
from appliance.daemon.dock import Dock
from appliance.core.paths import DB_NAME
from appliance.hardware.pinmap import PinMap, load_pinmap
from appliance.daemon.sdnotify import Notifier
from appliance.fleet.boot import start_fleet
from appliance.record.store import Store
from appliance.record.upgrade import upgrade_apart

if TYPE_CHECKING:
    from appliance.fleet.process import LinkProcess

log = logging.getLogger("pendock.daemon")
SOCKET_GROUP = "pendock"


@dataclass
class RunningDock:
    dock: Dock
    server: ControlServer
    store: Store
    fleet: LinkProcess | None = None

    def close(self) -> None:
        if self.fleet is not None:
            self.fleet.close()
        self.server.close()
        self.dock.close()
        self.dock.hw.close()
        self.store.close()


def start_dock(config, data_dir: Path, socket: Path, clock, *, pinmap: PinMap | None = None,
               pin_factory=None, extensions=(), config_source: Path | None = None) -> RunningDock:
    """Build hardware, record, dock and control socket; the latch is held before it returns.

    `extensions` are callables `(server, dock)` that add commands (the simulator's verbs).
    """
    pinmap = pinmap or load_pinmap()
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    hw = DockHardware.from_pinmap(pinmap, retries=config.dock.readout_retries, pin_factory=pin_factory)
    try:
        hw.latch.hold()
        store = Store(data_dir / DB_NAME, synchronous=_synchronous_for_tests())
        secure_data_folder(data_dir)  # the record holds password and token hashes
    except BaseException:
        hw.close()
        raise
    try:
        # Before the dock starts: what it records from its first moment is shared.
        fleet = start_fleet(config, data_dir, store, clock, synchronous=store.synchronous)
    except BaseException:
        hw.close()
        store.close()
        raise
    dock = Dock(hw, store, config, clock, config_source=config_source)
    dock.fleet = fleet
    # Any local user may open the socket file; the daemon itself admits only root, its own
    # user and group (the page) and the technicians (may_connect), so technicians need not
    # be in the daemon's group, which can read the record (quality bar S6).
    server = ControlServer(socket, group=SOCKET_GROUP, mode=0o666, admit=may_connect)
    commands.register(server, dock)
    for extend in extensions:
        extend(server, dock)
    try:
        dock.start()
        server.start()
    except BaseException:
        if fleet is not None:
            fleet.close()
        server.close()
        hw.close()
        store.close()
        raise
    return RunningDock(dock, server, store, fleet)


def _synchronous_for_tests() -> str:
    """TEST HOOK: PENDOCK_SQLITE_SYNCHRONOUS=NORMAL weakens commits for the power-cut
    test's negative control (tests/reliability), which must see acknowledged sessions
    lost. Never set it on a dock: anything but FULL breaks "nothing committed is lost"."""
    level = os.environ.get("PENDOCK_SQLITE_SYNCHRONOUS", "FULL")
    if level.upper() != "FULL":
        log.warning("PENDOCK_SQLITE_SYNCHRONOUS=%s: commits are NOT durable (test hook)", level)
    return level


def prepare_process(data_dir: Path) -> None:
    """What the dock's process does first, on a Pi (`run_daemon`) and in the demo alike, to
    keep what it holds for months small (quality bar P4, README): one malloc arena, and
    the record created or upgraded by a child process (record/upgrade.py)."""
    limit_malloc_arenas()
    upgrade_apart(data_dir / DB_NAME)


def limit_malloc_arenas(count: int = 1) -> None:
    """glibc gives each thread that allocates at once its own malloc arena, each keeping
    its own freed memory. The daemon's threads (the loop, the control socket's, the fleet
    link's) allocate under Python's GIL anyway, so one arena serves them, about 1 MB less.
    Before any thread starts; not glibc: nothing to tune."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-8, count)  # -8: M_ARENA_MAX
    except (OSError, AttributeError):
        pass


def run_loop(running: RunningDock, stop: threading.Event, notifier: Notifier | None = None) -> None:
    """Tick the dock until `stop`; feed the systemd watchdog from here, so a hung loop is restarted."""
    dock = running.dock
    seat_changed = dock.hw.seat.changed
    feed_every = (notifier.watchdog_interval if notifier else None) or float("inf")
    while not stop.is_set():
        try:
            dock.tick()
        except Exception:
            log.exception("tick failed; pen held, trying again")
        if notifier is not None:
            notifier.watchdog()
        seat_changed.wait(min(dock.seconds_to_next_tick(), feed_every))
        seat_changed.clear()


def install_signal_handlers(stop: threading.Event) -> None:
    def handler(signum, _frame):
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_daemon(config, data_dir: Path, socket: Path, clock, *, pinmap: PinMap | None = None,
               config_source: Path | None = None, extensions=(), pin_factory=None) -> int:
    """The real daemon under systemd (`pendock daemon`), on gpiozero's pin factory.

    `extensions` and `pin_factory` as for `start_dock`: the hardware-in-the-loop test
    (tests/hil) adds the simulated pen's verbs, so that this very function runs there on
    real GPIO lines; PENDOCK_SIMULATED=yes (appliance/processes.py) hands it the mock pins."""
    notifier = Notifier()
    stop = threading.Event()
    install_signal_handlers(stop)
    prepare_process(data_dir)
    running = start_dock(config, data_dir, socket, clock, pinmap=pinmap, config_source=config_source,
                         extensions=extensions, pin_factory=pin_factory)
    factory = running.dock.hw.factory_name
    notifier.ready(f"pen held; pins by {factory}; record at {data_dir}")
    log.info("pen-dock daemon ready (pins by %s, socket %s)", factory, socket)
    try:
        run_loop(running, stop, notifier)
    finally:
        notifier.stopping()
        running.close()
    return 0
