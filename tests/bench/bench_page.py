"""P2 and P3: the page's cost with five years of records, and under 20 concurrent clients.

P2: one run builds a five-year record (50 sessions a day, ~91k sessions, inserted with
executemany into the daemon's own schema) and a one-day record, then times GET / and
GET /api/sessions for the last day on each, server-side through Flask's test client
(the daemon is a stub answering `status` at once, so only the page and the record count).
P3: a real `pendock demo` (daemon, simulated pen, page under waitress at SCHED_IDLE and
nice 10, as the demo and pendock-web.service run it) loaded by wrk (Debian's wrk: -t2, 20 connections
back to back, 30 s, nice 19, rotating /, /api/status and /api/sessions with a logged-in
cookie), while a thread runs a session a second through the page's own daemon (so the
record keeps changing under the page; the simulated day moves on every 50 sessions). The
dock-cycle loop P1 times is bench_dock's 1,000 cycles, in its own process at the daemon
unit's Nice= (when root); it is measured idle before the load, during it and idle after
it, and the ratio is against the lower idle figure. The load runs 30 s, or longer when
needed so that it outlasts the loaded P1.
`--page-nice 0` gives the figure with the page not yielding to the dock. `--paced` adds
the older figure from 20 Python client threads paced as open pages (status every second,
the page every 5 s); `--stress` drops their pacing.

    python -m tests.bench.bench_page [--quick] [--only P3] [--seconds 30] [--page-nice 0] [--paced]
"""
from __future__ import annotations

import argparse
import http.client
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from tests.bench.common import Figure, median, percentile, table
from tests.support.demo import DemoProcess

P2_RATIO_LIMIT = 1.5
P2_P50_LIMIT_MS = 10.0
P3_P99_LIMIT_MS = 100.0
P3_P1_RATIO_LIMIT = 2.0
LAST_DAY = date(2026, 11, 28)


# -- P2 -------------------------------------------------------------------------------------

def _page_app(data: Path, today: date):
    from appliance.core.config import Config
    from appliance.page.app import create_app
    from appliance.record.store import Store
    from datetime import datetime, timezone

    from appliance.daemon.status import present_status
    from tests.web.conftest import STATE

    status = present_status(**dict(STATE, now=datetime(today.year, today.month, today.day, 18,
                                                       tzinfo=timezone.utc)))

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


def _timed_after_change(client, path: str, db: Path, runs: int) -> list[float]:
    """The first request after each commit by another connection (as the daemon commits
    after every session): the day cache misses, so the day is read and rendered again."""
    import sqlite3

    writer = sqlite3.connect(db)
    samples = []
    try:
        for n in range(runs):
            with writer:  # any commit moves the record's data_version
                writer.execute("INSERT OR REPLACE INTO state (key, value) VALUES ('bench_change', ?)", (str(n),))
            began = time.perf_counter()
            response = client.get(path)
            samples.append((time.perf_counter() - began) * 1000)
            assert response.status_code == 200, (path, response.status_code)
    finally:
        writer.close()
    return samples


def measure_p2(years: float = 5.0, runs: int = 400) -> list[Figure]:
    from tests.web import records
    from tests.web.conftest import log_in

    days = max(1, round(365 * years))
    per_day = 50
    results, changed = {}, {}
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
                changed[label] = {path: _timed_after_change(client, path, Path(tmp) / label / "pendock.db",
                                                            max(10, runs // 4))
                                  for path in results[label]}
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
    for path, name in (("/", "GET /"), (f"/api/sessions?date={LAST_DAY.isoformat()}", "GET /api/sessions")):
        big, one = median(changed["big"][path]), median(changed["one"][path])
        figures.append(Figure(f"P2 {name} after a record change, p50, {span}", f"{big:.2f} ms",
                              f"<= {P2_P50_LIMIT_MS} ms", big <= P2_P50_LIMIT_MS,
                              f"the day cache's miss: p99 {percentile(changed['big'][path], 0.99):.2f} ms; "
                              f"1 day: p50 {one:.2f} ms; {len(changed['big'][path])} commits, each "
                              f"followed by one request"))
    return figures


# -- P3 -------------------------------------------------------------------------------------

class _Browser:
    """One page client on one keep-alive connection, with its own login cookie."""

    def __init__(self, port: int, name: str = "demo", password: str = "pendock-demo", ca: Path | None = None):
        if ca is None:
            self.conn: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        else:  # `pendock demo --tls`: HTTPS, trusting the demo's own CA
            import ssl

            self.conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10,
                                                    context=ssl.create_default_context(cafile=str(ca)))
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


SESSIONS_A_DAY = 50  # the quality bars' clinic day
CYCLE_PACE_S = 1.0


def _dock_cycles(sock: Path, stop: threading.Event, counts: dict, pace_s: float = CYCLE_PACE_S) -> None:
    """Sessions through the page's own daemon (as `pendock sim` does), one every `pace_s`
    (far busier than a clinic, where one takes 45 minutes), so the record keeps changing
    under the page; the simulated day moves on every 50 sessions, as a clinic's does.
    The dock-cycle loop whose timing P1 measures runs in its own process (bench_dock)."""
    from appliance.daemon.control import ControlClient, ControlError

    client = ControlClient(sock, timeout=10)
    n = 0
    while not stop.wait(pace_s):
        n += 1
        try:
            if n % SESSIONS_A_DAY == 0:
                client.call("sim.clock", advance="1d")
            client.call("sim.cartridge", serial=None, strokes=None, remove=False)
            client.call("next_client", ref=f"L-{n}", area="face", checklist="screened,test-area")
            client.call("sim.undock", force=False)
            client.call("sim.needle", minutes="1", depth="1.0", strokes=None)  # 1 min: no service lock for 3,000 cycles
            client.call("sim.dock", bounce=False)
            counts["cycles"] += 1
        except ControlError as error:
            counts["errors"].append(str(error))
            stop.wait(0.2)


P1_CYCLES = 1000  # the bar's own count (bench_dock)
LOAD_STRETCH = 2.5  # the loaded P1 takes at most this many times its idle time, so the load outlasts it


def daemon_nice() -> int:
    """The Nice= of systemd/pendock.service: the priority the daemon runs at on a dock."""
    unit = Path(__file__).resolve().parents[2] / "systemd" / "pendock.service"
    for line in unit.read_text().splitlines():
        if line.startswith("Nice="):
            return int(line.split("=", 1)[1])
    return 0


def _p1_p99(cycles: int) -> float:
    from tests.bench.bench_dock import run

    try:  # run as the daemon runs on a dock (needs root to go below 0; else stays at 0)
        os.setpriority(os.PRIO_PROCESS, 0, daemon_nice())
    except PermissionError:
        pass
    samples = run(cycles)[0]  # with cartridge authentication, as a dock runs
    return percentile([s * 1000 for s in samples], 0.99)


def _p1_in_child(cycles: int) -> float:
    """P1 in its own process, as the daemon is: the load generator's GIL is not the dock's."""
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        return pool.apply(_p1_p99, (cycles,))


@dataclass(frozen=True)
class P1Run:
    p99_ms: float
    took_s: float


def _p1_timed(cycles: int) -> P1Run:
    began = time.monotonic()
    p99 = _p1_in_child(cycles)
    return P1Run(p99, time.monotonic() - began)


WRK_SCRIPT = r"""
-- Rotate the three paths an open page asks for; count answers other than 200 (a 302 to
-- the login form would be a 3xx, which wrk itself does not count as an error).
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) not200 = 0; n = 0 end
local paths = {"/", "/api/status", "/api/sessions"}
function request()
  n = n + 1
  return wrk.format("GET", paths[(n % #paths) + 1])
end
function response(status, headers, body)
  if status ~= 200 then not200 = not200 + 1 end
end
function done(summary, latency, requests)
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + t:get("not200") end
  io.write(string.format("PENDOCK not200=%d p50_us=%d p99_us=%d max_us=%d\n",
    bad, latency:percentile(50), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    not_200: int
    non_2xx: int        # wrk's own "Non-2xx or 3xx responses"
    socket_errors: int  # connect + read + write + timeout
    output: str

    @property
    def errors(self) -> int:
        return max(self.not_200, self.non_2xx) + self.socket_errors


def parse_wrk(output: str) -> WrkResult:
    """The figures out of wrk's --latency output and WRK_SCRIPT's closing line."""
    mine = re.search(r"PENDOCK not200=(\d+) p50_us=(\d+) p99_us=(\d+) max_us=(\d+)", output)
    if mine is None:
        raise RuntimeError(f"wrk printed no figures:\n{output}")
    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return WrkResult(
        requests=int(requests.group(1)) if requests else 0,
        per_second=float(rate.group(1)) if rate else 0.0,
        p50_ms=int(mine.group(2)) / 1000, p99_ms=int(mine.group(3)) / 1000, max_ms=int(mine.group(4)) / 1000,
        not_200=int(mine.group(1)),
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
        output=output,
    )


def _renice(pid: int, value: int) -> bool:
    """Set a process's nice value (lowering it needs root); False when not allowed."""
    try:
        os.setpriority(os.PRIO_PROCESS, pid, value)
    except PermissionError:
        return False
    return True


def measure_p3(seconds: float = 30.0, clients: int = 20, p1_cycles: int = P1_CYCLES, *,
               page_nice: int | None = None, threads: int = 2, tls: bool = False) -> list[Figure]:
    """P3 with wrk: `clients` connections back to back, rotating /, /api/status and
    /api/sessions with a logged-in cookie, beside dock cycles. The dock's P1 (`p1_cycles`,
    in its own process) is measured idle before the load, during it and idle again after
    it; the ratio is taken against the lower idle figure (the stricter one).

    wrk runs for `seconds`, stretched when needed so that the load outlasts the loaded P1
    (LOAD_STRETCH times the idle P1's time); the page figures are over the whole run.
    wrk runs at nice 19: it stands for tablets elsewhere on the network, not on the Pi.
    The page runs as `pendock demo` starts it (nice 10); `page_nice` sets another value
    (0: the page competing with the dock on equal terms)."""
    wrk = shutil.which("wrk")
    if wrk is None:
        raise RuntimeError("wrk is not installed: apt-get install wrk (make deps-system does)")
    idle_before = _p1_timed(p1_cycles)
    settle_s = min(2.0, seconds / 10)  # the load is up before P1 starts
    load_s = max(seconds, settle_s + idle_before.took_s * LOAD_STRETCH)
    with tempfile.TemporaryDirectory(prefix="pendock-p3-") as tmp:
        demo = DemoProcess(Path(tmp) / "data", data_flag=True)
        demo.demo_args = ["--tls"] if tls else []  # `tls`: through nginx, over HTTPS (appliance/front.py)
        demo.start(timeout=60)
        data, port = demo.data, demo.port
        try:
            pid = demo.proc.pid
            children = [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
            page = next(c for c in children if b"web" in Path(f"/proc/{c}/cmdline").read_bytes().split(b"\0"))
            if page_nice is not None and not _renice(page, page_nice):
                raise RuntimeError(f"cannot set the page's nice value to {page_nice} (needs root)")
            nice_of_page = os.getpriority(os.PRIO_PROCESS, page)
            idle_page = os.sched_getscheduler(page) == os.SCHED_IDLE
            cookie = _Browser(port, ca=data / "tls" / "ca.crt" if tls else None).cookie
            script = Path(tmp) / "rotate.lua"
            script.write_text(WRK_SCRIPT)
            stop = threading.Event()
            counts = {"cycles": 0, "errors": []}
            cycler = threading.Thread(target=_dock_cycles, args=(data / "control.sock", stop, counts), daemon=True)
            cycler.start()
            load_began = time.monotonic()
            load = subprocess.Popen(
                ["nice", "-n", "19", wrk, f"-t{threads}", f"-c{clients}", f"-d{load_s:.0f}s", "--latency",
                 "--timeout", "5s", "-s", str(script), "-H", f"Cookie: {cookie}", f"{'https' if tls else 'http'}://127.0.0.1:{port}/"],
                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            time.sleep(settle_s)
            loaded = _p1_timed(p1_cycles)
            p1_done_at = time.monotonic() - load_began
            output, _ = load.communicate(timeout=load_s + 60)
            load_ended_at = time.monotonic() - load_began
            stop.set()
            cycler.join(15)
        finally:
            demo.stop()
    idle_after = _p1_timed(p1_cycles)
    idle_p1 = min(idle_before.p99_ms, idle_after.p99_ms)
    result = parse_wrk(output)
    ratio = loaded.p99_ms / idle_p1
    inside = p1_done_at <= load_ended_at - 0.5
    overlap = (f"loaded P1 ran {settle_s:.0f}-{p1_done_at:.0f} s of the {load_s:.0f} s load" if inside else
               f"NOT INSIDE THE LOAD: loaded P1 ended at {p1_done_at:.0f} s, the load at {load_ended_at:.0f} s")
    stretched = f" (the bar's {seconds:g} s stretched to outlast the loaded P1)" if load_s > seconds else ""
    how = (f"wrk -t{threads} -c{clients} -d{load_s:.0f}s{stretched} (nice 19), /, /api/status, /api/sessions "
           f"in turn, logged in; page at nice {nice_of_page}{' SCHED_IDLE' if idle_page else ''}; "
           f"{result.requests} requests "
           f"({result.per_second:.0f}/s); {counts['cycles']} dock cycles alongside")
    return [
        Figure("P3 page errors under load", f"{result.errors}", "0", result.errors == 0,
               how + f"; {result.non_2xx} non-2xx/3xx, {result.not_200} not 200, "
                     f"{result.socket_errors} socket errors"),
        Figure("P3 page p99 under load", f"{result.p99_ms:.1f} ms", f"<= {P3_P99_LIMIT_MS:.0f} ms",
               result.p99_ms <= P3_P99_LIMIT_MS, f"p50 {result.p50_ms:.1f} ms, max {result.max_ms:.1f} ms (wrk)"),
        Figure("P3 dock P1 p99 loaded / idle", f"x{ratio:.2f}", f"<= x{P3_P1_RATIO_LIMIT:.0f}",
               ratio <= P3_P1_RATIO_LIMIT and inside,
               f"loaded {loaded.p99_ms:.2f} ms vs idle {idle_p1:.2f} ms, the lower of idle before "
               f"{idle_before.p99_ms:.2f} ms and after {idle_after.p99_ms:.2f} ms; {p1_cycles} cycles each, "
               f"bench_dock in its own process at nice {daemon_nice() if os.geteuid() == 0 else 0} "
               f"(pendock.service's Nice=); {overlap}"
               + (f"; {len(counts['errors'])} dock-cycle errors, first: {counts['errors'][0]}"
                  if counts["errors"] else "")),
    ]


def measure_p3_paced(seconds: float = 30.0, clients: int = 20, p1_cycles: int = 300,
               stress: bool = False) -> list[Figure]:
    """P3 with Python client threads paced as open pages (an extra figure beside wrk's)."""
    idle_p1 = _p1_in_child(p1_cycles)
    with tempfile.TemporaryDirectory(prefix="pendock-p3-") as tmp:
        demo = DemoProcess(Path(tmp) / "data", data_flag=True).start(timeout=30)
        data, port = demo.data, demo.port
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
            demo.stop()
    p99, p50 = percentile(latencies, 0.99), median(latencies)
    ratio = loaded_p1 / idle_p1
    pacing = "back to back (stress)" if stress else "paced as open pages (status 1/s, page every 5 s)"
    how = (f"{clients} clients x {seconds:.0f} s {pacing}, {len(latencies)} requests "
           f"({len(latencies) / seconds:.0f}/s); {counts['cycles']} dock cycles alongside")
    return [
        Figure("P3 paced page errors under load", f"{len(errors)}", "0", not errors,
               how + (f"; first: {errors[0]}" if errors else "")),
        Figure("P3 paced page p99 under load", f"{p99:.1f} ms", f"<= {P3_P99_LIMIT_MS:.0f} ms", p99 <= P3_P99_LIMIT_MS,
               f"p50 {p50:.1f} ms, max {max(latencies):.1f} ms"),
        Figure("P3 paced dock P1 p99 loaded / idle", f"x{ratio:.2f}", f"<= x{P3_P1_RATIO_LIMIT:.0f}",
               ratio <= P3_P1_RATIO_LIMIT,
               f"{loaded_p1:.2f} ms vs {idle_p1:.2f} ms; {p1_cycles} cycles each, bench_dock in its own process"
               + (f"; {len(counts['errors'])} dock-cycle errors" if counts["errors"] else "")),
    ]


def measure(quick: bool = False) -> list[Figure]:
    if quick:
        return measure_p2(years=1.0, runs=150) + measure_p3(seconds=8, clients=20, p1_cycles=200)
    return measure_p2() + measure_p3()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one year of records, 8 s of load")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--only", choices=["P2", "P3"])
    parser.add_argument("--tls", action="store_true", help="P3 over HTTPS through the nginx front (demo --tls)")
    parser.add_argument("--p1-cycles", type=int, default=P1_CYCLES, help="P3: dock cycles per P1 figure")
    parser.add_argument("--page-nice", type=int, help="P3: renice the page (0: not yielding to the dock)")
    parser.add_argument("--paced", action="store_true",
                        help="P3 also with Python clients paced as open pages (an extra figure)")
    parser.add_argument("--stress", action="store_true", help="the paced P3 without pacing: back to back")
    args = parser.parse_args(argv)
    figures = []
    if args.only in (None, "P2"):
        figures += measure_p2(years=1.0 if args.quick else 5.0, runs=150 if args.quick else args.runs)
    if args.only in (None, "P3"):
        seconds, p1_cycles = (8, 200) if args.quick else (args.seconds, args.p1_cycles)
        figures += measure_p3(seconds=seconds, clients=args.clients, p1_cycles=p1_cycles, page_nice=args.page_nice,
                              tls=args.tls)
        if args.paced or args.stress:
            figures += measure_p3_paced(seconds=seconds, clients=args.clients, p1_cycles=p1_cycles,
                                        stress=args.stress)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
