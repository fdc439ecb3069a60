"""The page's third pass, server side: the band names whom the pen is for and the date to
rebook on (the log and the wall), the wall's room name without a Log out."""
from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from appliance.core.config import Config
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web.conftest import FakeDaemon
from tests.web.test_page2 import INTERVAL, WALL_TOKEN, busy_record  # noqa: F401 (a fixture)

NAMED = {"ref": "BK-1042", "area": "face", "checklist": ["screened", "test-area"]}


@pytest.fixture
def daemon():
    return FakeDaemon()


@pytest.fixture
def app(busy_record, daemon):  # noqa: F811
    config = Config()
    config = replace(config, fleet=replace(config.fleet, dock_id="room-2"))
    store = Store.open(busy_record, readonly=True)
    app = create_app(config, busy_record, busy_record / "control.sock", control=daemon.client, store=store,
                     secret_key="test-key", status_fresh_s=0)
    yield app
    store.close()


def held_by_the_interval(daemon) -> None:
    daemon.status.update(light="red", held=True, locks=["client_interval"], reasons=[copy.deepcopy(INTERVAL)],
                         next_client=dict(NAMED))


def band_of(html: str) -> str:
    return html.split('id="band"')[1].split('id="live-announce"')[0]


def test_free_band_names_the_client_and_area(therapist, daemon):
    daemon.status.update(light="green", held=False, locks=[], reasons=[], next_client=dict(NAMED))
    band = band_of(therapist.get("/").get_data(as_text=True))
    assert "FREE" in band and "for BK-1042, face" in band


def test_in_use_band_names_the_client_and_minutes_out(therapist, daemon):
    daemon.status.update(light="blue", docked=False, session={"id": 9, "client_ref": "BK-1042", "area": "face",
                                                              "out_seconds": 12 * 60 + 8})
    band = band_of(therapist.get("/").get_data(as_text=True))
    assert "for BK-1042, face, out 12 min" in band
    assert "12 min 08 s" in band and "over-needling in" not in band and "12:08" not in band


def test_interval_hold_puts_the_date_on_the_band(therapist, daemon):
    held_by_the_interval(daemon)
    band = band_of(therapist.get("/").get_data(as_text=True))
    assert "Next eligible date: Friday 11 December 2026" in band


def test_the_wall_names_room_client_and_date_and_has_no_log_out(app, daemon):
    held_by_the_interval(daemon)
    wall = app.test_client()
    assert wall.get(f"/wall/login?token={WALL_TOKEN}").status_code == 302
    html = wall.get("/wall").get_data(as_text=True)
    assert "room-2" in html and "for BK-1042, face" in band_of(html)
    assert "Next eligible date: Friday 11 December 2026" in band_of(html)
    assert "Log out" not in html
