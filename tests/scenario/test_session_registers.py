"""The pen's session registers through the CLI: a depth belongs to the session it was set in."""
from __future__ import annotations

from tests.scenario.test_clinic_day import treat


def test_eyes_at_0_4_after_body_at_2_0_closes_at_0_4_without_depth_high(demo):
    treat(demo, "BK-500", "body", minutes=20, depth=2.0)
    treat(demo, "BK-501", "eyes", minutes=10, depth=0.4)
    eyes, body = demo.json("log")[:2]
    assert (body["client_ref"], body["max_depth_mm"], body["warnings"]) == ("BK-500", 2.0, [])
    assert (eyes["client_ref"], eyes["area"], eyes["max_depth_mm"]) == ("BK-501", "eyes", 0.4)
    assert eyes["warnings"] == []  # no depth_high from the body session's register
    status = demo.status()
    assert status["pen"]["frame_version"] == 2 and status["pen"]["session_registers"] is True
    assert status["pen"]["max_depth_mm"] == 0.0  # zeroed for the next session already
