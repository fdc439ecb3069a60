"""A tenth of one core for a process tree: a cgroup v1 `cpu` controller quota (P10).

A Raspberry Pi's core is several times slower than this machine's; the quality bar P10
stands it in by confining the dock to `cpu.cfs_quota_us = 1000` per `cpu.cfs_period_us =
10000`: 1 ms of CPU every 10 ms. Needs root and a mounted v1 cpu controller (`mount | grep
cgroup` shows `/sys/fs/cgroup/cpu type cgroup (...cpu...)`); `unavailable()` says why not.
"""
from __future__ import annotations

import os
import secrets
import time
from pathlib import Path

CPU_ROOT = Path("/sys/fs/cgroup/cpu")
PERIOD_US = 10_000
QUOTA_US = 1_000


def unavailable(root: Path = CPU_ROOT) -> str | None:
    """Why a quota cannot be set here, or None when it can."""
    if os.geteuid() != 0:
        return "not root (a cgroup needs root)"
    try:
        mounts = Path("/proc/mounts").read_text()
    except OSError:
        mounts = ""
    if not any(line.split()[1] == str(root) and line.split()[2] == "cgroup" and "cpu" in line.split()[3].split(",")
               for line in mounts.splitlines() if len(line.split()) > 3):
        return f"no cgroup v1 cpu controller mounted at {root}"
    if not (root / "cpu.cfs_quota_us").exists():
        return f"{root} has no cpu.cfs_quota_us (kernel without CFS bandwidth control)"
    return None


class CpuQuota:
    """A cgroup with the P10 quota; processes join it by writing their pid to `tasks`.

    Use as a context manager: the group is made on entry and removed on exit, after any
    process still in it has been moved back to the root group.
    """

    def __init__(self, period_us: int = PERIOD_US, quota_us: int = QUOTA_US, root: Path = CPU_ROOT,
                 nice: int = 0):
        self.period_us, self.quota_us = period_us, quota_us
        # The group competes with the rest of the machine as one task: `nice` gives it the
        # weight a process at that nice value has (the kernel's table: 1024 / 1.25**nice),
        # as the daemon's unit runs it. The quota caps it whatever its weight.
        self.nice = nice
        self.shares = round(1024 / 1.25 ** nice)
        self.root = root
        self.path = root / f"pendock-p10-{os.getpid()}-{secrets.token_hex(3)}"

    @property
    def tasks(self) -> Path:
        return self.path / "tasks"

    @property
    def share(self) -> str:
        weight = f", weight of nice {self.nice}" if self.nice else ""
        return f"{self.quota_us / self.period_us:g} of one core (cfs_quota_us {self.quota_us} / period {self.period_us}{weight})"

    def __enter__(self) -> "CpuQuota":
        self.path.mkdir()
        (self.path / "cpu.cfs_period_us").write_text(str(self.period_us))
        (self.path / "cpu.cfs_quota_us").write_text(str(self.quota_us))
        (self.path / "cpu.shares").write_text(str(self.shares))
        return self

    def add(self, pid: int) -> None:
        self.tasks.write_text(str(pid))

    def join(self) -> None:
        """For `preexec_fn`: the child puts itself in the group before it execs."""
        self.add(os.getpid())

    def throttled(self) -> tuple[int, float]:
        """(periods throttled, seconds throttled) so far, from cpu.stat."""
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat.get("nr_throttled", 0)), int(stat.get("throttled_time", 0)) / 1e9

    def __exit__(self, *exc) -> None:
        for _ in range(50):
            for pid in self.tasks.read_text().split():
                try:
                    (self.root / "tasks").write_text(pid)
                except OSError:
                    pass  # it ended meanwhile
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.1)
