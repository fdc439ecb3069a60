"""R4 soak: a simulated year (30 sessions a day, accelerated clock) with the page polled.

A real `pendock demo` (daemon + simulated pen in one process, the page its child) runs
DAYS clinic days through the control socket; each session fits a cartridge, names a new
client, lifts, needles 10 simulated minutes and docks; after each day `sim clock
--advance` moves the clock to the same hour of the next day. A logged-in browser polls
the page all along. After each day the VmRSS and the open file count (/proc/PID/fd) of
both processes are sampled. The bar: after warm-up (the first tenth of the days, at
least one), memory grows at most 5 % and the open file count not at all (beside the one or two
connections open at the moment a sample is taken).

    python -m tests.reliability.soak [--days 365] [--per-day 30] [--max-rss-mb 400]

--max-rss-mb stops early (as a failure) before a leak can eat the machine.
"""
from __future__ import annotations

import argparse
import shutil
import signal
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

GROWTH_LIMIT = 0.05
FD_SLACK = 2  # a control connection or a page request open at the moment of sampling
NEEDLE_MINUTES = 10


@dataclass
class Sample:
    day: int
    daemon_kb: int
    page_kb: int
    daemon_fds: int
    page_fds: int


@dataclass
class SoakReport:
    days: int
    per_day: int
    samples: list[Sample] = field(default_factory=list)
    poll_requests: int = 0
    poll_errors: list[str] = field(default_factory=list)
    seconds: float = 0.0
    stopped: str = ""

    def _window(self, attr: str, where: str) -> float:
        warm = max(1, len(self.samples) // 10)
        chosen = self.samples[warm - 1:warm + 2] if where == "warm" else self.samples[-3:]
        return statistics.median(getattr(s, attr) for s in chosen)

    def growth(self, attr: str) -> float:
        """End of the run against the end of warm-up (medians of three samples)."""
        return self._window(attr, "end") / self._window(attr, "warm") - 1

    def problems(self) -> list[str]:
        found = [self.stopped] if self.stopped else []
        if len(self.samples) < 2:
            return found + ["too few samples to judge"]
        for attr, name in (("daemon_kb", "daemon memory"), ("page_kb", "page memory")):
            if self.growth(attr) > GROWTH_LIMIT:
                found.append(f"{name} grew {self.growth(attr):+.1%} after warm-up "
                             f"({self._window(attr, 'warm') / 1024:.1f} -> {self._window(attr, 'end') / 1024:.1f} MB)")
        for attr, name in (("daemon_fds", "daemon open files"), ("page_fds", "page open files")):
            if self._window(attr, "end") > self._window(attr, "warm") + FD_SLACK:
                found.append(f"{name} grew: {self._window(attr, 'warm'):.0f} -> {self._window(attr, 'end'):.0f}")
        if self.poll_errors:
            found.append(f"{len(self.poll_errors)} page poll errors, first: {self.poll_errors[0]}")
        return found

    def summary(self) -> str:
        first, last = self.samples[0], self.samples[-1]
        return (f"{len(self.samples)} days x {self.per_day} sessions in {self.seconds:.0f} s; "
                f"daemon {first.daemon_kb / 1024:.1f} -> {last.daemon_kb / 1024:.1f} MB "
                f"({self.growth('daemon_kb'):+.1%} after warm-up), page {first.page_kb / 1024:.1f} -> "
                f"{last.page_kb / 1024:.1f} MB ({self.growth('page_kb'):+.1%}); open files daemon "
                f"{first.daemon_fds} -> {last.daemon_fds}, page {first.page_fds} -> {last.page_fds}; "
                f"{self.poll_requests} page requests")


def run(days: int, per_day: int = 30, *, max_rss_mb: float = 400.0, poll_every_s: float = 0.1,
        progress=None) -> SoakReport:
    from appliance.daemon.control import ControlClient
    from tests.bench.bench_memory import Poller, one_session, open_fds, page_pid, vmrss_kb
    from tests.support.demo import DemoProcess

    report = SoakReport(days, per_day)
    rest_of_day = f"{24 * 60 - per_day * NEEDLE_MINUTES}m"
    tmp = Path(tempfile.mkdtemp(prefix="pendock-soak-"))
    demo = DemoProcess(tmp / "data", data_flag=True).start(timeout=30)
    process, data, port = demo.proc, demo.data, demo.port
    began = time.monotonic()
    try:
        page = page_pid(process.pid)
        client = ControlClient(data / "control.sock", timeout=10)
        with Poller(port, poll_every_s) as poller:
            for day in range(1, days + 1):
                for n in range(per_day):
                    one_session(client, f"S{day}-{n}", str(NEEDLE_MINUTES))
                client.call("sim.clock", advance=rest_of_day)
                sample = Sample(day, vmrss_kb(process.pid), vmrss_kb(page), open_fds(process.pid), open_fds(page))
                report.samples.append(sample)
                if progress:
                    progress(sample)
                if max(sample.daemon_kb, sample.page_kb) > max_rss_mb * 1024:
                    report.stopped = (f"stopped on day {day}: RSS over {max_rss_mb:.0f} MB "
                                      f"(daemon {sample.daemon_kb / 1024:.0f} MB, page {sample.page_kb / 1024:.0f} MB)")
                    break
        report.poll_requests, report.poll_errors = poller.requests, poller.errors
    finally:
        report.seconds = time.monotonic() - began
        demo.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return report


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--per-day", type=int, default=30)
    parser.add_argument("--max-rss-mb", type=float, default=400.0)
    parser.add_argument("--every", type=int, default=7, help="print a sample every N days")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the demo too (run's finally)

    def progress(s: Sample) -> None:
        if s.day % args.every == 0 or s.day == 1:
            print(f"day {s.day:4d}: daemon {s.daemon_kb / 1024:6.1f} MB {s.daemon_fds:3d} fds; "
                  f"page {s.page_kb / 1024:6.1f} MB {s.page_fds:3d} fds", flush=True)

    report = run(args.days, args.per_day, max_rss_mb=args.max_rss_mb, progress=progress)
    print(report.summary())
    problems = report.problems()
    print("R4 " + ("pass" if not problems else "FAIL: " + "; ".join(problems)))
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
