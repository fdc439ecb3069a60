"""Events from the audit trail, a client's history per area, and the record look-ups."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from appliance.core.config import Config
from appliance.core.dates import long_date
from appliance.page import clients, events
from appliance.record import lookups
from appliance.record.store import Store

UTC = timezone.utc
DAY = date(2026, 11, 28)


def at(hour, minute=0, day=DAY):
    return datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=hour, minutes=minute)


@pytest.fixture
def store(tmp_path):
    with Store.open(tmp_path) as s:
        yield s


def test_events_say_holds_overrides_faults_and_technician_actions(store):
    store.audit("dock", "lock", {"locks": ["cartridge_reused"], "client": "C-1"}, at(8, 59, DAY - timedelta(days=1)), True)
    store.audit("dock", "lock", {"locks": ["cartridge_reused"], "client": "C-1"}, at(9), True)
    store.audit("page user boss", "override", {"code": "client_interval", "reason": "doctor agreed",
                                               "client": "C-1"}, at(9, 5), True)
    store.audit("dock", "release", {"overridden": ["client_interval"], "client": "C-1"}, at(9, 6), True)
    store.audit("dock", "lock", {"locks": ["pen_fault", "client_missing"]}, at(9, 40), True)
    store.audit("cli uid 0", "service_reset", {"reason": "new motor"}, at(10), True)
    store.audit("dock", "forced_removal", {}, at(11), True)
    store.audit("dock", "lock", {"locks": ["no_pen"]}, at(0, 0, DAY + timedelta(days=1)), True)
    found = events.events(lookups.audit_on(store, DAY, UTC), UTC)
    kinds = [e.kind for e in found]
    assert kinds == ["hold", "override", "release", "fault", "technician", "forced_removal"]
    hold, override = found[0], found[1]
    assert hold.codes == ("cartridge_reused",) and "used before" in hold.words and hold.clock == "09:00"
    assert override.actor == "page user boss" and "boss" in override.words and "doctor agreed" in override.words
    assert set(found[0].contract()) == {"at", "kind", "codes", "actor", "words"}


def test_a_fault_on_return_is_shown_on_that_session():
    day_events = [events.event_of("lock", {"locks": ["pen_fault"]}, "dock", at(9, 30) + timedelta(seconds=1), UTC)]
    sessions = [{"id": 1, "started_at": at(9).isoformat(), "ended_at": at(9, 30).isoformat()},
                {"id": 2, "started_at": at(10).isoformat(), "ended_at": at(10, 30).isoformat()}]
    assert list(events.faults_by_session(sessions, day_events)) == [1]


def test_a_day_is_found_by_bisection_among_many_days(store):
    for n in range(404):
        store.audit("dock", "lock", {"locks": ["no_pen"]}, at(0, 0, DAY - timedelta(days=200)) + timedelta(hours=12 * n), True)
    found = lookups.audit_on(store, DAY, UTC)
    assert [e.at for e in found] == [at(0), at(12)]


def test_client_history_per_area():
    config = Config()
    sessions = [{"id": 3, "area": "face", "started_at": at(9, 0, DAY - timedelta(days=10)).isoformat(), "outcome": "completed"},
                {"id": 2, "area": "face", "started_at": at(9, 0, DAY - timedelta(days=40)).isoformat(), "outcome": "completed"},
                {"id": 1, "area": "neck", "started_at": at(9, 0, DAY - timedelta(days=30)).isoformat(), "outcome": "completed"},
                {"id": 4, "area": "neck", "started_at": at(8).isoformat(), "outcome": "open"}]
    found = clients.client_history("C-1", sessions, config, at(12), UTC)
    face, neck = found["areas"]
    assert face["area"] == "face" and face["last_date"] == "2026-11-18" and face["next_eligible_date"] == "2026-12-09"
    assert face["treatments_in_window"] == 2 and not face["eligible_today"]
    assert neck["eligible_today"] and neck["treatments_in_window"] == 1
    assert clients.course_words(face) == "2 of 6 in the last 180 days"


def test_dates_with_the_weekday_in_the_clinics_locale():
    assert long_date("2026-12-09") == "Wednesday 9 December 2026"
    assert long_date("2026-12-09", "de-DE") == "Mittwoch, 9. Dezember 2026"
    assert long_date(None) == "-"


def test_clock_changes_are_clock_events():
    found = events.event_of("clock_set", {"to": "2026-11-28T09:00:00+00:00", "was": "2026-11-27T09:00:00+00:00",
                                          "reason": "after a power cut"}, "page user boss", at(9), UTC)
    assert found.kind == "clock" and "boss set the dock's clock to 2026-11-28 09:00" in found.words
    assert "after a power cut" in found.words
    assert events.event_of("token_revoked", {"id": 2}, "cli uid 0", at(9), UTC).kind == "technician"
