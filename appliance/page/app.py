"""The page process: a Flask app factory, served by waitress (never Flask's dev server).

It has no GPIO, reads the record through a read-only Store, and sends its few commands
(next client, override, login audit) through the daemon's control socket. Logins live in
this process's memory (appliance/page/auth.py): the page may not write the data folder.
"""
from __future__ import annotations

import logging
import os
import secrets
import threading
import time
from collections import OrderedDict
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable

from flask import (Flask, Response, abort, flash, g, jsonify, redirect, render_template, request,
                   session, url_for)
from werkzeug.exceptions import HTTPException

from appliance.page import auth
from appliance.core import rules
from appliance.page import view as web_view
from appliance.daemon.control import BadRequest, ControlClient, ControlError, DaemonUnavailable, Denied, Refused
from appliance.record.export import sessions_csv
from appliance.core.model import CHECKLIST_ITEMS
from appliance.core.resources import web_folder
from appliance.record.store import Store, StoreError

log = logging.getLogger("pendock.page")

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
CHECKLIST_WORDS = {"screened": "Contraindications screened", "test-area": "Test area done"}
STATUS_TIMEOUT_S = 2.0
STATUS_FRESH_S = 0.25  # many open pages share one status call per quarter second
MAX_REASON = 500
MIN_REASON = 5
DAYS_KEPT = 4  # days whose rendered pieces are kept: today and a few looked back on
PAGE_THREADS = 4  # waitress worker threads

ControlFactory = Callable[[str], object]  # via -> an object with .call(cmd, **args)


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
    app.json.sort_keys = False  # the contract's key order
    tz = config.tz
    areas = tuple(config.areas.max_depth_mm)
    make_client: ControlFactory = control or (
        lambda via: ControlClient(socket, timeout=STATUS_TIMEOUT_S, via=via))
    logins = auth.SessionTable()
    throttle = throttle or auth.LoginThrottle()
    opened: dict[str, Store] = {"store": store} if store is not None else {}
    open_lock = threading.Lock()

    # -- the record and the daemon -----------------------------------------------------

    def record() -> Store:
        found = opened.get("store")
        if found is None:
            with open_lock:
                found = opened.get("store")
                if found is None:
                    found = opened["store"] = Store.open(data_dir, readonly=True)
        return found

    def daemon():
        who = g.get("login")
        return make_client(f"page user {who.name}" if who else "page")

    status_cache = _StatusCache(lambda: make_client("page").call("status"), status_fresh_s)
    day_cache = _DayCache(record, days_kept)

    def day_record(day: date) -> _DayRecord:
        return day_cache.day(day)

    def rows_of(found: _DayRecord) -> tuple:
        return found.piece("rows", lambda sessions: tuple(web_view.session_row(s, tz) for s in sessions))

    def timeline_of(found: _DayRecord, day: date, now: datetime) -> web_view.Timeline:
        # An open session's bar grows with the clock: then the drawing is kept only for
        # one `now` (the daemon's, which changes with each status call, 4 times a second).
        return found.piece("timeline", lambda sessions: web_view.timeline(sessions, day, tz, now),
                           moment=now if found.has_open else None)

    def json_of(found: _DayRecord) -> str:
        return found.piece("json", lambda sessions: app.json.dumps(
            [web_view.contract_session(s) for s in sessions]) + "\n")

    def live_status() -> dict | None:
        try:
            return status_cache.get()
        except ControlError as error:
            log.warning("status: %s", error)
            return None

    def now_of(status: dict | None) -> datetime:
        if status and status.get("now"):
            try:
                return datetime.fromisoformat(status["now"])
            except ValueError:
                pass
        return datetime.now(tz)

    # -- who is asking ---------------------------------------------------------------------

    def is_machine_path() -> bool:
        return request.path.startswith(MACHINE_PATHS)

    @app.before_request
    def identify():
        g.login = None
        if request.endpoint in ("healthz", "static", "login"):
            return None
        login = logins.get(session.get("sid"))
        if login is None and request.method == "GET" and "Authorization" in request.headers:
            login = auth.token_login(record(), request.headers.get("Authorization"))
        if login is None:
            if is_machine_path():
                return _api_error("log in, or send Authorization: Bearer TOKEN (pendock token create)", 401,
                                  {"WWW-Authenticate": 'Bearer realm="pendock"'})
            if request.method == "GET":
                return redirect(url_for("login", next=request.full_path.rstrip("?")))
            return redirect(url_for("login"))
        g.login = login
        if request.method == "POST" and not auth.csrf_ok(session.get("csrf"), request.form.get("csrf")):
            return _page_error("This form was out of date (it was opened before a login or a restart). "
                               "It has been loaded again: please try once more.", 400)
        return None

    @app.context_processor
    def common():
        if "csrf" not in session:
            session["csrf"] = auth.new_csrf_token()
        return {"csrf_token": session["csrf"], "login": g.get("login"), "areas": areas,
                "checklist_items": [(item, CHECKLIST_WORDS.get(item, item)) for item in CHECKLIST_ITEMS],
                "overridable": sorted(rules.OVERRIDABLE), "words": web_view.words,
                "overridable_words": {code: web_view.words(code) for code in rules.OVERRIDABLE}}

    @app.after_request
    def harden(response: Response) -> Response:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.endpoint != "static":
            response.headers["Cache-Control"] = "no-store"
        response.headers.pop("Server", None)
        return response

    # -- errors: never a stack trace ------------------------------------------------------

    def _api_error(message: str, code: int, headers: dict | None = None) -> Response:
        response = jsonify(error=message)
        response.status_code = code
        for name, value in (headers or {}).items():
            response.headers[name] = value
        return response

    def _text_error(message: str, code: int) -> Response:
        return Response(message + "\n", status=code, mimetype="text/plain")

    def _page_error(message: str, code: int) -> tuple[str, int]:
        return render_template("error.html", message=message, code=code), code

    def error_response(message: str, code: int):
        if request.path.startswith("/api/"):
            return _api_error(message, code)
        if request.path.startswith("/export.csv"):
            return _text_error(message, code)
        return _page_error(message, code)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        plain = {404: "There is no such page here.", 405: "That is not how this page is used.",
                 413: "What was sent is too large."}
        return error_response(plain.get(error.code, error.description or error.name), error.code or 500)

    @app.errorhandler(StoreError)
    def record_error(error: StoreError):
        log.error("record: %s", error)
        return error_response(f"The record cannot be read: {error}", 503)

    @app.errorhandler(Exception)
    def any_error(error: Exception):
        log.exception("page error on %s %s", request.method, request.path)
        return error_response("Something went wrong on the dock's page; it has been logged. "
                              "Try again, and call the technician if it keeps happening.", 500)

    # -- open paths ---------------------------------------------------------------------------

    @app.get("/healthz")
    def healthz():
        try:
            make_client("page healthz").call("status")
        except ControlError:
            return jsonify(ok=False), 503
        return jsonify(ok=True)

    @app.route("/login", methods=["GET", "POST"])
    def login():
        next_path = _safe_next(request.values.get("next"))
        if request.method == "GET":
            return render_template("login.html", next=next_path, name="", message="")
        if not auth.csrf_ok(session.get("csrf"), request.form.get("csrf")):
            return render_template("login.html", next=next_path, name="",
                                   message="The login form was out of date; please try again."), 400
        name = (request.form.get("name") or "").strip()
        password = request.form.get("password") or ""
        if not auth.valid_user_name(name) or not password or len(password) > auth.MAX_PASSWORD:
            return render_template("login.html", next=next_path, name=name[:32],
                                   message="Enter your user name (letters, digits, '-', '_' or '.') "
                                           "and your password."), 400
        wait = throttle.wait_seconds(name)
        if wait > 0:
            report_login(name, False)
            return render_template("login.html", next=next_path, name=name,
                                   message=f"Too many wrong passwords for {name}. Wait {int(wait) + 1} "
                                           f"seconds and try again, or ask a manager."), 429
        who = auth.verify_password(record(), name, password)
        report_login(name, who is not None)
        if who is None:
            throttle.failed(name)
            return render_template("login.html", next=next_path, name=name,
                                   message="That user name and password do not match."), 401
        throttle.succeeded(name)
        logins.end(session.get("sid"))
        session.clear()
        session["sid"] = logins.start(who)
        session["csrf"] = auth.new_csrf_token()
        return redirect(next_path)

    def report_login(name: str, ok: bool) -> None:
        """Every attempt goes to the daemon's audit trail; a login is not refused when the
        daemon is down (the log must stay readable), but that is logged here."""
        try:
            make_client("page login").call("login", user=name, ok=ok, remote=request.remote_addr or "")
        except ControlError as error:
            log.warning("login of %r (ok=%s) not in the audit trail: %s", name, ok, error)

    # -- pages ------------------------------------------------------------------------------

    @app.post("/logout")
    def logout():
        logins.end(session.get("sid"))
        session.clear()
        return redirect(url_for("login"))

    def render_day(day_text: str | None, *, message: str = "", code: int = 200, form: dict | None = None):
        status = live_status()
        today = now_of(status).date()
        try:
            day = web_view.parse_day(day_text, today)
        except web_view.BadParameter as error:
            day, message, code = today, str(error), 400
        found = day_record(day)
        return render_template(
            "log.html",
            status=status,
            live=web_view.live_state(status),
            day=day,
            today=today,
            is_today=day == today,
            rows=rows_of(found),
            timeline=timeline_of(found, day, now_of(status)),
            last_session_id=((status or {}).get("last_session") or {}).get("id") or 0,
            prev_day=day - timedelta(days=1) if day > web_view.FIRST_DAY else None,
            next_day=day + timedelta(days=1) if day < min(today, web_view.LAST_DAY) else None,
            message=message,
            form=form or {},
        ), code

    @app.get("/")
    def index():
        return render_day(request.args.get("date"))

    @app.post("/next-client")
    def next_client():
        if not g.login.can_act:
            abort(403)
        form = {"ref": (request.form.get("ref") or "").strip(),
                "area": (request.form.get("area") or "").strip(),
                "checklist": [item for item in request.form.getlist("checklist")][:5]}
        try:
            ref = rules.validate_client_ref(form["ref"])
            area = rules.validate_area(form["area"] or None, config)
            checklist = rules.parse_checklist(",".join(form["checklist"]))
        except ValueError as error:
            return render_day(None, message=str(error), code=400, form=form)
        try:
            status = daemon().call("next_client", ref=ref, area=area, checklist=sorted(checklist))
        except ControlError as error:
            return render_day(None, message=_control_words(error), code=_control_code(error), form=form)
        status_cache.put(status)
        state = "the pen is free to lift" if not status.get("held") else "the pen is still held: see why above"
        flash(f"Next client {ref} ({area}) named; {state}.")
        return redirect(url_for("index"))

    @app.post("/override")
    def override():
        if not g.login.is_manager:
            return render_day(None, message="Only a manager may override a lock. Ask a manager to log in.",
                              code=403)
        code = (request.form.get("code") or "").strip()
        reason = (request.form.get("reason") or "").strip()
        form = {"code": code, "reason": reason}
        if code not in rules.OVERRIDABLE:
            return render_day(None, message=f"{code[:40]!r} is not a lock a manager may override; choose one of: "
                                            f"{', '.join(sorted(rules.OVERRIDABLE))}.", code=400, form=form)
        if not MIN_REASON <= len(reason) <= MAX_REASON:
            return render_day(None, message=f"Write the reason for the override ({MIN_REASON} to {MAX_REASON} "
                                            f"characters), e.g. \"client's dermatologist approved\".",
                              code=400, form=form)
        try:
            status_cache.put(daemon().call("override", code=code, reason=reason))
        except ControlError as error:
            return render_day(None, message=_control_words(error), code=_control_code(error), form=form)
        flash(f"{web_view.words(code)} Overridden for this session, reason recorded.")
        return redirect(url_for("index"))

    @app.get("/sessions/<int:session_id>/aftercare")
    def aftercare(session_id: int):
        found = record().session(session_id) if session_id < 2**63 else None
        if found is None:
            return _page_error(f"There is no session {session_id} in the record.", 404)
        return render_template("aftercare.html", card=web_view.aftercare(found, tz))

    # -- machine paths ----------------------------------------------------------------------

    @app.get("/api/status")
    def api_status():
        try:
            return jsonify(status_cache.get())
        except ControlError as error:
            return _api_error(f"dock not answering: {error}", 503)

    def day_param() -> date:
        text = request.args.get("date")
        if text:
            return web_view.parse_day(text, datetime.now(tz).date())
        return now_of(live_status()).date()

    @app.get("/api/sessions")
    def api_sessions():
        try:
            day = day_param()
        except web_view.BadParameter as error:
            return _api_error(str(error), 400)
        return app.response_class(json_of(day_record(day)), mimetype=app.json.mimetype)

    @app.get("/export.csv")
    def export_csv():
        try:
            day = day_param()
        except web_view.BadParameter as error:
            return _text_error(str(error), 400)
        body = day_record(day).piece("csv", sessions_csv)
        return Response(body, mimetype="text/csv", headers={
            "Content-Disposition": f"attachment; filename=pendock-{day.isoformat()}.csv"})

    return app


class _StatusCache:
    """The daemon's status, asked at most once per `fresh_s` however many pages poll:
    one caller asks, the others wait for its answer (a failure is not cached)."""

    def __init__(self, ask: Callable[[], dict], fresh_s: float):
        self.ask, self.fresh_s = ask, fresh_s
        self._lock = threading.Lock()
        self._value: dict | None = None
        self._at = float("-inf")

    def get(self) -> dict:
        with self._lock:
            if time.monotonic() - self._at > self.fresh_s:
                self._value = self.ask()
                self._at = time.monotonic()
            return self._value

    def put(self, value: dict) -> None:
        """A fresher status, as an action's answer brought it."""
        with self._lock:
            self._value, self._at = value, time.monotonic()


class _DayRecord:
    """One day's sessions as read at one version of the record, and what the page makes
    of them (rows, timeline, JSON, CSV), each made once. Shared by threads: read only."""

    def __init__(self, sessions: list[dict]):
        self.sessions = sessions
        self.has_open = any(s.get("outcome") == "open" for s in sessions)
        self._pieces: dict[str, tuple[object, object]] = {}  # name -> (moment, value)

    def piece(self, name: str, make: Callable[[list[dict]], object], *, moment: object = None):
        """The piece `name`, made once; one that changes with time is made again when
        `moment` changes (only the latest is kept). Two threads may both make it: same value."""
        found = self._pieces.get(name)
        if found is None or found[0] != moment:
            found = self._pieces[name] = (moment, make(self.sessions))
        return found[1]


class _DayCache:
    """The last `size` days asked for, each kept until another connection (the daemon)
    commits: many open pages read and render a day once per change, not once per request.

    The record's data_version is read before the day, so a commit in between makes an
    entry newer than its key (read again next time), never older."""

    def __init__(self, store: Callable[[], Store], size: int):
        if size < 1:
            raise ValueError(f"days_kept={size}: keep at least one day")
        self.store, self.size = store, size
        self._lock = threading.Lock()
        self._days: OrderedDict[date, tuple[int, _DayRecord]] = OrderedDict()

    def day(self, day: date) -> _DayRecord:
        store = self.store()
        version = store.data_version()
        with self._lock:
            kept = self._days.get(day)
            if kept is not None and kept[0] == version:
                self._days.move_to_end(day)
                return kept[1]
        found = _DayRecord(store.sessions_on(day))
        with self._lock:
            self._days[day] = (version, found)
            self._days.move_to_end(day)
            while len(self._days) > self.size:
                self._days.popitem(last=False)
        return found

    def __len__(self) -> int:
        return len(self._days)


def _safe_next(text: str | None) -> str:
    """Only a path on this site: never an open redirect."""
    if not text or not text.startswith("/") or text.startswith("//") or "\\" in text or len(text) > 200:
        return "/"
    return text


def _control_words(error: ControlError) -> str:
    if isinstance(error, DaemonUnavailable):
        return "The dock is not answering, so nothing was changed. Try again in a moment."
    if isinstance(error, Refused):
        return f"Refused: {error}"
    if isinstance(error, Denied):
        return f"Not allowed: {error}"
    return str(error)


def _control_code(error: ControlError) -> int:
    if isinstance(error, DaemonUnavailable):
        return 503
    if isinstance(error, Refused):
        return 409
    if isinstance(error, Denied):
        return 403
    if isinstance(error, BadRequest):
        return 400
    return 502


def serve(config, data_dir: Path, socket: Path, host: str, port: int) -> int:
    from waitress import serve as waitress_serve

    app = create_app(config, data_dir, socket)
    # ident=None: no Server header naming waitress or its version.
    waitress_serve(app, host=host, port=port, threads=PAGE_THREADS, ident=None, clear_untrusted_proxy_headers=True)
    return 0
