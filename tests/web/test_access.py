"""S1, item by item: login or token everywhere but /healthz, throttle, cookies, CSRF, CSP."""
from __future__ import annotations

import re

import pytest

from appliance.page.auth import LoginThrottle
from tests.web import records
from tests.web.conftest import csrf_of, log_in

PAGES = ["/", "/?date=2026-11-25", "/sessions/1/aftercare"]
MACHINE = ["/api/status", "/api/sessions", "/api/sessions?date=2026-11-25", "/export.csv",
           "/export.csv?date=2026-11-25"]
BEARER = {"Authorization": f"Bearer {records.TOKEN}"}


def test_healthz_needs_no_login_and_follows_the_daemon(client, daemon):
    assert client.get("/healthz").get_json() == {"ok": True}
    daemon.down = True
    response = client.get("/healthz")
    assert response.status_code == 503 and response.get_json() == {"ok": False}


@pytest.mark.parametrize("path", PAGES)
def test_pages_without_login_redirect_to_the_form(client, path):
    response = client.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


@pytest.mark.parametrize("path", MACHINE)
def test_api_without_login_is_401(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert "Bearer" in response.headers["WWW-Authenticate"]
    assert "token" in (response.get_json() or {}).get("error", response.get_data(as_text=True))


@pytest.mark.parametrize("path", ["/next-client", "/override", "/logout"])
def test_posts_without_login_do_nothing(client, daemon, path):
    response = client.post(path, data={"ref": "C-1", "code": "client_interval", "reason": "because"})
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not daemon.commands("next_client") and not daemon.commands("override")


@pytest.mark.parametrize("path", MACHINE)
def test_a_token_reads(client, path):
    assert client.get(path, headers=BEARER).status_code == 200


@pytest.mark.parametrize("path", PAGES)
def test_a_token_does_not_open_the_pages(client, path):  # tokens are for the API and the CSV (issue 9)
    response = client.get(path, headers=BEARER)
    assert response.status_code == 302 and "/login" in response.headers["Location"]


@pytest.mark.parametrize("header", ["Bearer wrong", "Bearer ", "Basic dGhlcmE6eA==", f"Token {records.TOKEN}",
                                    "Bearer " + "x" * 5000])
def test_a_wrong_token_is_401(client, header):
    assert client.get("/api/status", headers={"Authorization": header}).status_code == 401


def test_a_token_cannot_act(client, daemon):
    response = client.post("/next-client", data={"ref": "C-1", "area": "face"}, headers=BEARER)
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    assert not daemon.commands("next_client")


def test_login_is_reported_to_the_daemon_with_its_outcome(client, daemon):
    assert log_in(client, password="wrong password").status_code == 401
    assert log_in(client).status_code == 302
    reported = [(args["user"], args["ok"]) for _, args in daemon.commands("login")]
    assert reported == [("thera", False), ("thera", True)]


def test_a_wrong_password_and_an_unknown_name_get_the_same_answer(client):
    wrong = log_in(client, password="nope nope")
    unknown = log_in(client, name="nobody")
    assert wrong.status_code == unknown.status_code == 401
    assert "do not match" in wrong.get_data(as_text=True)
    assert "do not match" in unknown.get_data(as_text=True)


def test_five_wrong_passwords_slow_that_name_down(client, daemon):
    for _ in range(5):
        assert log_in(client, password="bad guess!").status_code == 401
    blocked = log_in(client)  # even the right password waits now
    assert blocked.status_code == 429
    assert "Too many wrong passwords for thera" in blocked.get_data(as_text=True)
    assert log_in(client, name="boss").status_code == 302  # other names are not affected
    assert daemon.commands("login")[-2][1]["ok"] is False  # the refused attempt is audited too


def test_the_throttle_backs_off_and_forgives():
    now = [0.0]
    throttle = LoginThrottle(free_attempts=5, base_delay=30, max_delay=120, clock=lambda: now[0])
    for _ in range(4):
        throttle.failed("Thera")
    assert throttle.wait_seconds("thera") == 0
    throttle.failed("THERA")
    assert throttle.wait_seconds("thera") == 30
    now[0] = 31
    assert throttle.wait_seconds("thera") == 0
    throttle.failed("thera")
    assert throttle.wait_seconds("thera") == 60
    for _ in range(5):
        throttle.failed("thera")
    assert throttle.wait_seconds("thera") == 120  # capped
    throttle.succeeded("thera")
    assert throttle.wait_seconds("thera") == 0


def test_session_cookie_is_httponly_and_samesite_strict(client):
    response = log_in(client)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie


def test_a_post_without_the_csrf_token_is_refused(therapist, daemon):
    response = therapist.post("/next-client", data={"ref": "C-1", "area": "face"})
    assert response.status_code == 400
    assert "out of date" in response.get_data(as_text=True)
    response = therapist.post("/next-client", data={"ref": "C-1", "area": "face", "csrf": "forged"})
    assert response.status_code == 400
    assert not daemon.commands("next_client")


def test_login_form_needs_its_csrf_token(client):
    response = client.post("/login", data={"name": "thera", "password": records.PASSWORD})
    assert response.status_code == 400


def test_every_post_form_carries_a_csrf_token(manager):
    html = manager.get("/").get_data(as_text=True)
    forms = re.findall(r"<form[^>]*method=\"post\".*?</form>", html, flags=re.S)
    assert len(forms) == 5  # logout, next client, clear the next client, override, the clock
    for form in forms:
        assert 'name="csrf"' in form


def test_logout_ends_the_session_even_for_a_copied_cookie(app):
    client = app.test_client()
    log_in(client)
    copied = client.get_cookie("pendock_session").value
    html = client.get("/").get_data(as_text=True)
    assert client.post("/logout", data={"csrf": csrf_of(html)}).status_code == 302
    assert client.get("/").status_code == 302
    replay = app.test_client()
    replay.set_cookie("pendock_session", copied)
    assert replay.get("/api/status").status_code == 401


def test_security_headers_on_every_answer(therapist, client):
    for response in (therapist.get("/"), therapist.get("/api/status"), client.get("/login"),
                     client.get("/healthz"), therapist.get("/nowhere")):
        csp = response.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "Server" not in response.headers


def test_no_inline_script_or_style_and_nothing_from_outside(manager, client):
    for html in (manager.get("/").get_data(as_text=True), client.get("/login").get_data(as_text=True),
                 manager.get("/sessions/1/aftercare").get_data(as_text=True)):
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), "inline script"
        assert "<style" not in html and " style=" not in html, "inline style"
        assert " on" + "click=" not in html
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert url.startswith(("/", "#")), f"asset from outside the dock: {url}"


def test_static_assets_are_served_without_login(client):
    css = client.get("/static/style.css")
    assert css.status_code == 200 and "http" not in css.get_data(as_text=True).replace("https://", "XX")
    assert client.get("/static/live.js").status_code == 200


def test_next_after_login_never_leaves_the_site(client):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    response = client.post("/login", data={"csrf": token, "name": "thera", "password": records.PASSWORD,
                                           "next": "//evil.example/x"})
    assert response.headers["Location"] == "/"


def test_only_a_manager_may_override(therapist, manager, daemon):
    html = therapist.get("/").get_data(as_text=True)
    assert 'id="override-form"' not in html
    response = therapist.post("/override", data={"csrf": csrf_of(html), "code": "client_interval",
                                                  "reason": "dermatologist approved"})
    assert response.status_code == 403 and not daemon.commands("override")
    html = manager.get("/").get_data(as_text=True)
    response = manager.post("/override", data={"csrf": csrf_of(html), "code": "client_interval",
                                               "reason": "dermatologist approved"})
    assert response.status_code == 302
    [(via, args)] = daemon.commands("override")
    assert args == {"code": "client_interval", "reason": "dermatologist approved", "manager": "boss"} and "boss" in via
