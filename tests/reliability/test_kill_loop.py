"""R1: kill -9 of the daemon at random moments of dock cycles loses nothing it reported.

The short variant runs in the normal suite; the 200-kill one with PENDOCK_SLOW=1
(or `python -m tests.reliability.kill_loop --kills 200`, which prints the figures).
"""
from __future__ import annotations

from tests.reliability.kill_loop import run
from tests.support.marks import slow


def test_kill_loop_short(tmp_path):
    report = run(8, tmp_path, seed=5)
    assert report.problems == []
    assert report.kills == 8
    assert report.closed_checked >= 5 and report.opened_checked > report.closed_checked - 1


@slow
def test_kill_loop_200(tmp_path):
    report = run(200, tmp_path, seed=2024, stop_on_problem=False)
    assert report.problems == []
    assert report.kills == 200
