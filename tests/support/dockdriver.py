"""Start, drive, kill and check a daemon process (tests/support/dockd.py).

`Ledger` keeps what the daemon acknowledged (sessions it said were opened or closed);
`check_record` then says, from the data folder alone, whether any of that was lost.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from appliance.daemon.control import ControlClient, ControlError, Refused
from appliance.record.store import Store

REPO = Path(__file__).resolve().parents[2]
CHECKLIST = "screened,test-area"


class DockProcess:
    """The daemon as a child process, with its control client."""

    def __init__(self, data: Path, socket: Path, pen: Path, env: dict | None = None):
        self.data, self.socket, self.pen = Path(data), Path(socket), Path(pen)
        self.env = dict(os.environ, **(env or {}))
        self.process: subprocess.Popen | None = None
        self.client = ControlClient(self.socket, timeout=10, via="reliability-test")

    def start(self, timeout: float = 20.0) -> float:
        """Start and wait for "ready"; returns the seconds it took."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the daemon is running already: kill or stop it before starting another")
        began = time.perf_counter()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.support.dockd", "--data", str(self.data),
             "--socket", str(self.socket), "--pen", str(self.pen)],
            cwd=REPO, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = _readline(self.process.stdout, timeout)
        if line.strip() != "ready":
            self.process.kill()
            _, err = self.process.communicate(timeout=5)
            raise RuntimeError(f"the daemon did not start: {line!r}\n{err}")
        return time.perf_counter() - began

    def call(self, cmd: str, **args):
        return self.client.call(cmd, **args)

    def kill(self) -> None:
        """kill -9: no clean-up of any kind runs."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self._reap()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
        self._reap()

    def _reap(self) -> None:
        if self.process is None:
            return
        try:
            self.process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate(timeout=5)
        self.process = None


def _readline(stream, timeout: float) -> str:
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return got[0] if got else ""


@dataclass
class Ledger:
    """What the daemon told its clients: the promises a crash or a power cut must keep."""

    opened: set = field(default_factory=set)
    closed: dict = field(default_factory=dict)  # id -> the session dict the dock reported
    cycles: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def saw(self, status: dict) -> None:
        with self.lock:
            if status.get("session") and status["session"]["id"]:
                self.opened.add(status["session"]["id"])
            last = status.get("last_session")
            if last and last.get("outcome") == "completed":
                self.closed[last["id"]] = last


def one_cycle(call, ledger: Ledger, ref: str, minutes: float = 1.0) -> None:
    """From whatever state the pen is in: dock it, fit a new cartridge, name a client,
    lift, needle, dock again. Each answer is recorded in the ledger as soon as it comes."""
    status = call("status")
    if not status["docked"]:
        ledger.saw(call("sim.dock")["status"])
    if "service_due" in call("status")["locks"]:
        call("service_reset", reason="reliability test: motor hours reached")
    ledger.saw(call("sim.cartridge")["status"])
    status = call("next_client", ref=ref, area="face", checklist=CHECKLIST)
    if status["held"]:
        raise AssertionError(f"pen held after a good cartridge and client: {status['locks']}")
    ledger.saw(call("sim.undock")["status"])
    ledger.saw(call("sim.needle", minutes=minutes, depth=1.0)["status"])
    ledger.saw(call("sim.dock")["status"])
    with ledger.lock:
        ledger.cycles += 1


class CycleRunner(threading.Thread):
    """Dock cycles in the background until the daemon goes away (the test kills it)."""

    def __init__(self, dock: DockProcess, ledger: Ledger, prefix: str):
        super().__init__(daemon=True)
        self.dock, self.ledger, self.prefix = dock, ledger, prefix
        self.error: BaseException | None = None

    def run(self) -> None:
        n = 0
        try:
            while True:
                n += 1
                one_cycle(self.dock.call, self.ledger, f"{self.prefix}-{n}")
        except (ControlError, OSError) as error:
            if isinstance(error, Refused):
                self.error = error
        except BaseException as error:  # noqa: BLE001 - reported by the test
            self.error = error


def check_record(data: Path, ledger: Ledger) -> list[str]:
    """Everything wrong with the data folder, measured against the ledger (empty = fine)."""
    problems = []
    with Store.open(data, readonly=True) as store:
        integrity = store.db.execute("PRAGMA integrity_check").fetchone()[0]
        if integrity != "ok":
            problems.append(f"integrity_check: {integrity}")
        verdict = store.verify_audit()
        if not verdict.ok:
            problems.append(f"audit chain broken at {verdict.first_bad_id}: {verdict.reason}")
        for session_id, reported in sorted(ledger.closed.items()):
            found = store.session(session_id)
            if found != reported:
                problems.append(f"closed session {session_id} lost or changed: "
                                f"reported {reported}, found {found}")
        for session_id in sorted(ledger.opened):
            found = store.session(session_id)
            if found is None:
                problems.append(f"opened session {session_id} is missing")
            elif found["outcome"] not in ("completed", "interrupted"):
                problems.append(f"session {session_id} still {found['outcome']} after restart")
        still_open = [s["id"] for s in store.open_sessions()]
        if still_open:
            problems.append(f"sessions left open after restart: {still_open}")
    return problems


def held_after_restart(status: dict, data: Path) -> str | None:
    """None when the restarted dock holds the pen, else what is wrong. A restart forgets
    the named next client, so nothing may release the pen until a person acts again."""
    if status["held"]:
        return None
    return f"pen free right after a restart (locks {status['locks']}, warnings {status['warnings']})"


def random_pause(rng: random.Random, longest: float) -> None:
    time.sleep(rng.uniform(0.0, longest))
