"""Logging in and out of the page. Every attempt goes to the daemon's audit trail;
wrong passwords are throttled per user name and client address (auth.LoginThrottle)."""
from __future__ import annotations

import logging

from flask import Blueprint, redirect, render_template, request, session, url_for

from appliance.daemon.control import ControlError
from appliance.page import auth
from appliance.page.context import here

log = logging.getLogger("pendock.page")
bp = Blueprint("login", __name__)


@bp.route("/login", methods=["GET", "POST"])
def login():
    page = here()
    next_path = safe_next(request.values.get("next"))
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
    address = request.remote_addr or ""
    wait = page.throttle.wait_seconds(name, address)
    if wait > 0:
        # Counted in memory only: one audit entry when a burst begins, its total with the
        # next attempt that is checked. A flood of refused attempts writes nothing (S5).
        if page.throttle.refused(name, address) == 1:
            report_login(name, False, refused=True, throttled=1)
        return render_template("login.html", next=next_path, name=name,
                               message=f"Too many wrong passwords for {name} from this device. Wait "
                                       f"{int(wait) + 1} seconds and try again, or ask a manager."), 429
    who = auth.verify_password(page.record(), name, password)
    report_login(name, who is not None, throttled=page.throttle.summary(name, address))
    if who is None:
        page.throttle.failed(name, address)
        return render_template("login.html", next=next_path, name=name,
                               message="That user name and password do not match."), 401
    page.throttle.succeeded(name, address)
    page.logins.end(session.get("sid"))
    session.clear()
    session["sid"] = page.logins.start(who)
    session["csrf"] = auth.new_csrf_token()
    return redirect(next_path)


@bp.post("/logout")
def logout():
    here().logins.end(session.get("sid"))
    session.clear()
    return redirect(url_for("login.login"))


def report_login(name: str, ok: bool, *, refused: bool = False, throttled: int = 0) -> None:
    """Every checked attempt goes to the daemon's audit trail, and the first refused one of
    a burst (with `throttled`, how many were refused since the last entry); a login is not
    refused when the daemon is down (the log must stay readable), but that is logged here."""
    extra = {"refused": True} if refused else {}
    if throttled:
        extra["throttled"] = throttled
    try:
        here().make_client("page login").call("login", user=name, ok=ok, remote=request.remote_addr or "", **extra)
    except ControlError as error:
        log.warning("login of %r (ok=%s) not in the audit trail: %s", name, ok, error)


def safe_next(text: str | None) -> str:
    """Only a path on this dock: never an open redirect (auth.safe_next)."""
    return auth.safe_next(text)
