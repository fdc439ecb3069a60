"""P10's cpu quota: it confines what joins it, and without root or a cgroup it says so and skips."""
import os
import subprocess
import sys
import time

import pytest

from tests.bench import cpu_quota, p10
from tests.bench.common import Figure, table


def test_without_the_cgroup_p10_says_why_and_skips(monkeypatch, tmp_path):
    assert "no cgroup v1 cpu controller" in cpu_quota.unavailable(tmp_path) or os.geteuid() != 0
    monkeypatch.setattr(p10, "unavailable", lambda: "not root (a cgroup needs root)")
    [figure] = p10.measure(quick=True)
    assert figure.skipped and figure.ok and "not root" in figure.note
    assert "skip" in table([figure])


def test_each_p10_figure_stands_beside_its_free_figure():
    found = Figure("P1 frame->latch+light, committed, p99", "30.00 ms", "<= 5.0 ms", False, "300 cycles")
    free = [Figure(p10.FREE_BARS["P1"], "2.10 ms", "<= 5.0 ms", True)]
    figure = p10._figure("P1", found, 30.0, "ms", p10.P1_LIMIT_MS, {f.bar: f for f in free}, "0.1 core")
    assert figure.ok and figure.note.startswith("free 2.10 ms") and figure.bar.startswith("P10 ")


@pytest.mark.skipif(cpu_quota.unavailable() is not None, reason=f"{cpu_quota.unavailable()}")
def test_a_process_in_the_group_gets_a_tenth_of_a_core():
    spin = "import time\nt = time.monotonic()\nwhile time.monotonic() - t < 1.0: pass\nimport os\nprint(os.times().user)"
    with cpu_quota.CpuQuota(nice=-5) as quota:
        assert int((quota.path / "cpu.shares").read_text()) == 3125  # the daemon unit's Nice=-5
        assert int((quota.path / "cpu.cfs_quota_us").read_text()) * 10 == int((quota.path / "cpu.cfs_period_us").read_text())
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-c", spin], capture_output=True, text=True,
                              preexec_fn=quota.join, timeout=30)
        wall = time.monotonic() - began
        throttled, _ = quota.throttled()
        path = quota.path
    cpu = float(done.stdout)
    assert cpu < 0.3 * wall and throttled > 0  # about 0.1 s of CPU a second of wall
    assert not path.exists()  # the group is removed afterwards
