"""The owner's page, on the chain's central box: clinics and docks with when each was last
heard and its lag, sessions per week per clinic (an SVG drawn here, no script, no CDN),
overrides with their reason, partition conflicts, pens by hours to service (the shipped
rules' interval), and a CSV of any range. Read-only, behind a login of the
chain's own (`pendock chain user`, role `chain`), with the dock page's hardening headers
(CSP without inline script or style) and a CSRF token on its one form. Serve it behind
TLS as the dock's page is (README "A chain's records in one place").
"""
from __future__ import annotations

import csv
import io
import secrets
from datetime import date, timedelta

from flask import Flask, Response, abort, redirect, render_template, request, session, url_for

from appliance.chain import store
from appliance.core.config import Config
from appliance.page import auth
from appliance.core.resources import web_folder
from appliance.page.guard import SECURITY_HEADERS
from appliance.record.passwords import check_password, password_hash

ROLE = "chain"
WEEKS = 12  # the chart's span


def add_user(database: str, name: str, password: str) -> None:
    """A login for the owner's page (a new password for an existing name)."""
    if not auth.valid_user_name(name):
        raise ValueError(f"{name!r}: a user name is letters, digits, '.', '-' or '_'")
    with store.connect(database) as conn:
        store.create(conn)
        with conn.transaction():
            conn.execute("INSERT INTO chain_users (name, hash, role) VALUES (%s, %s, %s) ON CONFLICT (name) "
                         "DO UPDATE SET hash = excluded.hash", (name, password_hash(password), ROLE))


def create_chain_app(database: str, *, secret_key: bytes | None = None) -> Flask:
    web = web_folder()
    app = Flask(__name__, template_folder=str(web / "templates"), static_folder=str(web / "static"),
                static_url_path="/static")
    app.config.update(SECRET_KEY=secret_key or secrets.token_bytes(32), SESSION_COOKIE_NAME="pendock_chain",
                      SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Strict", MAX_CONTENT_LENGTH=16 * 1024)
    throttle = auth.LoginThrottle()
    with store.connect(database) as conn:
        store.create(conn)  # the logins' table too, before the first login

    def db():
        return store.connect(database)

    @app.after_request
    def harden(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        response.headers["Cache-Control"] = "no-store"
        return response

    @app.before_request
    def identify():
        if request.endpoint in ("login", "static"):
            return None
        if session.get("user") is None or session.get("role") != ROLE:
            return redirect(url_for("login"))
        return None

    @app.route("/login", methods=["GET", "POST"])
    def login():
        session.setdefault("csrf", secrets.token_urlsafe(16))
        error = ""
        if request.method == "POST":
            name = request.form.get("name", "")[:64]
            address = request.remote_addr or ""
            if not auth.csrf_ok(session.get("csrf"), request.form.get("csrf")):
                error = "This form was out of date: please try once more."
            elif throttle.wait_seconds(name, address) > 0:
                error = "Too many attempts: wait a few minutes, then try again."
            else:
                with db() as conn:
                    row = conn.execute("SELECT hash, role FROM chain_users WHERE name = %s", (name,)).fetchone()
                if row and row[1] == ROLE and check_password(request.form.get("password", ""), row[0]):
                    throttle.succeeded(name, address)
                    session.clear()
                    session.update(user=name, role=ROLE, csrf=secrets.token_urlsafe(16))
                    return redirect(url_for("owner"))
                throttle.failed(name, address)
                error = "Wrong name or password."
        return render_template("chain_login.html", error=error, csrf=session["csrf"]), 401 if error else 200

    @app.route("/logout", methods=["POST"])
    def logout():
        if not auth.csrf_ok(session.get("csrf"), request.form.get("csrf")):
            abort(400)
        session.clear()
        return redirect(url_for("login"))

    @app.route("/")
    def owner():
        with db() as conn:
            shown = store.report(conn)
            weeks = weekly(conn)
            rules = Config().rules
            pens = store.pens(conn, rules.service_interval_hours)
            conflicts = store.conflicts(conn, date.today() - timedelta(days=90))
            overrides = conn.execute(
                "SELECT clinic, dock_id, at, payload->>'code', payload->>'reason' FROM chain_events "
                "WHERE kind = 'override' ORDER BY at DESC LIMIT 50").fetchall()
        return render_template("chain_page.html", report=shown, chart=chart(weeks), overrides=overrides,
                               pens=pens, conflicts=conflicts,
                               user=session["user"], csrf=session["csrf"],
                               today=date.today().isoformat(),
                               month_ago=(date.today() - timedelta(days=30)).isoformat())

    @app.route("/sessions.csv")
    def sessions_csv():
        try:
            low = date.fromisoformat(request.args.get("from", "0001-01-01"))
            high = date.fromisoformat(request.args.get("to", "9999-12-31"))
        except ValueError:
            return Response("from and to must be days as YYYY-MM-DD\n", 400, mimetype="text/plain")
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(["clinic", "dock_id", "session", "day", "started_at", "ended_at", "outcome",
                         "client_ref", "area", "pen_serial", "cartridge_serial"])
        with db() as conn:
            for row in conn.execute(
                    "SELECT clinic, dock_id, session, day, started_at, ended_at, outcome, client_ref, area, "
                    "pen_serial, cartridge_serial FROM chain_sessions WHERE day BETWEEN %s AND %s "
                    "ORDER BY clinic, dock_id, session", (low, high)):
                writer.writerow(["" if v is None else v.isoformat() if hasattr(v, "isoformat") else v for v in row])
        return Response(out.getvalue(), mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="sessions-{low}-{high}.csv"'})

    return app


def weekly(conn) -> dict[str, dict[date, int]]:
    """{clinic: {monday: sessions}} over the last WEEKS weeks (per-day counts: an index scan)."""
    since = date.today() - timedelta(weeks=WEEKS)
    out: dict[str, dict[date, int]] = {}
    for clinic, week, count in conn.execute(
            "SELECT d.clinic, date_trunc('week', c.day)::date, sum(c.sessions) FROM chain_daily c "
            "JOIN chain_docks d USING (dock_id) WHERE c.day >= %s GROUP BY 1, 2 ORDER BY 1, 2", (since,)):
        out.setdefault(clinic, {})[week] = int(count)
    return out


def chart(weeks: dict[str, dict[date, int]]) -> list[dict]:
    """Bars for each clinic's SVG: x, y, height in the template's 0..100 box."""
    top = max((n for counts in weeks.values() for n in counts.values()), default=0) or 1
    monday = date.today() - timedelta(days=date.today().weekday())
    span = [monday - timedelta(weeks=i) for i in range(WEEKS - 1, -1, -1)]
    return [{"clinic": clinic, "bars": [
        {"x": i * (100 / WEEKS), "height": round(90 * counts.get(week, 0) / top, 2),
         "week": week.isoformat(), "sessions": counts.get(week, 0)} for i, week in enumerate(span)]}
        for clinic, counts in sorted(weeks.items())]
