"""P2 and P3: the page's cost with five years of records, and under 20 concurrent clients.

P2: one run builds a five-year record (50 sessions a day, ~91k sessions, inserted with
executemany into the daemon's own schema) and a one-day record, then times GET / and
GET /api/sessions for the last day on each, server-side through Flask's test client
(the daemon is a stub answering `status` at once, so only the page and the record count).
P3: a real `pendock demo` (daemon, simulated pen, page under waitress) with 20 client
threads, each logged in with its own cookie and behaving as an open page does: GET
/api/status every second (live.js), the whole page / every 5 s and /api/sessions every
10 s, for 30 s on loopback, while a thread runs dock cycles through the daemon's socket.
The dock's P1 (bench_dock, in its own process) is measured idle and during the load.
`--stress` drops the pacing (requests back to back): a figure beyond the bar, which on a
2-core machine saturates both cores with the load generator itself.

    python -m tests.bench.bench_page [--quick] [--seconds 30] [--clients 20]
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from datetime import date, timedelta
from pathlib import Path

from tests.bench.common import Figure, median, percentile, table

REPO = Path(__file__).resolve().parents[2]
P2_RATIO_LIMIT = 1.5
P2_P50_LIMIT_MS = 10.0
P3_P99_LIMIT_MS = 100.0
P3_P1_RATIO_LIMIT = 2.0
LAST_DAY = date(2026, 11, 28)


# -- P2 -------------------------------------------------------------------------------------

def _page_app(data: Path, today: date):
    from appliance.config import Config
    from appliance.page import create_app
    from appliance.store import Store
    from tests.web.conftest import STATUS

    status = dict(STATUS, today=today.isoformat(), now=f"{today.isoformat()}T18:00:00+00:00")

    class _Daemon:
        def call(self, cmd, **args):
            return status if cmd == "status" else {"recorded": True}

    store = Store.open(data, readonly=True)
    app = create_app(Config(), data, data / "control.sock", control=lambda via: _Daemon(), store=store,
                     secret_key="bench")
    return app, store


def _timed(client, path: str, runs: int) -> list[float]:
    for _ in range(max(5, runs // 10)):  # warm the caches and the templates
        assert client.get(path).status_code == 200
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        response = client.get(path)
        samples.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, (path, response.status_code)
    return samples


def measure_p2(years: float = 5.0, runs: int = 400) -> list[Figure]:
    from tests.web import records
    from tests.web.conftest import log_in

    days = max(1, round(365 * years))
    per_day = 50
    results = {}
    with tempfile.TemporaryDirectory(prefix="pendock-p2-") as tmp:
        began = time.monotonic()
        for label, n_days in (("big", days), ("one", 1)):
            data = Path(tmp) / label
            first = LAST_DAY - timedelta(days=n_days - 1)
            records.build_record(data, records.session_rows(first, n_days, per_day))
        build_s = time.monotonic() - began
        for label in ("big", "one"):
            app, store = _page_app(Path(tmp) / label, LAST_DAY)
            try:
                client = app.test_client()
                assert log_in(client).status_code == 302
                results[label] = {path: _timed(client, path, runs)
                                  for path in ("/", f"/api/sessions?date={LAST_DAY.isoformat()}")}
            finally:
                store.close()
    figures = []
    for path, name in (("/", "GET /"), (f"/api/sessions?date={LAST_DAY.isoformat()}", "GET /api/sessions")):
        big, one = median(results["big"][path]), median(results["one"][path])
        ratio = big / one
        span = f"{years:g} year{'s' if years != 1 else ''}"
        figures.append(Figure(f"P2 {name} {span} vs 1 day", f"x{ratio:.2f}", f"<= x{P2_RATIO_LIMIT}",
                              ratio <= P2_RATIO_LIMIT,
                              f"p50 {big:.2f} ms vs {one:.2f} ms; {runs} runs each; "
                              f"{days * per_day} sessions built in {build_s:.0f} s"))
        figures.append(Figure(f"P2 {name} p50, {span}", f"{big:.2f} ms", f"<= {P2_P50_LIMIT_MS} ms",
                              big <= P2_P50_LIMIT_MS,
                              f"p99 {percentile(results['big'][path], 0.99):.2f} ms; Flask test client, "
                              f"{per_day} sessions on the day shown"))
    return figures


# -- P3 -------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start_demo(tmp: Path):
    data, runtime = tmp / "data", tmp / "run"
    runtime.mkdir()
    port = _free_port()
    env = dict(os.environ, PENDOCK_DATA=str(data), XDG_RUNTIME_DIR=str(runtime), PYTHONUNBUFFERED="1")
    env.pop("PENDOCK_SOCKET", None)
    process = subprocess.Popen([sys.executable, "-m", "appliance", "demo", "--data", str(data), "--port", str(port)],
                               cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if "Page:" in line:
            threading.Thread(target=process.stdout.read, daemon=True).start()  # keep the pipe drained
            return process, data, port
        if not line:
            break
    process.kill()
    raise RuntimeError("pendock demo did not start")


class _Browser:
    """One page client on one keep-alive connection, with its own login cookie."""

    def __init__(self, port: int, name: str = "demo", password: str = "pendock-demo"):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self.cookie = ""
        body = self.get("/login")[1]
        csrf = re.search(r'name="csrf" value="([^"]+)"', body).group(1)
        form = urllib.parse.urlencode({"csrf": csrf, "name": name, "password": password, "next": "/"})
        status, _ = self.request("POST", "/login", form, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 302:
            raise RuntimeError(f"login failed: {status}")

    def request(self, method: str, path: str, body=None, headers=None) -> tuple[int, str]:
        headers = dict(headers or {})
        if self.cookie:
            headers["Cookie"] = self.cookie
        self.conn.request(method, path, body=body, headers=headers)
        response = self.conn.getresponse()
        text = response.read().decode("utf-8", "replace")
        for value in response.headers.get_all("Set-Cookie") or ():
            self.cookie = value.split(";", 1)[0]
        return response.status, text

    def get(self, path: str) -> tuple[int, str]:
        return self.request("GET", path)


def _dock_cycles(sock: Path, stop: threading.Event, counts: dict) -> None:
    """Sessions, one after another, through the daemon's socket (as `pendock sim` does)."""
    from appliance.control import ControlClient, ControlError

    client = ControlClient(sock, timeout=10)
    n = 0
    while not stop.is_set():
        n += 1
        try:
            client.call("sim.cartridge", serial=None, strokes=None, remove=False)
            client.call("next_client", ref=f"L-{n}", area="face", checklist="screened,test-area")
            client.call("sim.undock", force=False)
            client.call("sim.needle", minutes="10", depth="1.0", strokes=None)
            client.call("sim.dock", bounce=False)
            counts["cycles"] += 1
        except ControlError as error:
            counts["errors"].append(str(error))
            stop.wait(0.2)


def _p1_p99(cycles: int) -> float:
    from tests.bench.bench_dock import run

    samples, _ = run(cycles)
    return percentile([s * 1000 for s in samples], 0.99)


def _p1_in_child(cycles: int) -> float:
    """P1 in its own process, as the daemon is: the load generator's GIL is not the dock's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_p1_p99, (cycles,))


def measure_p3(seconds: float = 30.0, clients: int = 20, p1_cycles: int = 300,
               stress: bool = False) -> list[Figure]:
    idle_p1 = _p1_in_child(p1_cycles)
    with tempfile.TemporaryDirectory(prefix="pendock-p3-") as tmp:
        process, data, port = _start_demo(Path(tmp))
        try:
            browsers = [_Browser(port) for _ in range(clients)]
            stop = threading.Event()
            counts = {"cycles": 0, "errors": []}
            cycler = threading.Thread(target=_dock_cycles, args=(data / "control.sock", stop, counts), daemon=True)
            latencies: list[float] = []
            errors: list[str] = []
            lock = threading.Lock()
            deadline = time.monotonic() + seconds

            def load(browser: _Browser, k: int) -> None:
                mine, bad = [], []
                stress_paths = ("/api/status", "/", "/api/status", "/api/sessions")
                tick = 0
                next_at = time.monotonic() + (k / clients)  # pages opened across the first second
                while time.monotonic() < deadline:
                    if stress:
                        path = stress_paths[(k + tick) % len(stress_paths)]
                    else:
                        stop.wait(max(0.0, next_at - time.monotonic()))
                        next_at += 1.0
                        path = "/" if tick % 5 == 0 else "/api/sessions" if tick % 10 == 7 else "/api/status"
                    tick += 1
                    began = time.perf_counter()
                    try:
                        status, _ = browser.get(path)
                    except (OSError, http.client.HTTPException) as error:
                        bad.append(f"{path}: {error!r}")
                        browser.conn.close()
                        continue
                    mine.append((time.perf_counter() - began) * 1000)
                    if status != 200:
                        bad.append(f"{path}: HTTP {status}")
                with lock:
                    latencies.extend(mine)
                    errors.extend(bad)

            cycler.start()
            threads = [threading.Thread(target=load, args=(b, k)) for k, b in enumerate(browsers)]
            for t in threads:
                t.start()
            loaded_p1 = _p1_in_child(p1_cycles)  # during the load
            for t in threads:
                t.join()
            stop.set()
            cycler.join(15)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
    p99, p50 = percentile(latencies, 0.99), median(latencies)
    ratio = loaded_p1 / idle_p1
    pacing = "back to back (stress)" if stress else "paced as open pages (status 1/s, page every 5 s)"
    how = (f"{clients} clients x {seconds:.0f} s {pacing}, {len(latencies)} requests "
           f"({len(latencies) / seconds:.0f}/s); {counts['cycles']} dock cycles alongside")
    return [
        Figure("P3 page errors under load", f"{len(errors)}", "0", not errors,
               how + (f"; first: {errors[0]}" if errors else "")),
        Figure("P3 page p99 under load", f"{p99:.1f} ms", f"<= {P3_P99_LIMIT_MS:.0f} ms", p99 <= P3_P99_LIMIT_MS,
               f"p50 {p50:.1f} ms, max {max(latencies):.1f} ms"),
        Figure("P3 dock P1 p99 loaded / idle", f"x{ratio:.2f}", f"<= x{P3_P1_RATIO_LIMIT:.0f}",
               ratio <= P3_P1_RATIO_LIMIT,
               f"{loaded_p1:.2f} ms vs {idle_p1:.2f} ms; {p1_cycles} cycles each, bench_dock in its own process"
               + (f"; {len(counts['errors'])} dock-cycle errors" if counts["errors"] else "")),
    ]


def measure(quick: bool = False) -> list[Figure]:
    if quick:
        return measure_p2(years=1.0, runs=150) + measure_p3(seconds=8, clients=20, p1_cycles=100)
    return measure_p2() + measure_p3()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one year of records, 8 s of load")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--only", choices=["P2", "P3"])
    parser.add_argument("--stress", action="store_true", help="P3 without pacing: requests back to back")
    args = parser.parse_args(argv)
    figures = []
    if args.only in (None, "P2"):
        figures += measure_p2(years=1.0 if args.quick else 5.0, runs=150 if args.quick else args.runs)
    if args.only in (None, "P3"):
        figures += measure_p3(seconds=8 if args.quick else args.seconds, clients=args.clients,
                              p1_cycles=100 if args.quick else 300, stress=args.stress)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
