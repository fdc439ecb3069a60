"""The page's second pass, server side: facts under each reason, events, client lookup, the
override form that fits the lock, clearing the next client, errors at their field, the
wall and its login, the no-JavaScript refresh, and the bounded long-poll."""
from __future__ import annotations

import copy
import hashlib
import re
from datetime import date, datetime, timezone

import pytest

from appliance.core.config import Config
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web import records
from tests.web.conftest import FakeDaemon, csrf_of

UTC = timezone.utc
INTERVAL = {"code": "client_interval", "kind": "lock", "words": "This client had this area treated too recently.",
            "action": "Book the client for the next eligible date, or a manager may override with a written reason.",
            "detail": {"last_date": "2026-11-20", "days_since": 8, "next_eligible_date": "2026-12-11"},
            "detail_words": "Last treated on 2026-11-20 (8 days ago); next eligible date 2026-12-11."}
WALL_TOKEN = "pdk_wall-token-for-the-page"


@pytest.fixture(scope="module")
def busy_record(tmp_path_factory):
    """The page tests' record, plus a day of audit entries and a wall token."""
    data = tmp_path_factory.mktemp("busy")
    records.build_record(data, list(records.session_rows(date(2026, 11, 20), 9, 6)))
    with Store.open(data) as store:
        at = lambda h, m=0: datetime(2026, 11, 28, h, m, tzinfo=UTC)  # noqa: E731
        store.audit("dock", "lock", {"locks": ["cartridge_reused"], "client": "C-1"}, at(8), True)
        store.audit("page user boss", "override", {"code": "client_interval", "reason": "dermatologist agreed",
                                                   "client": "C-1"}, at(8, 5), True)
        store.audit("dock", "release", {"overridden": ["client_interval"], "client": "C-1"}, at(8, 6), True)
        store.audit("dock", "lock", {"locks": ["pen_fault"]}, at(8, 13), True)  # while session 2's pen was out
        store.add_token("wall", hashlib.sha256(WALL_TOKEN.encode()).hexdigest(), at(7))
    return data


@pytest.fixture
def daemon():
    fake = FakeDaemon()
    fake.status["light"] = "red"
    return fake


@pytest.fixture
def app(busy_record, daemon):
    store = Store.open(busy_record, readonly=True)
    real_client = daemon.client

    def client(via):
        inner = real_client(via)

        class _Client:
            def call(self, cmd, **args):
                if cmd == "clear_client":
                    daemon.calls.append((via, cmd, args))
                    daemon.status["next_client"] = None
                    return copy.deepcopy(daemon.status)
                return inner.call(cmd, **args)

        return _Client()

    app = create_app(Config(), busy_record, busy_record / "control.sock", control=client, store=store,
                     secret_key="test-key", status_fresh_s=0)
    yield app
    store.close()


def test_each_reason_shows_its_facts(therapist, daemon):
    daemon.status.update(locks=["client_interval"], reasons=[INTERVAL])
    html = therapist.get("/").get_data(as_text=True)
    assert "next eligible date 2026-12-11" in html and "Last treated on 2026-11-20" in html


def test_facts_are_worked_out_when_the_daemon_sends_only_detail(therapist, daemon):
    daemon.status.update(locks=["client_interval"], reasons=[dict(INTERVAL, detail_words="")])
    assert "next eligible date 2026-12-11" in therapist.get("/").get_data(as_text=True)


def test_events_of_a_day(therapist):
    events = therapist.get("/api/events?date=2026-11-28").get_json()
    assert [e["kind"] for e in events][-4:] == ["hold", "override", "release", "fault"]
    assert all(list(e) == ["at", "kind", "codes", "actor", "words"] for e in events)
    override = events[-3]
    assert override["actor"] == "page user boss" and "dermatologist agreed" in override["words"]
    assert events[-4]["codes"] == ["cartridge_reused"]
    assert therapist.get("/api/events?date=2026-13-01").status_code == 400
    html = therapist.get("/").get_data(as_text=True)
    section = html.split('id="events"')[1]
    assert "used before" in section and "dermatologist agreed" in section


def test_a_fault_during_a_session_is_on_that_session(therapist):
    html = therapist.get("/").get_data(as_text=True)  # the 08:12 session was out at 08:13
    rows = re.findall(r'<tr class="outcome-\w+" id="session-(\d+)".*?</tr>', html, flags=re.S)
    faulted = re.findall(r'<tr class="outcome-\w+" id="session-\d+"(?:(?!</tr>).)*note-fault', html, flags=re.S)
    assert rows and len(faulted) == 1


def test_client_lookup_api_and_box(therapist):
    api = therapist.get("/api/sessions?date=2026-11-27").get_json()
    ref = api[0]["client_ref"]
    found = therapist.get(f"/api/clients/{ref}").get_json()
    assert found["client_ref"] == ref and found["areas"]
    area = found["areas"][0]
    assert {"last_date", "next_eligible_date", "recommended_date", "treatments_in_window"} <= set(area)
    assert therapist.get("/api/clients/Jane%20Smith").status_code == 400
    html = therapist.get(f"/?client={ref}").get_data(as_text=True)
    assert 'id="lookup-result"' in html and "Next eligible" in html
    assert re.search(r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \d+ \w+ 2026", html)


def test_the_override_form_fits_the_lock(manager, daemon):
    daemon.status.update(locks=["no_cartridge"])
    html = manager.get("/").get_data(as_text=True)
    assert re.search(r'<form[^>]*id="override-form"[^>]*hidden', html)
    assert "Nothing a manager may override" in html
    daemon.status.update(locks=["client_interval"], reasons=[INTERVAL])
    html = manager.get("/").get_data(as_text=True)
    assert not re.search(r'<form[^>]*id="override-form"[^>]*hidden', html)
    selected = re.search(r'<option value="(\w+)" selected>([^<]+)</option>', html)
    assert selected.group(1) == "client_interval" and selected.group(2).endswith(".")  # a whole sentence


def test_clear_the_next_client(therapist, daemon):
    daemon.status["next_client"] = {"ref": "C-9", "area": "face", "checklist": []}
    html = therapist.get("/").get_data(as_text=True)
    assert not re.search(r'id="clear-client-form"[^>]*hidden', html)
    response = therapist.post("/clear-client", data={"csrf": csrf_of(html)})
    assert response.status_code == 302 and daemon.commands("clear_client")
    assert "The next client was cleared" in therapist.get("/").get_data(as_text=True)


def test_an_error_is_at_its_field_and_focused(therapist):
    html = therapist.get("/").get_data(as_text=True)
    response = therapist.post("/next-client", data={"csrf": csrf_of(html), "ref": "Jane Smith", "area": "face"})
    text = response.get_data(as_text=True)
    assert response.status_code == 400
    field = re.search(r'<input id="ref"[^>]*>', text).group(0)
    assert 'aria-invalid="true"' in field and 'aria-describedby="ref-error"' in field and "autofocus" in field
    assert re.search(r'id="ref-error" role="alert">[^<]*never a name', text)
    response = therapist.post("/next-client", data={"csrf": csrf_of(html), "ref": "C-1", "area": "elbow"})
    assert 'aria-describedby="area-error"' in response.get_data(as_text=True)


def test_without_javascript_it_says_when_and_refreshes(therapist):
    html = therapist.get("/").get_data(as_text=True)
    assert re.search(r'<noscript><meta http-equiv="refresh" content="\d+; url=/"></noscript>', html)
    assert "loaded at 09:00:00 (dock clock)" in html


def test_the_wall_login_sees_the_wall_only(app, daemon, busy_record):
    wall = app.test_client()
    assert wall.get("/wall/login?token=wrong").status_code == 401
    response = wall.get(f"/wall/login?token={WALL_TOKEN}")
    assert response.status_code == 302 and response.headers["Location"].endswith("/wall")
    html = wall.get("/wall").get_data(as_text=True)
    assert 'class="band band-stop"' in html and "STOP" in html and 'data-wall="yes"' in html
    assert 'class="page-wall dark"' in wall.get("/wall?dark=1").get_data(as_text=True)
    assert wall.get("/api/status").status_code == 200
    assert wall.get("/").headers["Location"].endswith("/wall")
    assert wall.get("/api/sessions").status_code == 403
    assert wall.get("/export.csv").headers["Location"].endswith("/wall")
    assert wall.post("/next-client", data={"ref": "C-1"}).status_code in (302, 400, 403)
    assert not daemon.commands("next_client")
    with Store.open(busy_record) as writer:  # the token revoked: the wall ends at its next look
        found = writer.token_by_hash(hashlib.sha256(WALL_TOKEN.encode()).hexdigest())
        writer.revoke_token(found["id"], datetime(2026, 11, 28, 10, tzinfo=UTC))
    assert wall.get("/wall").status_code == 401
    assert wall.get("/wall").status_code == 302  # logged out: to the login form


def test_api_status_long_poll_answers_at_a_change(therapist, daemon):
    first = therapist.get("/api/status")
    version = first.headers["X-Status-Version"]
    daemon.status["locks"] = []
    changed = therapist.get(f"/api/status?wait={version}")
    assert changed.headers["X-Status-Version"] != version and changed.get_json()["locks"] == []
    assert changed.headers["X-Status-Wait"] == "yes"


def test_facts_other_helpers_add_are_shown_when_present(therapist, daemon):
    from appliance.core.model import PenReading
    from tests.web import records as recs

    reading = PenReading(pen_serial=recs.PEN, firmware="1.4", strokes=1, motor_seconds=1, cartridge_serial=77,
                         cartridge_strokes=0, max_depth_mm=0.0, battery_mv=4050, temperature_c=24.5)
    daemon.set(reading=reading)
    daemon.status["cartridge"]["authenticated"] = False
    daemon.status["fleet"] = {"peers": [{"dock_id": "dock-2", "online": True}, {"dock_id": "dock-3", "online": False}],
                              "connected": True, "stale": True}
    daemon.status["clock_trusted"] = False
    html = therapist.get("/").get_data(as_text=True)
    assert "NOT authenticated" in html and "1 of 2 others online; history may be out of date" in html
    assert "NOT known to be right" in html
