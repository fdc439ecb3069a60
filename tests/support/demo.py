"""A real `pendock demo` as a child process, for the tests and the benches.

One way to start it (its own data and runtime folders, never an installed dock's socket),
to wait for its page with a timeout that holds even when it prints nothing, and to stop it.
Its output is read all along by a thread, so a chatty demo (or its page, which shares the
pipe) can never block on a full pipe that nobody reads.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
READY_MARK = "Page:"  # the demo prints its page address once the page answers


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def end_process(process: subprocess.Popen, sig: int = signal.SIGINT, timeout: float = 10.0) -> None:
    """Ask a child to stop with `sig`; kill it if it has not within `timeout` seconds."""
    if process.poll() is None:
        process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class DemoProcess:
    """One `pendock demo` process and the CLI (`run`, `ok`, `json`, `status`) pointed at it.

    `env` and `cwd` may be changed between construction and `start()` (e.g. to drop
    PENDOCK_DATA, or to run an installed wheel from outside the checkout).
    """

    def __init__(self, data: Path, *, port: int | None = None, runtime: Path | None = None,
                 data_flag: bool = False, cwd: Path = REPO, program: list[str] | None = None,
                 demo_args: tuple[str, ...] = ()):
        self.data = Path(data)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.data_flag = data_flag  # also pass --data (else the demo finds PENDOCK_DATA)
        self.demo_args = list(demo_args)  # more of `pendock demo`'s flags (--broker URL --dock-id ID, --tls)
        self.cwd = cwd
        self.program = program or [sys.executable, "-m", "appliance"]  # or an installed `pendock` script
        runtime = runtime or self.data.with_name(self.data.name + "-run")
        self.env = dict(os.environ, PENDOCK_DATA=str(self.data), XDG_RUNTIME_DIR=str(runtime),
                        PYTHONUNBUFFERED="1", PYTHONPATH=str(REPO))
        self.env.pop("PENDOCK_SOCKET", None)
        self.proc: subprocess.Popen | None = None
        self.printed: deque[str] = deque(maxlen=2000)  # what the demo and its page printed, latest last
        self._ready = threading.Event()
        self._drainer: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> "DemoProcess":
        """Start the demo and return once it prints its page address; raise if it does not."""
        self.spawn()
        self.wait_for_page(timeout)
        return self

    def spawn(self) -> "DemoProcess":
        """Start the demo without waiting for it (for timing its start from outside)."""
        if self.env.get("XDG_RUNTIME_DIR"):
            Path(self.env["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True)
        # The simulated day starts at 08:00, so a test's day of sessions never runs past
        # midnight into an empty "today", whenever the suite runs.
        command = [*self.program, "demo", "--port", str(self.port), "--start-at", "08:00"]
        command += ["--data", str(self.data)] if self.data_flag else []
        command += self.demo_args
        self.proc = subprocess.Popen(command, env=self.env, cwd=self.cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self._ready = threading.Event()  # a new one each start: the demo may be restarted (kill9, start)
        self.printed.clear()
        self._drainer = threading.Thread(target=self._drain, args=(self.proc.stdout, self._ready),
                                         name="demo-output", daemon=True)
        self._drainer.start()
        return self

    def wait_for_page(self, timeout: float = 20.0) -> None:
        """Wait for the demo's "Page:" line; stop it and say what it printed if none comes."""
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                code = self.proc.poll()
                how = f"it exited with code {code}" if code is not None else "still running, so stopped"
                self.stop()
                self._drainer.join(5)
                raise RuntimeError(f"`pendock demo --port {self.port}` did not print its page address within "
                                   f"{timeout:g} s ({how}); it printed:\n" + ("".join(self.printed) or "(nothing)"))

    def _drain(self, stdout, ready: threading.Event) -> None:
        with stdout:
            for line in stdout:
                self.printed.append(line)
                if READY_MARK in line:
                    ready.set()

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
        """`pendock ARGS` against this demo; stdin is empty unless given (never the test's
        terminal, where `pendock override` would ask for a manager)."""
        return subprocess.run([*self.program, *args], env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=30, cwd=self.cwd)

    def ok(self, *args: str) -> str:
        """`pendock ARGS`, which must succeed; its standard output."""
        result = self.run(*args)
        assert result.returncode == 0, f"pendock {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}"
        return result.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--json"))

    def status(self) -> dict:
        return self.json("status")

    def sim(self, *args: str) -> str:
        """`pendock sim ARGS`: move the simulated pen."""
        return self.ok("sim", *args)

    def kill9(self) -> None:
        """SIGKILL: nothing of the demo's own clean-up runs."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        """Ctrl-C, as a user stops it; killed if it has not stopped within 10 s."""
        if self.proc is not None:
            end_process(self.proc, signal.SIGINT)
