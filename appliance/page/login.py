"""Logging in and out of the page. Every login goes to the daemon's audit trail, wrong
ones at most once a minute per address with the count of the others (auth.AuditGate);
wrong passwords are throttled per name, address, both, and overall (auth.LoginThrottle)."""
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
        # Counted in memory; written down at most once a minute from this address (S8).
        page.throttle.refused(name, address)
        unwritten = page.audit_gate.may_write(address)
        if unwritten is not None:
            report_login(name, False, refused=True, throttled=page.throttle.summary(name, address),
                         unwritten=unwritten)
        return render_template("login.html", next=next_path, name=name,
                               message=f"Too many wrong passwords for {name}. Wait "
                                       f"{int(wait) + 1} seconds and try again, or ask a manager."), 429
    who = auth.verify_password(page.record(), name, password)
    if who is None:
        page.throttle.failed(name, address)
        unwritten = page.audit_gate.may_write(address)
        if unwritten is not None:
            report_login(name, False, throttled=page.throttle.summary(name, address), unwritten=unwritten)
        return render_template("login.html", next=next_path, name=name,
                               message="That user name and password do not match."), 401
    report_login(name, True, throttled=page.throttle.summary(name, address),
                 unwritten=page.audit_gate.written(address))
    page.throttle.succeeded(name, address)
    page.logins.end(session.get("sid"))
    session.clear()
    session["sid"] = page.logins.start(who, address=address)
    session["csrf"] = auth.new_csrf_token()
    return redirect(next_path)


@bp.post("/logout")
def logout():
    here().logins.end(session.get("sid"))
    session.clear()
    return redirect(url_for("login.login"))


def report_login(name: str, ok: bool, *, refused: bool = False, throttled: int = 0, unwritten: int = 0) -> None:
    """A login goes to the daemon's audit trail; a wrong or refused one at most once a
    minute per address, with `throttled` (refused while waiting, since the last entry of
    that name there) and `unwritten` (attempts from that address not written down); a login is not
    refused when the daemon is down (the log must stay readable), but that is logged here."""
    extra = {"refused": True} if refused else {}
    if throttled:
        extra["throttled"] = throttled
    if unwritten:
        extra["unwritten"] = unwritten
    try:
        here().make_client("page login").call("login", user=name, ok=ok, remote=request.remote_addr or "", **extra)
    except ControlError as error:
        log.warning("login of %r (ok=%s) not in the audit trail: %s", name, ok, error)


def safe_next(text: str | None) -> str:
    """Only a path on this dock: never an open redirect (auth.safe_next)."""
    return auth.safe_next(text)
