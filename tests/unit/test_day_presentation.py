"""The day as a therapist reads it: a fault belongs to the session it happened in or to
none; a session with no client has no aftercare card; the events collapse the held/free
back-and-forth, keep logins for the technician's view, and filter by kind."""
from __future__ import annotations

from datetime import datetime, timezone

from appliance.page import events, view

UTC = timezone.utc


def at(h: int, m: int = 0, s: int = 0) -> datetime:
    return datetime(2026, 11, 28, h, m, s, tzinfo=UTC)


SESSIONS = [{"id": 1, "started_at": at(9).isoformat(), "ended_at": at(9, 30).isoformat()},
            {"id": 2, "started_at": at(10).isoformat(), "ended_at": at(10, 30).isoformat()}]


def fault(when: datetime) -> events.Event:
    return events.event_of("lock", {"locks": ["pen_fault"]}, "dock", when, UTC)


def test_a_fault_read_as_the_pen_came_back_is_on_that_session():
    assert list(events.faults_by_session(SESSIONS, [fault(at(9, 30, 1))])) == [1]


def test_a_fault_after_the_session_ended_is_on_no_session():
    assert events.faults_by_session(SESSIONS, [fault(at(9, 31))]) == {}
    assert events.faults_by_session(SESSIONS, [fault(at(9, 45))]) == {}


def test_a_forced_removal_with_no_client_is_no_treatment_and_has_no_aftercare_card():
    forced = {"id": 3, "started_at": at(11).isoformat(), "ended_at": at(11, 1).isoformat(), "client_ref": None,
              "area": "face", "outcome": "completed", "forced": True, "needling_seconds": 0}
    row = view.session_row(forced, UTC)
    assert not row.has_aftercare and row.area == "-" and row.client_ref == "no client named"
    assert "Forced out with the technician's key" in [n.short for n in row.warnings]
    assert row.outcome_code != "completed"
    named = dict(forced, client_ref="BK-1", forced=True)
    assert view.session_row(named, UTC).has_aftercare


def day() -> list[events.Event]:
    """One ordinary session's audit trail, with a login in the middle."""
    entries = [
        ("lock", {"locks": ["no_cartridge", "client_missing"]}, at(8, 0)),
        ("lock", {"locks": ["client_missing"]}, at(8, 1)),
        ("login", {"user": "thera"}, at(8, 2)),
        ("next_client", {"ref": "BK-1", "area": "face"}, at(8, 3)),
        ("release", {"client": "BK-1"}, at(8, 3)),
        ("session_opened", {"session": 1, "client_ref": "BK-1", "area": "face"}, at(8, 4)),
        ("lock", {"locks": ["no_pen"]}, at(8, 4)),  # the pen lifted for the session
        ("session_closed", {"session": 1, "outcome": "completed", "needling_seconds": 600}, at(8, 20)),
        ("lock", {"locks": ["cartridge_reused", "client_missing"]}, at(8, 20)),
        ("lock", {"locks": ["client_missing"]}, at(8, 21)),
    ]
    return [events.event_of(a, d, "dock", w, UTC) for a, d, w in entries]


def test_held_and_free_back_and_forth_is_one_line_and_logins_are_left_out():
    shown = events.readable(day())
    kinds = [e.kind for e in shown]
    assert kinds == ["hold", "client", "release", "session", "session", "hold"]
    assert "login" not in kinds and not any(e.codes == ("no_pen",) for e in shown)
    first = shown[0]
    assert first.clock == "08:01" and "cartridge is fitted" in first.words  # what the run held for


def test_a_filter_shows_one_kind_and_logins_only_when_asked():
    assert [e.kind for e in events.readable(day(), "login")] == ["login"]
    assert {e.kind for e in events.readable(day(), "hold")} == {"hold", "release"}
    assert ("no_pen",) in [e.codes for e in events.readable(day(), "hold")]  # the filter shows every hold
    assert [e.kind for e in events.readable(day(), "session")] == ["session", "session"]
    assert events.readable(day(), "no-such-kind") == events.readable(day())
