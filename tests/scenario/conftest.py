"""A simulated dock for scenario tests: `pendock demo` as a real process, driven by the CLI."""
from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    """One `pendock demo` process and a `run()` that calls the CLI against it."""

    def __init__(self, data: Path):
        self.data = data
        self.port = free_port()
        self.proc: subprocess.Popen | None = None
        self.env = dict(os.environ, PENDOCK_DATA=str(data), PYTHONPATH=str(REPO))
        self.env.pop("PENDOCK_SOCKET", None)

    def start(self, timeout: float = 20.0) -> "Demo":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "demo", "--port", str(self.port)],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
        )
        deadline = time.monotonic() + timeout
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if "Page:" in line:
                self.url = re.search(r"http://\S+", line).group(0)
                return self
        self.stop()
        raise RuntimeError("demo did not start:\n" + "".join(lines))

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "appliance", *args], env=self.env, input=stdin,
            capture_output=True, text=True, timeout=30, cwd=REPO,
        )

    def ok(self, *args: str) -> str:
        result = self.run(*args)
        assert result.returncode == 0, f"pendock {' '.join(args)} -> {result.returncode}\n{result.stdout}{result.stderr}"
        return result.stdout

    def json(self, *args: str):
        return json.loads(self.ok(*args, "--json"))

    def status(self) -> dict:
        return self.json("status")

    def kill9(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def demo(tmp_path):
    dock = Demo(tmp_path / "data").start()
    yield dock
    dock.stop()
