"""R4: memory and open files stay flat over simulated clinic days (tests/reliability/soak.py).

The short run (six simulated days, ~20 s) is in the normal suite; the year is marked slow.
"""
from __future__ import annotations

import pytest

from tests.reliability import soak


def test_the_report_finds_growth():
    """The judge is live: a run whose memory or files grow is failed."""
    report = soak.SoakReport(days=20, per_day=30)
    report.samples = [soak.Sample(d, 30_000 + d * 1_000, 40_000, 12, 20 + 3 * (d > 15)) for d in range(1, 21)]
    problems = report.problems()
    assert any("daemon memory grew" in p for p in problems)
    assert any("page open files grew" in p for p in problems)
    assert not any("page memory" in p for p in problems)


def test_six_simulated_days_stay_flat():
    report = soak.run(days=6, per_day=30, max_rss_mb=300)
    assert not report.problems(), report.summary() + "\n" + "\n".join(report.problems())


@pytest.mark.slow
def test_a_simulated_year_stays_flat():
    report = soak.run(days=365, per_day=30, max_rss_mb=400)
    assert not report.problems(), report.summary() + "\n" + "\n".join(report.problems())
