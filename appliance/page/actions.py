"""The page's forms that ask the daemon to act: name the next client, clear a wrongly
named one (the pen is held until the right client is named), override a lock, confirm
the dock's clock (a manager).
The page checks the input and the login's role; the daemon decides and records."""
from __future__ import annotations

import re

from flask import Blueprint, abort, flash, g, redirect, request, url_for

from appliance.core import rules
from appliance.core.inputs import MAX_REASON, MIN_REASON
from appliance.daemon.control import ControlError
from appliance.page import view as web_view
from appliance.page.context import here
from appliance.page.log import render_day
from appliance.page.replies import control_code, control_words

bp = Blueprint("actions", __name__)
CLOCK_MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")  # what <input type="datetime-local"> sends


@bp.post("/next-client")
def next_client():
    if not g.login.can_act:
        abort(403)
    page = here()
    form = {"ref": (request.form.get("ref") or "").strip(),
            "area": (request.form.get("area") or "").strip(),
            "checklist": [item for item in request.form.getlist("checklist")][:5]}
    field = "ref"
    try:
        ref = rules.validate_client_ref(form["ref"])
        field = "area"
        area = rules.validate_area(form["area"] or None, page.config)
        field = "checklist"
        checklist = rules.parse_checklist(",".join(form["checklist"]))
    except ValueError as error:  # shown at its field, which gets the focus
        return render_day(None, code=400, form=form, errors={field: str(error), "_focus": field})
    try:
        status = page.daemon().call("next_client", ref=ref, area=area, checklist=sorted(checklist))
    except ControlError as error:
        return render_day(None, message=control_words(error), code=control_code(error), form=form)
    page.status_cache.put(status)
    state = "the pen is free to lift" if not status.get("held") else "the pen is still held: see why above"
    flash(f"Next client {ref} ({area}) named; {state}.")
    return redirect(url_for("log.index"))


@bp.post("/override")
def override():
    if not g.login.is_manager:
        return render_day(None, message="Only a manager may override a lock. Ask a manager to log in.",
                          code=403)
    code = (request.form.get("code") or "").strip()
    reason = (request.form.get("reason") or "").strip()
    form = {"code": code, "reason": reason}
    if code not in rules.OVERRIDABLE:
        return render_day(None, code=400, form=form, errors={
            "code": f"{code[:40]!r} is not a lock a manager may override; choose one of: "
                    f"{', '.join(sorted(rules.OVERRIDABLE))}.", "_focus": "code"})
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        return render_day(None, code=400, form=form, errors={
            "reason": f"Write the reason for the override ({MIN_REASON} to {MAX_REASON} "
                      f"characters), e.g. \"client's dermatologist approved\".", "_focus": "reason"})
    try:
        # The daemon checks that this logged-in user is a manager (appliance/daemon/authority.py).
        here().status_cache.put(here().daemon().call("override", code=code, reason=reason,
                                                     manager=g.login.name))
    except ControlError as error:
        return render_day(None, message=control_words(error), code=control_code(error), form=form)
    flash(f"{web_view.words(code)} Overridden for this session, reason recorded.")
    return redirect(url_for("log.index"))


@bp.post("/clear-client")
def clear_client():
    if not g.login.can_act:
        abort(403)
    page = here()
    try:
        status = page.daemon().call("clear_client")
    except ControlError as error:
        return render_day(None, message=control_words(error), code=control_code(error))
    page.status_cache.put(status)
    flash("The next client was cleared: name the right client to free the pen.")
    return redirect(url_for("log.index"))


@bp.post("/clock")
def confirm_clock():
    """A manager confirms the dock's date and time: the daemon's `clock_set`, the same
    audited act as `pendock clock set`. The manager's password goes with it, because the
    daemon, not the page, decides who may set the clock (README "The clock"). It sets
    the date shown and written; only a trusted time source adds time the dock vouches for."""
    if not g.login.is_manager:
        return render_day(None, message="Only a manager may confirm the dock's clock. Ask a manager "
                          "to log in.", code=403)
    at = (request.form.get("at") or "").strip()[:16]
    reason = (request.form.get("clock_reason") or "").strip()
    password = request.form.get("password") or ""
    form = {"at": at, "clock_reason": reason}
    if not CLOCK_MINUTE.fullmatch(at):
        return render_day(None, code=400, form=form, errors={
            "at": "Give the date and time as the clinic's clock shows them, e.g. 2026-03-14 09:30.",
            "_focus": "at"})
    if not MIN_REASON <= len(reason) <= MAX_REASON:
        return render_day(None, code=400, form=form, errors={
            "clock_reason": f"Write how you checked the time ({MIN_REASON} to {MAX_REASON} characters), "
                            f"e.g. \"checked against the clinic's phone\".", "_focus": "clock_reason"})
    if not password:
        return render_day(None, code=400, form=form, errors={
            "password": "Type your password again: the dock checks it before it sets the clock.",
            "_focus": "password"})
    try:
        here().daemon().call("clock_set", at=at, reason=reason, manager=g.login.name, password=password)
    except ControlError as error:
        return render_day(None, message=control_words(error), code=control_code(error), form=form)
    flash(f"The dock's clock was set to {at.replace('T', ' ')}, reason recorded. Clients treated "
          "recently stay held until a trusted time source confirms the time or a manager overrides.")
    return redirect(url_for("log.index"))
