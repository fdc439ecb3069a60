"""The log, the live state, the actions, CSV and the 400s, on a real read-only record."""
from __future__ import annotations

import csv
import io
import re

import pytest

from appliance.core.model import Decision
from appliance.record.store import LOG_KEYS
from tests.web.conftest import TODAY, csrf_of

BAD_DATES = ["20261128", "2026-13-01", "2026-02-30", "yesterday", "2026-11-28T00:00", "0001-01-01",
             "9999-12-31", "'; DROP TABLE sessions; --", "2026-11-2８", "x" * 5000]


def test_today_is_the_daemons_today_newest_first(therapist):
    html = therapist.get("/").get_data(as_text=True)
    assert "Today&#39;s sessions" in html or "Today's sessions" in html
    times = re.findall(r'<span class="time">(\d\d:\d\d)&ndash;', html)
    assert len(times) == 6 and times == sorted(times, reverse=True)


def test_the_log_shows_codes_in_plain_words_and_the_dates(therapist):
    html = therapist.get("/?date=2026-11-25").get_data(as_text=True)
    assert "Deeper than the area&#39;s limit" in html
    assert "Overridden: too soon after the last treatment" in html
    assert "2026-12-16" in html and "2026-12-23" in html  # 21 and 28 days on
    assert "depth_high" not in html.split('id="day"')[1]


def test_the_timeline_is_an_svg_with_one_bar_per_session(therapist):
    html = therapist.get("/?date=2026-11-25").get_data(as_text=True)
    svg = re.search(r"<svg class=\"timeline\".*?</svg>", html, flags=re.S).group(0)
    assert len(re.findall(r'class="bar bar-', svg)) == 6
    assert "The pen was out 6 times on Wednesday 25 November 2026" in svg
    empty = therapist.get("/?date=2026-01-01").get_data(as_text=True)
    assert "The pen was not out on Thursday 1 January 2026" in empty and 'class="bar bar-' not in empty


def test_api_sessions_is_the_contract_list(therapist):
    sessions = therapist.get("/api/sessions?date=2026-11-25").get_json()
    assert len(sessions) == 6
    assert all(list(s) == list(LOG_KEYS) for s in sessions)
    assert sessions[0]["started_at"] > sessions[-1]["started_at"]
    assert therapist.get("/api/sessions").get_json() == therapist.get(f"/api/sessions?date={TODAY}").get_json()


def test_api_status_is_the_daemons_object(therapist, daemon):
    assert therapist.get("/api/status").get_json() == daemon.status


def test_csv_export_of_any_day(therapist):
    response = therapist.get("/export.csv?date=2026-11-25")
    assert response.mimetype == "text/csv"
    assert "pendock-2026-11-25.csv" in response.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    api = therapist.get("/api/sessions?date=2026-11-25").get_json()
    assert [int(r["id"]) for r in rows] == [s["id"] for s in api]
    assert [r["client_ref"] for r in rows] == [s["client_ref"] for s in api]
    assert rows[0]["warnings"] == " ".join(api[0]["warnings"])


@pytest.mark.parametrize("bad", BAD_DATES)
def test_a_bad_date_is_400_with_a_plain_message_everywhere(therapist, bad):
    api = therapist.get("/api/sessions", query_string={"date": bad})
    assert api.status_code == 400
    assert "YYYY-MM-DD" in api.get_json()["error"] or "out of range" in api.get_json()["error"]
    export = therapist.get("/export.csv", query_string={"date": bad})
    assert export.status_code == 400 and export.mimetype == "text/plain"
    page = therapist.get("/", query_string={"date": bad})
    assert page.status_code == 400 and 'role="alert"' in page.get_data(as_text=True)
    assert "Traceback" not in page.get_data(as_text=True)


def test_the_state_band_follows_the_docks_light(therapist, daemon):
    daemon.set(light="amber")
    html = therapist.get("/").get_data(as_text=True)
    assert 'class="band band-waiting"' in html and "WAITING for you" in html and "<title>Waiting · " in html
    assert "Fit a new sterile cartridge." in html and "icon-waiting.svg" in html
    daemon.set(light="red")
    html = therapist.get("/").get_data(as_text=True)
    assert 'class="band band-stop"' in html and ">STOP<" in html and "<title>STOP · " in html
    daemon.set(released=True, decision=Decision(), light="green")
    html = therapist.get("/").get_data(as_text=True)
    assert 'class="band band-free"' in html and ">FREE<" in html and "Pen free to lift" in html
    assert html.count("<h1") == 1


def test_the_live_panel_says_whether_the_cartridge_is_authenticated(therapist, daemon):
    from dataclasses import replace

    from appliance.core.model import CartridgeAuth

    fitted = replace(daemon.state["reading"], cartridge_serial=77)
    daemon.set(reading=fitted, decision=Decision(locks=("cartridge_unauthentic",)),
               cartridge_auth=CartridgeAuth("unauthentic", reason="forged"))
    assert daemon.status["cartridge"]["authenticated"] is False
    html = therapist.get("/").get_data(as_text=True)
    assert "77 (0 strokes), NOT authenticated" in html
    daemon.set(cartridge_auth=CartridgeAuth("authentic", cartridge_id=77, counter=16), decision=Decision())
    assert "77 (0 strokes), genuine" in therapist.get("/").get_data(as_text=True)


def test_an_empty_cradle_lists_the_other_locks_but_not_no_pen_again(therapist, daemon):
    from appliance.core import rules

    daemon.set(docked=False, reading=None, decision=Decision(locks=("no_pen", "client_missing")), light="off")
    html = therapist.get("/").get_data(as_text=True)
    assert "No pen in the cradle" in html and rules.describe("client_missing").words in html
    assert rules.describe("no_pen").words not in html


def test_the_log_still_shows_when_the_dock_does_not_answer(therapist, daemon):
    daemon.down = True
    response = therapist.get("/")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "Dock not answering" in html and "tone-down" in html
    assert 'class="sessions"' in html or "No sessions" in html
    assert therapist.get("/api/status").status_code == 503


def test_name_the_next_client_with_the_checklist(therapist, daemon):
    html = therapist.get("/").get_data(as_text=True)
    response = therapist.post("/next-client", data={"csrf": csrf_of(html), "ref": "C-2001", "area": "neck",
                                                    "checklist": ["screened", "test-area"]})
    assert response.status_code == 302
    [(via, args)] = daemon.commands("next_client")
    assert args == {"ref": "C-2001", "area": "neck", "checklist": ["screened", "test-area"]}
    assert via == "page user thera"
    assert "Next client C-2001 (neck) named" in therapist.get("/").get_data(as_text=True)


@pytest.mark.parametrize("form, words", [
    ({"ref": "Jane Smith", "area": "face"}, "never a name"),
    ({"ref": "", "area": "face"}, "empty"),
    ({"ref": "C-1" * 20, "area": "face"}, "characters long"),
    ({"ref": "C-1", "area": "elbow"}, "unknown treatment area"),
    ({"ref": "C-1", "area": "face", "checklist": ["bribed"]}, "unknown checklist item"),
])
def test_bad_next_client_input_shows_the_form_again(therapist, daemon, form, words):
    html = therapist.get("/").get_data(as_text=True)
    response = therapist.post("/next-client", data={"csrf": csrf_of(html), **form})
    text = response.get_data(as_text=True)
    assert response.status_code == 400 and words in text and 'id="next-client-form"' in text
    assert not daemon.commands("next_client")


def test_a_refusal_is_shown_in_plain_words(manager, daemon):
    daemon.refuse = "client_interval is not holding the pen now, so there is nothing to override"
    html = manager.get("/").get_data(as_text=True)
    response = manager.post("/override", data={"csrf": csrf_of(html), "code": "client_interval",
                                               "reason": "dermatologist approved"})
    assert response.status_code == 409 and "nothing to override" in response.get_data(as_text=True)


@pytest.mark.parametrize("form, words", [
    ({"code": "cartridge_reused", "reason": "I know best"}, "not a lock a manager may override"),
    ({"code": "client_interval", "reason": "ok"}, "Write the reason"),
    ({"code": "client_interval", "reason": "x" * 501}, "Write the reason"),
])
def test_bad_override_input_shows_the_form_again(manager, daemon, form, words):
    html = manager.get("/").get_data(as_text=True)
    response = manager.post("/override", data={"csrf": csrf_of(html), **form})
    assert response.status_code == 400 and words in response.get_data(as_text=True)
    assert not daemon.commands("override")


def test_the_daemon_down_during_an_action_is_503_not_500(therapist, daemon):
    html = therapist.get("/").get_data(as_text=True)
    daemon.down = True
    response = therapist.post("/next-client", data={"csrf": csrf_of(html), "ref": "C-1", "area": "face"})
    assert response.status_code == 503 and "not answering" in response.get_data(as_text=True)


def test_the_aftercare_card(therapist):
    html = therapist.get("/sessions/7/aftercare").get_data(as_text=True)
    assert "first 3 days" in html and "3 to 48 hours" in html
    # session 7 is on 2026-11-21; dates with the weekday, in the clinic's locale (en-GB)
    assert "Saturday 12 December 2026" in html and "Saturday 19 December 2026" in html
    assert "Call the clinic" in html
    assert therapist.get("/sessions/999999/aftercare").status_code == 404
    assert therapist.get("/sessions/abc/aftercare").status_code == 404
    assert therapist.get("/sessions/99999999999999999999999/aftercare").status_code == 404


@pytest.mark.parametrize("path", ["/nowhere", "/api/nothing", "/static/../appliance/page/app.py", "/sessions/-1/aftercare"])
def test_unknown_paths_are_404_without_a_trace(therapist, path):
    response = therapist.get(path)
    assert response.status_code == 404 and "Traceback" not in response.get_data(as_text=True)


def test_wrong_methods_and_huge_posts_are_plain_errors(therapist):
    assert therapist.delete("/").status_code == 405
    html = therapist.get("/").get_data(as_text=True)
    response = therapist.post("/override", data={"csrf": csrf_of(html), "reason": "x" * 100_000})
    assert response.status_code == 413


def test_an_unexpected_error_is_a_plain_500_page(app, therapist, monkeypatch):
    from appliance.page import view as web_view

    monkeypatch.setattr(web_view, "timeline", lambda *a: 1 / 0)
    response = therapist.get("/")
    text = response.get_data(as_text=True)
    assert response.status_code == 500 and "ZeroDivisionError" not in text and "Traceback" not in text


ODD_VALUES = ["", " ", "%00", "\x00", "../../etc/passwd", "<script>alert(1)</script>", "2026-11-28\n", "-1",
              "{}", "[]", "null", "😀" * 50, "9" * 400]


@pytest.mark.parametrize("path", ["/", "/api/sessions", "/export.csv", "/api/status", "/login"])
def test_no_parameter_value_makes_a_500(therapist, path):
    for value in ODD_VALUES:
        for name in ("date", "next", "x"):
            response = therapist.get(path, query_string={name: value})
            assert response.status_code < 500, (path, name, value, response.status_code)
            if response.mimetype == "text/html":  # JSON and plain text are not run by a browser (nosniff)
                assert "<script>alert" not in response.get_data(as_text=True)


def test_odd_form_values_never_make_a_500(manager):
    html = manager.get("/").get_data(as_text=True)
    for value in ODD_VALUES:
        for path, field in (("/next-client", "ref"), ("/next-client", "area"), ("/next-client", "checklist"),
                            ("/override", "code"), ("/override", "reason")):
            response = manager.post(path, data={"csrf": csrf_of(html), "ref": "C-1", "area": "face",
                                                "code": "client_interval", "reason": "a fine reason", field: value})
            assert response.status_code < 500, (path, field, value)
            assert "<script>alert" not in response.get_data(as_text=True)


def test_many_open_pages_share_one_status_call(record_dir, daemon):
    from appliance.core.config import Config
    from appliance.page.app import create_app
    from appliance.record.store import Store
    from tests.web.conftest import log_in

    with Store.open(record_dir, readonly=True) as store:
        app = create_app(Config(), record_dir, record_dir / "control.sock", control=daemon.client, store=store,
                         secret_key="k", status_fresh_s=60)
        client = app.test_client()
        log_in(client)
        for _ in range(5):
            assert client.get("/api/status").status_code == 200
        assert len(daemon.commands("status")) == 1
        html = client.get("/").get_data(as_text=True)
        client.post("/next-client", data={"csrf": csrf_of(html), "ref": "C-9", "area": "face"})
        assert client.get("/api/status").get_json()["next_client"]["ref"] == "C-9"  # an action refreshes it
