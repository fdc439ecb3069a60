"""S5 on the page: logins cannot wear the dock down or lock staff out, a redirect after a
login never leaves the dock, tokens open only the machine paths, a login ends after its
absolute lifetime. Each attack bounded in count and time."""
from __future__ import annotations

import time
from datetime import datetime, timezone
from dataclasses import replace

import pytest

from appliance.core.config import Config
from appliance.page import auth
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web import records
from tests.web.conftest import csrf_of, log_in

BEARER = {"Authorization": f"Bearer {records.TOKEN}"}
STRANGER = {"REMOTE_ADDR": "192.168.1.66"}
RECEPTION = {"REMOTE_ADDR": "192.168.1.10"}


def attempt(client, name, password, environ, next_path="/"):
    token = csrf_of(client.get("/login", environ_base=environ).get_data(as_text=True))
    return client.post("/login", data={"csrf": token, "name": name, "password": password, "next": next_path},
                       environ_base=environ)


def test_two_hundred_throttled_attempts_cost_no_durable_write(client, daemon):
    started = time.monotonic()
    for _ in range(5):
        assert attempt(client, "boss", "wrong guess", STRANGER).status_code == 401
    for _ in range(200):
        assert attempt(client, "boss", "another guess", STRANGER).status_code == 429
    assert time.monotonic() - started < 30
    written = daemon.commands("login")
    # S8: one durable write a minute per source, whatever it sends: the first wrong one.
    assert len(written) == 1, f"{len(written)} audit writes for 205 wrong or throttled attempts"
    assert written[0][1]["ok"] is False and written[0][1]["remote"] == STRANGER["REMOTE_ADDR"]


def test_the_throttled_count_is_summarised_with_the_next_checked_attempt():
    now = [0.0]
    throttle = auth.LoginThrottle(free_attempts=2, base_delay=10, clock=lambda: now[0])
    throttle.failed("boss", "a")
    throttle.failed("boss", "a")
    assert [throttle.refused("boss", "a") for _ in range(4)] == [1, 2, 3, 4]
    now[0] = 11
    assert throttle.wait_seconds("boss", "a") == 0
    assert throttle.summary("boss", "a") == 4 and throttle.summary("boss", "a") == 0


def test_a_stranger_cannot_lock_the_manager_out_from_another_device(app, daemon):
    stranger, reception = app.test_client(), app.test_client()
    for _ in range(8):
        attempt(stranger, "boss", "guessing", STRANGER)
    assert attempt(stranger, "boss", records.PASSWORD, STRANGER).status_code == 429
    assert attempt(reception, "boss", records.PASSWORD, RECEPTION).status_code == 302


def test_an_address_guessing_many_names_is_slowed_too():
    throttle = auth.LoginThrottle(free_attempts=5, free_per_address=20, clock=lambda: 0.0)
    for n in range(20):
        throttle.failed(f"name{n}", "10.0.0.9")
    assert throttle.wait_seconds("someone-else", "10.0.0.9") > 0
    assert throttle.wait_seconds("someone-else", "10.0.0.10") == 0


@pytest.mark.parametrize("next_path", ["/%09/evil.example/", "/\t/evil.example/", "//x", "\\x", "/\\x",
                                       "/%0a/x", "/\n/x", "/%2F/evil.example", "https://evil.example/",
                                       " /x", "/\x7f/x"])
def test_the_redirect_after_login_never_leaves_the_dock(client, next_path):
    response = attempt(client, "thera", records.PASSWORD, RECEPTION, next_path)
    assert response.status_code == 302, response.status_code
    assert response.headers["Location"] == "/"


def test_a_plain_path_on_the_dock_is_kept(client):
    response = attempt(client, "thera", records.PASSWORD, RECEPTION, "/?date=2026-11-21")
    assert response.headers["Location"] == "/?date=2026-11-21"


def test_a_newline_in_next_on_the_form_is_no_500(client):
    assert client.get("/login?next=/%0a/x").status_code == 200


@pytest.mark.parametrize("path", ["/", "/sessions/1/aftercare"])
def test_a_bearer_token_does_not_open_the_html_pages(client, path):
    response = client.get(path, headers=BEARER)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize("path", ["/api/status", "/api/sessions", "/export.csv"])
def test_a_bearer_token_reads_the_machine_paths_and_never_gets_a_cookie(client, path):
    response = client.get(path, headers=BEARER)
    assert response.status_code == 200
    assert "Set-Cookie" not in response.headers


def test_a_login_ends_at_its_absolute_lifetime_however_active():
    now = [0.0]
    table = auth.SessionTable(idle_seconds=3600, max_seconds=4 * 3600, clock=lambda: now[0])
    sid = table.start(auth.Login("thera", "therapist"))
    for _ in range(7):  # active every 30 minutes
        now[0] += 1800
        assert table.get(sid) is not None
    now[0] += 1801
    assert table.get(sid) is None


def test_the_page_takes_the_lifetime_from_the_config(record_dir, daemon):
    config = replace(Config(), web=replace(Config().web, session_hours=3))
    store = Store.open(record_dir, readonly=True)
    try:
        app = create_app(config, record_dir, record_dir / "control.sock", control=daemon.client, store=store,
                         secret_key="k")
        assert app.extensions["pendock"].logins.max_seconds == 3 * 3600
    finally:
        store.close()


def test_a_non_ascii_name_is_refused_by_the_form_as_by_the_cli(client):
    response = attempt(client, "José", records.PASSWORD, RECEPTION)
    assert response.status_code == 400
    assert not auth.valid_user_name("José")


def test_a_removed_user_or_a_new_password_ends_the_login_at_once(tmp_path, daemon):
    from datetime import date as day

    records.build_record(tmp_path / "r", list(records.session_rows(day(2026, 11, 20), 1, 1)))
    writer = Store.open(tmp_path / "r")
    reader = Store.open(tmp_path / "r", readonly=True)
    try:
        app = create_app(Config(), tmp_path / "r", tmp_path / "r" / "control.sock", control=daemon.client,
                         store=reader, secret_key="k", status_fresh_s=0)
        thera, boss = app.test_client(), app.test_client()
        assert log_in(thera).status_code == 302 and log_in(boss, "boss").status_code == 302
        assert thera.get("/").status_code == 200 and boss.get("/").status_code == 200
        now = datetime(2026, 11, 29, tzinfo=timezone.utc)
        writer.set_password("boss", "scrypt$another", now)
        writer.remove_user("thera", now)
        for client in (thera, boss):
            response = client.get("/")
            assert response.status_code == 302 and "/login" in response.headers["Location"]
    finally:
        writer.close()
        reader.close()


def test_a_revoked_token_is_refused_at_once(tmp_path, daemon):
    from datetime import date as day

    records.build_record(tmp_path / "r", list(records.session_rows(day(2026, 11, 20), 1, 1)))
    writer = Store.open(tmp_path / "r")
    reader = Store.open(tmp_path / "r", readonly=True)
    try:
        app = create_app(Config(), tmp_path / "r", tmp_path / "r" / "control.sock", control=daemon.client,
                         store=reader, secret_key="k", status_fresh_s=0)
        client = app.test_client()
        assert client.get("/api/status", headers=BEARER).status_code == 200
        writer.revoke_token(writer.tokens()[0]["id"], datetime(2026, 11, 29, tzinfo=timezone.utc))
        assert client.get("/api/status", headers=BEARER).status_code == 401
    finally:
        writer.close()
        reader.close()
