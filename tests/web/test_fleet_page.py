"""A clinic's dock on the page: the live panel's "Clinic docks" line from the status
`fleet` key, and the other rooms' sessions with their room."""
from __future__ import annotations

import sqlite3
from datetime import date

import pytest

from appliance.core.config import Config
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web import records
from tests.web.conftest import FakeDaemon, log_in

DAY = date(2026, 11, 28)


@pytest.fixture
def clinic_page(tmp_path):
    records.build_record(tmp_path, list(records.session_rows(DAY, 1, 2)))
    with sqlite3.connect(tmp_path / "pendock.db") as conn:
        conn.execute(
            "INSERT INTO fleet_sessions (dock_id, session, day, started_at, ended_at, client_ref, "
            "area, pen_serial, cartridge_serial, outcome, needling_seconds, strokes, max_depth_mm, "
            "warnings, overrides) VALUES ('room-2', 7, ?, '2026-11-28T09:30:00+00:00', "
            "'2026-11-28T10:00:00+00:00', 'BK-ROOM2', 'neck', 42, 777, 'completed', 1200, 9000, "
            "1.0, '[\"depth_high\"]', '[]')", (DAY.isoformat(),))
    daemon = FakeDaemon()
    store = Store.open(tmp_path, readonly=True)
    app = create_app(Config(), tmp_path, tmp_path / "control.sock", control=daemon.client,
                     store=store, secret_key="test-key", status_fresh_s=0)
    client = app.test_client()
    assert log_in(client).status_code == 302
    yield client, daemon
    store.close()


def test_the_clinics_other_rooms_are_listed_with_their_room(clinic_page):
    client, _ = clinic_page
    html = client.get(f"/?date={DAY.isoformat()}").get_data(as_text=True)
    other = html.split('id="other-rooms"')[1]
    assert "room-2" in other and "BK-ROOM2" in other and "neck" in other and "777" in other
    assert "BK-ROOM2" not in html.split('id="other-rooms"')[0]  # not in this dock's own log
    empty_day = client.get("/?date=2026-11-27").get_data(as_text=True)
    assert 'id="other-rooms"' not in empty_day


def test_the_live_panel_says_how_the_clinic_is(clinic_page):
    client, daemon = clinic_page
    daemon.status["fleet"] = {"dock_id": "room-1", "stale": True, "outbox": 0, "conflicts": 0,
                              "connected": False, "peers": [{"dock_id": "room-2", "online": False}]}
    html = client.get("/").get_data(as_text=True)
    assert "0 of 1 others online; not connected; history may be out of date" in html


def test_the_other_rooms_are_in_the_days_card_before_the_events(clinic_page):
    client, _ = clinic_page
    html = client.get(f"/?date={DAY.isoformat()}").get_data(as_text=True)
    day_card = html.split('id="day"')[1].split('id="events"')[0]
    assert 'id="other-rooms"' in day_card  # in place, not after the whole events list
