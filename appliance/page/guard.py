"""Every request: who is asking (a login's cookie, or an API token for GETs), the CSRF
check on every form, the values every template shows, and the hardening headers."""
from __future__ import annotations

import os

from flask import Flask, Response, g, redirect, request, session, url_for

from appliance.core import rules
from appliance.core.model import CHECKLIST_ITEMS
from appliance.page import auth
from appliance.page import view as web_view
from appliance.page.context import here
from appliance.page.replies import api_error, page_error

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
       "frame-ancestors 'none'; form-action 'self'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
MACHINE_PATHS = ("/api/", "/export.csv")  # answer 401, not a redirect to the form
OPEN_ENDPOINTS = ("api.healthz", "static", "login.login", "wall.wall_login", "enrol.ca", "enrol.ca_certificate",
                  "setup.setup")
# HSTS only once the clinic's tablets trust the dock's CA (PENDOCK_HSTS=1, README "HTTPS"):
# before that, a tablet told to insist on HTTPS could not reach /ca to enrol.
HSTS = "max-age=31536000"
CHECKLIST_WORDS = {"screened": "Contraindications screened", "test-area": "Test area done"}


def install(app: Flask) -> None:
    app.before_request(identify)
    app.context_processor(common)
    app.after_request(harden)


def identify():
    g.login = None
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    page = here()
    login = page.logins.get(session.get("sid"), request.remote_addr or "")
    if login is not None and not auth.still_valid(page.record(), login):
        page.logins.end(session.get("sid"))  # removed, or a new password: that login is over
        login = None
    machine = request.path.startswith(MACHINE_PATHS)
    if login is None and machine and request.method == "GET" and "Authorization" in request.headers:
        # Tokens are for the API and the CSV only: never the HTML pages, never a cookie.
        login = auth.token_login(page.record(), request.headers.get("Authorization"))
    if login is None:
        if machine:
            return api_error("log in, or send Authorization: Bearer TOKEN (pendock token create)", 401,
                             {"WWW-Authenticate": 'Bearer realm="pendock"'})
        if request.method == "GET":
            return redirect(url_for("login.login", next=request.full_path.rstrip("?")))
        return redirect(url_for("login.login"))
    g.login = login
    if request.method == "POST" and not auth.csrf_ok(session.get("csrf"), request.form.get("csrf")):
        return page_error("This form was out of date (it was opened before a login or a restart). "
                          "It has been loaded again: please try once more.", 400)
    return None


def common() -> dict:
    if "csrf" not in session:
        session["csrf"] = auth.new_csrf_token()
    return {"csrf_token": session["csrf"], "login": g.get("login"), "areas": here().areas,
            "checklist_items": [(item, CHECKLIST_WORDS.get(item, item)) for item in CHECKLIST_ITEMS],
            "overridable": sorted(rules.OVERRIDABLE), "words": web_view.words,
            "overridable_words": {code: web_view.words(code) for code in rules.OVERRIDABLE},
            # What live.js needs of the rules, served with the page, never copied into it.
            "rule_table": {"stop": sorted(rules.STOP_LOCKS), "overridable": sorted(rules.OVERRIDABLE)}}


def harden(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if request.endpoint != "static":
        response.headers["Cache-Control"] = "no-store"
    response.headers.pop("Server", None)
    if request.is_secure and os.environ.get("PENDOCK_HSTS") == "1":
        response.headers["Strict-Transport-Security"] = HSTS
    return response
