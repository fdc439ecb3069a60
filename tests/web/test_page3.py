"""The page's third pass, server side: the band names whom the pen is for and the date to
rebook on (the log and the wall), the wall's room name without a Log out."""
from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from appliance.core.config import Config
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web import records
from tests.web.conftest import FakeDaemon, log_in
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


@pytest.fixture
def day_page(tmp_path, daemon):
    """A day with an ordinary session, a key removal with no client, logins and holds."""

    rows = list(records.session_rows(date(2026, 11, 28), 1, 2))
    no_client = list(rows[1])
    no_client[3], no_client[-1] = None, 1  # client_ref, forced
    records.build_record(tmp_path, [rows[0], tuple(no_client)])
    at = lambda h, m=0: datetime(2026, 11, 28, h, m, tzinfo=timezone.utc)  # noqa: E731
    with Store.open(tmp_path) as store:
        store.audit("page login", "login", {"user": "thera"}, at(7, 50), True)
        store.audit("dock", "lock", {"locks": ["no_cartridge", "client_missing"]}, at(7, 55), True)
        store.audit("dock", "lock", {"locks": ["client_missing"]}, at(7, 56), True)
        store.audit("dock", "release", {"client": "C-1"}, at(7, 58), True)
    store = Store.open(tmp_path, readonly=True)
    app = create_app(Config(), tmp_path, tmp_path / "control.sock", control=daemon.client, store=store,
                     secret_key="test-key", status_fresh_s=0)
    client = app.test_client()
    assert log_in(client).status_code == 302
    yield client
    store.close()


def test_a_session_with_no_client_has_no_aftercare_card(day_page):
    html = day_page.get("/?date=2026-11-28").get_data(as_text=True)
    rows = dict(re.findall(r'id="session-(\d+)"(.*?)</tr>', html, flags=re.S))
    [(no_client, row)] = [(k, v) for k, v in rows.items() if "no client named" in v]
    assert "Aftercare" not in row.split('data-label="Aftercare"')[1] and "No client: not a treatment" in row
    response = day_page.get(f"/sessions/{no_client}/aftercare")
    assert response.status_code == 404 and "no aftercare card" in response.get_data(as_text=True)


def test_events_collapse_hide_logins_and_filter_by_kind(day_page):
    events_of = lambda url: day_page.get(url).get_data(as_text=True).split('id="events"')[1]  # noqa: E731
    every = events_of("/?date=2026-11-28")
    assert "Logged in" not in every
    assert every.count('class="event event-hold"') == 0 and every.count('class="event event-release"') == 1
    assert "before that also" in every  # the collapsed run says what it held for
    logins = events_of("/?date=2026-11-28&kind=login")
    assert "Logged in: thera." in logins and 'value="login" selected' in logins
    holds = events_of("/?date=2026-11-28&kind=hold")
    assert holds.count('class="event event-hold"') == 2


def test_a_real_date_picker_with_previous_and_next_day_and_a_range_export(therapist):
    html = therapist.get("/?date=2026-11-27").get_data(as_text=True)
    assert '<input id="date" type="date" name="date" value="2026-11-27"' in html
    assert 'inputmode="numeric"' not in html  # no number keypad without "-" on a phone
    assert "?date=2026-11-26" in html and "?date=2026-11-28" in html  # previous and next day
    assert 'id="export-from" type="date" name="from"' in html and 'name="to"' in html
