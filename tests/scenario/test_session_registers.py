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


def test_a_session_whose_depth_is_unmeasured_says_so_in_the_plain_log(demo):
    # A version-1 pen: read and released, but its depth cannot be tied to the session.
    import json

    demo.stop()
    pen_file = demo.data / "sim-pen.json"  # the simulated pen's state, kept across restarts
    state = json.loads(pen_file.read_text()) if pen_file.exists() else {}
    pen_file.write_text(json.dumps(dict(state, frame_version=1)))
    demo.start()
    assert "pen_frame_v1" in demo.status()["warnings"]
    assert demo.status()["pen"]["frame_version"] == 1
    treat(demo, "BK-510", "eyes", minutes=10, depth=0.4)
    [eyes] = [s for s in demo.json("log") if s["client_ref"] == "BK-510"]
    assert eyes["max_depth_mm"] is None and "depth_unmeasured" in eyes["warnings"]
    assert "depth not measured" in demo.ok("log")
