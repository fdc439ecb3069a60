"""A real `pendock demo` (daemon, simulated pen, page under waitress) and Debian's Chromium."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEMO_PASSWORD = "pendock-demo"


def pytest_collection_modifyitems(config, items):
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright Python package is missing: pip install playwright (no browser download needed)"
    if reason:
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Demo:
    def __init__(self, data: Path, port: int, env: dict):
        self.data, self.port, self.env = data, port, env
        self.url = f"http://127.0.0.1:{port}"

    def sim(self, *args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "appliance", "sim", *args], env=self.env,
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0, done.stderr
        return done.stdout

    def pendock(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "appliance", *args], env=self.env, input=stdin,
                              capture_output=True, text=True, timeout=30)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo")
    runtime = tmp_path_factory.mktemp("run")
    port = _free_port()
    env = dict(os.environ, PENDOCK_DATA=str(data), XDG_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1")
    env.pop("PENDOCK_SOCKET", None)
    process = subprocess.Popen([sys.executable, "-m", "appliance", "demo", "--data", str(data), "--port", str(port)],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    seen = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        seen.append(line)
        if "Page:" in line:
            break
    else:
        line = ""
    if "Page:" not in line:
        process.kill()
        pytest.fail("pendock demo did not start:\n" + "".join(seen))
    try:
        yield Demo(data, port, env)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def log_in(page, base: str, name: str = "demo") -> None:
    page.goto(base + "/")
    page.fill("#name", name)
    page.fill("#password", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("#live")
