"""`/wall`: the state band alone, large, for a tablet on the treatment room's wall, with a
dark background on request (`?dark=1`).

Its login is a wall token (`pendock token create --name wall`, or `wall-room-1`: a token
named so opens /wall and nothing else, never the API, auth.is_wall_token): open `/wall/login?token=TOKEN`
once on the tablet; the page swaps the token for a "wall" login (cookie) that lasts
WALL_IDLE_S (30 days, or until the page restarts; then the same link logs it in again).
A wall login sees /wall and the live status only: it cannot act, read the log or export;
it ends at its next look once its token is deleted from the record. The token leaves the address bar by
a redirect, and the page sends no Referer.
"""
from __future__ import annotations

import hashlib

from flask import Blueprint, g, redirect, render_template, request, session, url_for

from appliance.core.dates import date_names
from appliance.daemon.control import ControlError
from appliance.page import auth, i18n
from appliance.page import view as web_view
from appliance.page.context import here

bp = Blueprint("wall", __name__)
WALL_ROLE = "wall"
WALL_IDLE_S = 30 * 24 * 3600  # also its absolute lifetime: then the same link again
WALL_REFRESH_S = 30  # the no-JavaScript wall reloads itself this often
# What a wall login may reach: the wall, the live status, static files, logging out.
WALL_ENDPOINTS = frozenset({"wall.wall", "wall.wall_login", "api.api_status", "api.healthz", "static",
                            "login.logout"})


@bp.before_app_request
def wall_sees_only_the_wall():
    login = g.get("login")
    if login is None or login.role != WALL_ROLE:
        return None
    page = here()
    if page.record().token_by_hash(login.stamp) is None:  # its token was deleted: the wall is over
        page.logins.end(session.get("sid"))
        session.clear()
        return ("This wall display's token no longer exists: open a new wall link.\n", 401,
                {"Content-Type": "text/plain"})
    if request.endpoint in WALL_ENDPOINTS:
        return None
    if request.method == "GET" and not request.path.startswith("/api/"):
        return redirect(url_for("wall.wall"))
    return ("This is a wall display's login: it shows the pen's state only.\n", 403,
            {"Content-Type": "text/plain"})


@bp.get("/wall")
def wall():
    page = here()
    status = page.live_status()
    locale = page.config.clinic.locale
    tr = i18n.translator()
    return render_template("wall.html", live=web_view.live_state(status, locale=locale, tr=tr), js_words=i18n.js_words(tr),
                           dark=request.args.get("dark") == "1",
                           wall_refresh=WALL_REFRESH_S, date_names=date_names(locale), page_lang=i18n.language_of(locale),
                           room=page.config.fleet.dock_id)


@bp.get("/wall/login")
def wall_login():
    page = here()
    token = request.args.get("token") or ""
    token_hash = hashlib.sha256(token.encode()).hexdigest()
    found = auth.token_login(page.record(), f"Bearer {token}", wall=True) if token else None
    # A right token is a login (written); a wrong one is unauthenticated: written at most
    # once a minute from its address, with the count of the others (auth.AuditGate, S8).
    address = request.remote_addr or ""
    unwritten = page.audit_gate.written(address) if found else page.audit_gate.may_write(address)
    if unwritten is not None:
        extra = {"unwritten": unwritten} if unwritten else {}
        try:
            page.make_client("page wall").call("login", user=(found.name if found else "wall")[:64],
                                               ok=found is not None, remote=address, **extra)
        except ControlError:
            pass  # the wall still works when the daemon is down; the page logs nothing secret
    if found is None:
        return render_template("error.html", code=401,
                               message="This wall link's token is not a wall token of this dock. Make one "
                                       "with `pendock token create --name wall` (or `wall-ROOM`) and open "
                                       "/wall/login?token=TOKEN."), 401
    page.logins.end(session.get("sid"))
    session.clear()
    session["sid"] = page.logins.start(auth.Login("wall display", WALL_ROLE, token_hash),
                                       idle_seconds=WALL_IDLE_S, max_seconds=WALL_IDLE_S, address=address)
    session["csrf"] = auth.new_csrf_token()
    return redirect(url_for("wall.wall"))
