"""The daemon's side of the fleet link, which runs in a child process (fleet/child.py).

Why: the link's threads (paho's network loop, the worker verifying, ingesting and
publishing) in the daemon's own interpreter took the GIL from back-to-back latch
decisions and tripled P1's tail (bar P8). In its own process nothing the link does can
hold the decision's interpreter; the daemon keeps only this proxy: a pipe write per
recorded event and one thread reading the link's status about once a second. The daemon
no longer imports paho-mqtt at all.

The proxy answers as the in-process link did (`stale()`, `summary()`, `status()`,
`close()`), and supervises the child: one that dies is logged and started again after
1 s, then 2, 4... up to 30 s while it keeps dying. Staleness is judged here from the
child's last contact with the broker (a dead child has none), with this process's own
monotonic clock, so a dead or hung link ends in `fleet_stale` as a cut cable does.

The child has its own connection to the record and writes what the link always wrote
(the peers' events, the outbox's acknowledgements, `fleet_conflict` audit entries);
SQLite serialises its writes with the daemon's across processes (the same busy timeout).
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from typing import Any

from appliance.children import python_env
from appliance.fleet.shared import KICKED_AGAIN

log = logging.getLogger("pendock.fleet")

RESTART_FIRST_S = 1.0
RESTART_MAX_S = 30.0
STEADY_AFTER_S = 30.0  # a child that lived this long starts the backoff afresh
STATUS_FRESH_S = 5.0  # "connected" is believed this long after the child said so
CLOSE_WAIT_S = 8.0  # the child's own close: its worker (5 s at most) and its last presence
# At most one wake in this long: a lone event (a real dock's sessions are minutes apart)
# leaves at once; a burst costs the child one step, not one per event, since the child
# reads the outbox every 0.1 s anyway. Each wake is a process to schedule on a CPU the
# decisions share.
WAKE_GAP_S = 0.1
CLOCK_STEP_S = 0.01  # a smaller change of the dock's clock offset is not worth a line
SUMMARY_KEYS = ("dock_id", "peers", "outbox", "stale", "connected", "conflicts", "kicked", "equivocations")


class LinkProcess:
    # After sys.executable: no settings, no secrets. -P: nothing from the working directory
    # shadows the installed code (the package root goes first on PYTHONPATH instead).
    COMMAND = ("-P", "-m", "appliance.fleet.child")

    def __init__(self, settings: dict[str, Any], *, clock, broker, stale_after_s: float,
                 initial_status: dict[str, Any]):
        """`settings` for fleet/child.py (secrets included: they go down the pipe only);
        `initial_status` is what `status()` says until the child first reports."""
        self.settings = settings
        self.dock_id = settings["dock_id"]
        self.broker = broker
        self.clock = clock
        self.stale_after_s = stale_after_s
        self._status = dict(initial_status)
        self._contact = time.monotonic()  # as the in-process link: not stale at start
        self._connected = False
        self._reported_at = 0.0
        self._clock_sent: tuple[float, bool] | None = None
        self._woken_at = -WAKE_GAP_S
        self._proc: subprocess.Popen | None = None
        self._fd: int | None = None  # the child's stdin, non-blocking
        self._fd_lock = threading.Lock()  # held for one write: the fd is never closed under it
        self._closing = threading.Event()
        self._lock = threading.Lock()  # spawning against closing
        self._supervisor = threading.Thread(target=self._supervise, name="fleet-link", daemon=True)
        self.exits = 0  # children that ended without being asked (for the tests and the log)

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> "LinkProcess":
        self._spawn()
        self._supervisor.start()
        return self

    def close(self) -> None:
        """Ask the child to stop (it says goodbye to the broker), wait, kill if it must."""
        with self._lock:
            self._closing.set()
            proc = self._proc
        if proc is not None:
            self._send(b'{"stop": true}\n')
            self._end_pipe(proc)  # EOF: the child stops even if the line did not fit
            try:
                proc.wait(CLOSE_WAIT_S)
            except subprocess.TimeoutExpired:
                log.warning("fleet: the link process did not stop within %.0f s; killing it", CLOSE_WAIT_S)
                proc.kill()
                proc.wait(5)
        if self._supervisor.is_alive():
            self._supervisor.join(5)
        self._connected = False

    @property
    def pid(self) -> int | None:
        proc = self._proc
        return None if proc is None else proc.pid

    # -- the decision's path: cheap, never blocks ---------------------------------------------
    def wake(self) -> None:
        """The journal recorded an event: tell the child (it also looks every 0.1 s, so a
        line skipped or lost to a full pipe costs a tenth of a second at most)."""
        now = time.monotonic()
        if now - self._woken_at < WAKE_GAP_S:
            return
        self._woken_at = now
        clock = self._clock_line()
        self._send((clock or b"") + b'{"wake": true}\n')

    # -- what the dock and the CLI see -------------------------------------------------------
    def stale(self) -> bool:
        """Nothing heard from the broker for longer than the clinic allows (as the link
        judged it in-process: never while connected)."""
        now = time.monotonic()
        if int(self._status.get("kicked") or 0) >= KICKED_AGAIN:
            return True  # knocked off the broker again and again (link.py)
        if self._connected and now - self._reported_at < STATUS_FRESH_S:
            return False
        return now - self._contact > self.stale_after_s

    def status(self) -> dict[str, Any]:
        return {**self._status, "stale": self.stale()}

    def summary(self) -> dict[str, Any]:
        """The contract's `status --json` `fleet` key: dock_id, peers, outbox, stale."""
        full = self.status()
        return {key: full.get(key, 0) for key in SUMMARY_KEYS}

    # -- the child -----------------------------------------------------------------------------
    def _spawn(self) -> None:
        with self._lock:
            if self._closing.is_set():
                return
            # This very code, wherever it runs from (appliance/children.py).
            proc = subprocess.Popen([sys.executable, *self.COMMAND], env=python_env(),
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, close_fds=True)
            assert proc.stdin is not None and proc.stdout is not None  # both are PIPE
            fd = proc.stdin.fileno()
            self._clock_sent = None
            first = {"settings": self.settings, "clock": self._clock_now()}
            try:
                _write_all(fd, json.dumps(first).encode() + b"\n")
            except OSError:
                pass  # it died already: the supervisor sees its stdout end
            os.set_blocking(fd, False)
            self._proc = proc
            with self._fd_lock:
                self._fd = fd
            log.info("fleet: link process %d started", proc.pid)

    def _supervise(self) -> None:
        backoff = RESTART_FIRST_S
        while not self._closing.is_set():
            proc = self._proc
            if proc is None:
                return
            started = time.monotonic()
            self._read(proc)
            code = proc.wait()
            self._connected = False
            if self._closing.is_set():
                return
            self.exits += 1
            if time.monotonic() - started > STEADY_AFTER_S:
                backoff = RESTART_FIRST_S
            why = f"the link process ended (exit code {code}); starting it again in {backoff:g} s"
            log.error("fleet: %s", why)
            self._status = {**self._status, "connected": False, "last_error": why}
            self._end_pipe(proc)
            while not self._closing.wait(backoff):
                backoff = min(backoff * 2, RESTART_MAX_S)
                try:
                    self._spawn()
                    break
                except OSError as error:
                    log.error("fleet: the link process cannot start (%s); trying again in %g s",
                              error, backoff)

    def _read(self, proc: subprocess.Popen) -> None:
        """The child's status lines until its stdout ends (it exited)."""
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                message = json.loads(line)
                status, contact = message["status"], message["contact"]
                contact = None if contact is None else float(contact)
            except (ValueError, KeyError, TypeError):
                continue
            if not isinstance(status, dict):
                continue
            self._status = status
            if contact is not None:
                self._contact = max(self._contact, contact)
            self._connected = bool(message.get("connected"))
            self._reported_at = time.monotonic()
            clock = self._clock_line()  # a clock moved while no event was recorded
            if clock:
                self._send(clock)
        proc.stdout.close()

    # -- the dock's clock, as the child must see it ------------------------------------------
    def _clock_now(self) -> list:
        offset = (self.clock.now() - datetime.now(timezone.utc)).total_seconds()
        return [round(offset, 3), bool(self.clock.synced())]

    def _clock_line(self) -> bytes | None:
        """A clock line when the dock's clock moved against the system's since the last one."""
        offset, synced = self._clock_now()
        sent = self._clock_sent
        if sent is not None and sent[1] == synced and abs(sent[0] - offset) < CLOCK_STEP_S:
            return None
        self._clock_sent = (offset, synced)
        return json.dumps({"clock": [offset, synced]}).encode() + b"\n"

    def _send(self, line: bytes) -> None:
        """One short line, whole or not at all (under PIPE_BUF: atomic); a full pipe or a
        dead child drops it."""
        with self._fd_lock:
            if self._fd is None:
                return
            try:
                os.write(self._fd, line)
            except OSError:  # BlockingIOError (full), BrokenPipeError (dead)
                pass

    def _end_pipe(self, proc: subprocess.Popen) -> None:
        """Close the child's stdin (its EOF), so no later write can reach a reused fd."""
        with self._fd_lock:
            self._fd = None
            try:
                if proc.stdin is not None:
                    proc.stdin.close()
            except OSError:
                pass


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
