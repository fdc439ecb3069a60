"""The page process: a Flask app factory, served by waitress (never Flask's dev server).

It has no GPIO, reads the record through a read-only Store, and sends its few commands
(next client, override, login audit) through the daemon's control socket. Logins live in
this process's memory (appliance/page/auth.py): the page may not write the data folder.
The routes live in blueprints (log.py, actions.py, login.py, api.py); what they share
is the app's PageContext (context.py).
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from flask import Flask

from appliance.core.resources import web_folder
from appliance.daemon.control import ControlClient
from appliance.page import actions, api, auth, enrol, guard, history, i18n, log, login, setup, wall
from appliance.page.context import HEALTH_FRESH_S, KEY, ControlFactory, PageContext
from appliance.page.replies import install_error_handlers
from appliance.record.store import Store

STATUS_TIMEOUT_S = 2.0
STATUS_FRESH_S = 0.25  # many open pages share one status call per quarter second
DAYS_KEPT = 4  # days whose rendered pieces are kept: today and a few looked back on
PAGE_THREADS = 6  # waitress worker threads; at most LONG_POLL_SLOTS of them wait (context.py)


def create_app(config, data_dir: Path, socket: Path, *, control: ControlFactory | None = None,
               store: Store | None = None, secret_key: str | bytes | None = None,
               throttle: auth.LoginThrottle | None = None, status_fresh_s: float = STATUS_FRESH_S,
               days_kept: int = DAYS_KEPT, health_fresh_s: float = HEALTH_FRESH_S) -> Flask:
    """The page. `control` and `store` are injectable for tests; by default the daemon's
    socket and a read-only Store of `data_dir`, opened on first use, one per process."""
    web = web_folder()
    app = Flask(__name__, template_folder=str(web / "templates"), static_folder=str(web / "static"),
                static_url_path="/static")
    app.config.update(
        SECRET_KEY=secret_key or os.environ.get("PENDOCK_SECRET_KEY") or secrets.token_bytes(32),
        SESSION_COOKIE_NAME="pendock_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=os.environ.get("PENDOCK_COOKIE_SECURE") == "1",
        MAX_CONTENT_LENGTH=16 * 1024,
        PROPAGATE_EXCEPTIONS=False,
        TRAP_HTTP_EXCEPTIONS=False,
        SEND_FILE_MAX_AGE_DEFAULT=300,
    )
    app.jinja_env.autoescape = True
    app.json.sort_keys = False  # the key order the README lists
    make_client: ControlFactory = control or (
        lambda via: ControlClient(socket, timeout=STATUS_TIMEOUT_S, via=via))
    app.extensions[KEY] = PageContext(config, data_dir, make_client, store,
                                      throttle or auth.LoginThrottle(), status_fresh_s, days_kept,
                                      health_fresh_s)
    i18n.install(app, lambda: app.extensions[KEY].config.clinic.locale)
    guard.install(app)
    install_error_handlers(app)
    for blueprint in (log.bp, actions.bp, login.bp, api.bp, history.bp, wall.bp, enrol.bp, setup.bp):
        app.register_blueprint(blueprint)
    return app


MAX_BODY = 64 * 1024  # waitress refuses a larger body before reading it (Flask's own cap is 16 KiB)
# What waitress is told, so the clinic's Wi-Fi cannot wear the page down (S8):
# - connection_limit: open connections are cheap (one asyncore channel each); 100 slow
#   ones once took every slot. 500 stays well under the unit's 1024 file descriptors.
# - channel_timeout: a connection that sends nothing for this long is closed.
# - max_request_body_size / inbuf_overflow: a body over MAX_BODY is answered 413 as its
#   headers arrive (or as its chunks pass the cap), never spooled to a temporary file.
# - ident None: no Server header naming waitress or its version.
WAITRESS_OPTIONS = dict(threads=PAGE_THREADS, ident=None, clear_untrusted_proxy_headers=True,
                        connection_limit=500, channel_timeout=30, max_request_body_size=MAX_BODY,
                        max_request_header_size=32 * 1024, inbuf_overflow=MAX_BODY * 2,
                        asyncore_use_poll=True)


def behind_front() -> dict:
    """Behind the HTTPS front (appliance/front.py, PENDOCK_TRUSTED_PROXY=127.0.0.1): trust
    its X-Forwarded-For and -Proto only, so each client's own address is the one throttled."""
    proxy = os.environ.get("PENDOCK_TRUSTED_PROXY")
    if not proxy:
        return {}
    return dict(trusted_proxy=proxy, trusted_proxy_count=1,
                trusted_proxy_headers={"x-forwarded-for", "x-forwarded-proto"})


def serve(config, data_dir: Path, socket: Path, host: str, port: int) -> int:
    from waitress import serve as waitress_serve

    app = create_app(config, data_dir, socket)
    waitress_serve(app, host=host, port=port, **WAITRESS_OPTIONS, **behind_front())
    return 0
