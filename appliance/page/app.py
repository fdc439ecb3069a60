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
from appliance.page import actions, api, auth, guard, history, i18n, log, login, setup, wall
from appliance.page.context import KEY, ControlFactory, PageContext
from appliance.page.replies import install_error_handlers
from appliance.record.store import Store

STATUS_TIMEOUT_S = 2.0
STATUS_FRESH_S = 0.25  # many open pages share one status call per quarter second
DAYS_KEPT = 4  # days whose rendered pieces are kept: today and a few looked back on
PAGE_THREADS = 6  # waitress worker threads; at most LONG_POLL_SLOTS of them wait (context.py)


def create_app(config, data_dir: Path, socket: Path, *, control: ControlFactory | None = None,
               store: Store | None = None, secret_key: str | bytes | None = None,
               throttle: auth.LoginThrottle | None = None, status_fresh_s: float = STATUS_FRESH_S,
               days_kept: int = DAYS_KEPT) -> Flask:
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
                                      throttle or auth.LoginThrottle(), status_fresh_s, days_kept)
    i18n.install(app, lambda: app.extensions[KEY].config.clinic.locale)
    guard.install(app)
    install_error_handlers(app)
    for blueprint in (log.bp, actions.bp, login.bp, api.bp, history.bp, wall.bp, setup.bp):
        app.register_blueprint(blueprint)
    return app


def serve(config, data_dir: Path, socket: Path, host: str, port: int) -> int:
    from waitress import serve as waitress_serve

    app = create_app(config, data_dir, socket)
    # ident=None: no Server header naming waitress or its version.
    waitress_serve(app, host=host, port=port, threads=PAGE_THREADS, ident=None, clear_untrusted_proxy_headers=True)
    return 0
