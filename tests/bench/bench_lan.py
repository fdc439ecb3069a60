"""S5: the LAN cannot wear the dock down, as figures.

    .venv/bin/python -m tests.bench.run_all --only bench_lan
    .venv/bin/python -m tests.bench.bench_lan

Against a daemon in its own process with `ulimit -n 128` (tests/support/dockd.py):
140 idle connections held open while `status` is asked 50 times (latency p50/p99 and the
daemon's CPU share: it must answer and not spin); 20 concurrent clients, 20 rounds (every
one answered). On the page (the real app, a fake daemon that counts its calls): 200 login
attempts while throttled (audit writes; time per attempt).
"""
from __future__ import annotations

import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.common import Figure, percentile

REPO = Path(__file__).resolve().parents[2]


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    return sock


def socket_figures(tmp: Path, quick: bool) -> list[Figure]:
    from appliance.daemon.control import ControlClient

    sock_path = tmp / "control.sock"
    daemon = subprocess.Popen(
        [sys.executable, "-m", "tests.support.dockd", "--data", str(tmp / "d"), "--socket", str(sock_path)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128)),
        env=dict(os.environ, PYTHONPATH=str(REPO)))
    idle: list[socket.socket] = []
    try:
        if daemon.stdout.readline().strip() != "ready":
            raise RuntimeError("the daemon did not start")
        deadline = time.monotonic() + 10
        while len(idle) < 140 and time.monotonic() < deadline:
            try:
                idle.append(_connect(sock_path))
            except BlockingIOError:
                time.sleep(0.01)
        client = ControlClient(sock_path, timeout=5)
        cpu0, wall0 = _cpu_seconds(daemon.pid), time.monotonic()
        times, failures = [], 0
        for _ in range(20 if quick else 50):
            started = time.perf_counter()
            try:
                client.call("status")
                times.append((time.perf_counter() - started) * 1000)
            except Exception:  # counted: the figure is how many failed
                failures += 1
            time.sleep(0.02)
        cpu_share = (_cpu_seconds(daemon.pid) - cpu0) / (time.monotonic() - wall0)
        answered = []
        for _ in range(5 if quick else 20):
            barrier, results = threading.Barrier(20), []

            def one(barrier=barrier, results=results):
                barrier.wait()
                try:
                    results.append(ControlClient(sock_path, timeout=5).call("status") is not None)
                except Exception:
                    results.append(False)

            threads = [threading.Thread(target=one) for _ in range(20)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(15)
            answered += results
    finally:
        for sock in idle:
            sock.close()
        daemon.terminate()
        daemon.wait(10)
    p99 = percentile(times, 0.99) if times else float("inf")
    return [
        Figure("S5 status under 140 idle connections (ulimit -n 128)",
               f"p50 {percentile(times, 0.5):.1f} ms, p99 {p99:.1f} ms, {failures} failed" if times else "no answer",
               "every call answered", failures == 0,
               f"{len(idle)} idle connections held, {len(times) + failures} status calls"),
        Figure("S5 daemon CPU while 140 connections idle", f"{cpu_share * 100:.1f} %", "no spin (< 50 %)",
               cpu_share < 0.5, "utime+stime of the daemon over the status calls' wall time"),
        Figure("S5 20 concurrent clients answered", f"{sum(answered)}/{len(answered)}", "all",
               all(answered) and bool(answered), f"{len(answered) // 20} rounds of 20 at a barrier"),
    ]


def login_figures(tmp: Path) -> list[Figure]:
    import re
    from datetime import date

    from appliance.core.config import Config
    from appliance.page.app import create_app
    from appliance.record.store import Store
    from tests.web import records
    from tests.web.conftest import FakeDaemon

    records.build_record(tmp / "r", list(records.session_rows(date(2026, 11, 20), 1, 1)))
    daemon = FakeDaemon()
    store = Store.open(tmp / "r", readonly=True)
    try:
        app = create_app(Config(), tmp / "r", tmp / "r" / "control.sock", control=daemon.client, store=store,
                         secret_key="bench", status_fresh_s=0)
        client = app.test_client()
        environ = {"REMOTE_ADDR": "192.168.1.66"}

        def attempt(password: str) -> int:
            html = client.get("/login", environ_base=environ).get_data(as_text=True)
            token = re.search(r'name="csrf" value="([^"]+)"', html).group(1)
            return client.post("/login", data={"csrf": token, "name": "boss", "password": password, "next": "/"},
                               environ_base=environ).status_code

        for _ in range(5):
            attempt("wrong guess")
        before = len(daemon.commands("login"))
        started = time.perf_counter()
        codes = [attempt("another guess") for _ in range(200)]
        per_attempt = (time.perf_counter() - started) / 200 * 1000
        writes = len(daemon.commands("login")) - before
    finally:
        store.close()
    return [Figure("S5 audit writes for 200 throttled logins", f"{writes}", "no write per attempt (≤ 1 a burst)",
                   writes <= 1 and set(codes) == {429}, f"{per_attempt:.2f} ms per refused attempt, page in-process")]


def measure(quick: bool = False) -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="pendock-lan-") as tmp:
        return socket_figures(Path(tmp), quick) + login_figures(Path(tmp))


if __name__ == "__main__":
    from tests.bench.common import table

    print(table(measure("--quick" in sys.argv)))
