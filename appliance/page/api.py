"""The machine paths: the live status and a day's sessions as JSON (the keys the README
lists), and /healthz for the watchdog of the page process (open, no login)."""
from __future__ import annotations

from flask import Blueprint, current_app, jsonify, request

from appliance.daemon.control import ControlError
from appliance.page import view as web_view
from appliance.page.context import here
from appliance.page.live import version_of
from appliance.page.replies import api_error

bp = Blueprint("api", __name__)


@bp.get("/healthz")
def healthz():
    """From a short cache (caches.HealthCache): a flood of /healthz asks the daemon about
    once a second, whatever its answer."""
    if not here().health.ok():
        return jsonify(ok=False), 503
    return jsonify(ok=True)


@bp.get("/api/status")
def api_status():
    """The status; with `?wait=VERSION`, once it differs from that version (the live
    page's bounded long-poll, appliance/page/live.py)."""
    page = here()
    known = request.args.get("wait", "")[:32]
    try:
        if known:
            status, waited = page.waiters.wait(page.status_cache.get, known, request.remote_addr or "")
        else:
            status, waited = page.status_cache.get(), False
    except ControlError as error:
        return api_error(f"dock not answering: {error}", 503)
    response = jsonify(status)
    response.headers["X-Status-Version"] = version_of(status)
    response.headers["X-Status-Wait"] = "yes" if waited else "no"
    return response


@bp.get("/api/clock")
def api_clock():
    """The `pendock clock --json` object: whether the dock's clock is known right, and why
    (a manager confirms it through the daemon's `clock_set` command)."""
    try:
        return jsonify(here().make_client("page clock").call("clock"))
    except ControlError as error:
        return api_error(f"dock not answering: {error}", 503)


@bp.get("/api/sessions")
def api_sessions():
    page = here()
    try:
        day = page.day_param()
    except web_view.BadParameter as error:
        return api_error(str(error), 400)
    return current_app.response_class(page.json_of(page.day_record(day)),
                                      mimetype=current_app.json.mimetype)
