"""P4: memory after a simulated day, read the way the kernel counts it (VmRSS).

A real `pendock demo` (the daemon and the simulated pen in one process, the page its child
process under waitress) runs a clinic day through the daemon's control socket: each
session fits a cartridge, names the client, lifts, needles and docks the pen, while a
logged-in browser polls the page as an open tab does (/api/status, the page, the day's
sessions). Then /proc/PID/status VmRSS of both processes is read.

The demo is started once to create its data folder (and its two demo users) and then
started again for the day: a Pi's daemon never hashes a password itself (`pendock user
add` does, in its own process), while the demo's first start hashes two (scrypt, 16 MB
of scratch memory each, which glibc keeps in the heap after the second one). The note
gives the first-start figure too.

    python -m tests.bench.bench_memory [--sessions 50]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from tests.bench.common import Figure, table
from tests.support.demo import DemoProcess

P4_DAEMON_LIMIT_MB = 40.0
P4_PAGE_LIMIT_MB = 50.0
POLL_PATHS = ("/api/status", "/api/status", "/", "/api/status", "/api/sessions")


def vmrss_kb(pid: int) -> int:
    """Resident memory of a process, as /proc/PID/status counts it."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for process {pid}")


def open_fds(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/fd").iterdir()))


def page_pid(demo_pid: int) -> int:
    """The page: the demo's one child process."""
    children = Path(f"/proc/{demo_pid}/task/{demo_pid}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected the page as the demo's only child, found {children}")
    return int(children[0])


def one_session(client, ref: str, minutes: str = "10") -> None:
    """A treatment as the sim verbs drive it: cartridge, client, lift, needle, dock. The
    pen's service falls due every so many motor hours: the technician's reset is part of
    a long run, as it is of a clinic's year."""
    client.call("sim.cartridge", serial=None, strokes=None, remove=False)
    status = client.call("next_client", ref=ref, area="face", checklist="screened,test-area")
    if "service_due" in (status.get("locks") or ()):
        status = client.call("service_reset", reason="the pen's scheduled service")
    if status.get("held"):
        raise RuntimeError(f"the pen is held before session {ref}: {status.get('locks')}")
    client.call("sim.undock", force=False)
    client.call("sim.needle", minutes=minutes, depth="1.0", strokes=None)
    client.call("sim.dock", bounce=False)


class Poller:
    """An open page in a thread: one request every `every_s`, rotating POLL_PATHS."""

    def __init__(self, port: int, every_s: float = 0.1):
        from tests.bench.bench_page import _Browser

        self.browser = _Browser(port)
        self.every_s = every_s
        self.requests = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        n = 0
        while not self._stop.wait(self.every_s):
            path = POLL_PATHS[n % len(POLL_PATHS)]
            n += 1
            try:
                status, _ = self.browser.get(path)
            except OSError as error:
                self.errors.append(f"{path}: {error!r}")
                self.browser.conn.close()
                continue
            self.requests += 1
            if status != 200:
                self.errors.append(f"{path}: HTTP {status}")

    def __enter__(self) -> "Poller":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)


def _first_start(tmp: Path) -> int:
    """Start the demo on a new data folder (creating the demo users), return its RSS, stop it."""
    demo = DemoProcess(tmp / "data", data_flag=True).start(timeout=30)
    try:
        time.sleep(0.5)
        return vmrss_kb(demo.proc.pid)
    finally:
        demo.stop()


def measure_p4(sessions: int = 50) -> list[Figure]:
    from appliance.daemon.control import ControlClient

    with tempfile.TemporaryDirectory(prefix="pendock-p4-") as tmp:
        first_kb = _first_start(Path(tmp))
        demo = DemoProcess(Path(tmp) / "data", data_flag=True).start(timeout=30)
        process, data, port = demo.proc, demo.data, demo.port
        try:
            page = page_pid(process.pid)
            start_daemon_kb, start_page_kb = vmrss_kb(process.pid), vmrss_kb(page)
            client = ControlClient(data / "control.sock", timeout=10)
            began = time.monotonic()
            with Poller(port) as poller:
                for n in range(sessions):
                    one_session(client, f"P4-{n}")
            took = time.monotonic() - began
            daemon_kb, page_kb = vmrss_kb(process.pid), vmrss_kb(page)
        finally:
            demo.stop()
    daemon_mb, page_mb = daemon_kb / 1024, page_kb / 1024
    how = (f"after {sessions} sessions in {took:.0f} s with the page polled ({poller.requests} requests, "
           f"{len(poller.errors)} errors)")
    return [
        Figure("P4 daemon RSS after a day", f"{daemon_mb:.1f} MB", f"<= {P4_DAEMON_LIMIT_MB:.0f} MB",
               daemon_mb <= P4_DAEMON_LIMIT_MB,
               f"{how}; {start_daemon_kb / 1024:.1f} MB at start; demo process = daemon + simulated pen; "
               f"{first_kb / 1024:.1f} MB on the demo's first start (two scrypt hashes of the demo users)"),
        Figure("P4 page RSS after a day", f"{page_mb:.1f} MB", f"<= {P4_PAGE_LIMIT_MB:.0f} MB",
               page_mb <= P4_PAGE_LIMIT_MB and not poller.errors,
               f"{start_page_kb / 1024:.1f} MB at start; waitress, 8 threads"
               + (f"; first error: {poller.errors[0]}" if poller.errors else "")),
    ]


def measure(quick: bool = False) -> list[Figure]:
    return measure_p4(sessions=20 if quick else 50)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    args = parser.parse_args(argv)
    figures = measure_p4(args.sessions)
    print(table(figures))
    return 0 if all(f.ok for f in figures) else 1


if __name__ == "__main__":
    sys.exit(main())
