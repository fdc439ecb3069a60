"""What happened and to whom: `GET /api/events?date=` (the day's audit trail as events)
and `GET /api/clients/REF` (one client's history per area). Read-only, like the page."""
from __future__ import annotations

from flask import Blueprint, jsonify, request

from appliance.core import rules
from appliance.page import clients, events
from appliance.page import view as web_view
from appliance.page.context import here
from appliance.page.replies import api_error
from appliance.record import lookups

bp = Blueprint("history", __name__)


def day_events(day) -> list[events.Event]:
    page = here()
    return events.events(lookups.audit_on(page.record(), day, page.tz), page.tz)


def client_lookup(ref: str) -> dict:
    """Raises ValueError (with what to type instead) for a reference that cannot be one."""
    page = here()
    ref = rules.validate_client_ref(ref)
    now = page.now_of(page.live_status())
    return clients.client_history(ref, lookups.client_sessions(page.record(), ref), page.config, now, page.tz)


EVENTS_PER_PAGE = 1000  # /api/events?page=N, and the page's list (log.py) in pages of EVENTS_ON_PAGE
EVENTS_ON_PAGE = 200


def page_number(text: str | None) -> int:
    """A 1-based page number from the query (raises BadParameter)."""
    if text is None or text == "":
        return 1
    if not text.isdigit() or not 1 <= int(text) <= 10**6:
        raise web_view.BadParameter(f"page={text[:20]!r}: a page is a whole number from 1 (e.g. page=2)")
    return int(text)


@bp.get("/api/events")
def api_events():
    """The whole day's events, oldest first; with `?page=N` the Nth thousand of them, and
    X-Events-Total / X-Events-Pages to page on with."""
    try:
        day = here().day_param()
        wanted = request.args.get("page")
        number = page_number(wanted)
    except web_view.BadParameter as error:
        return api_error(str(error), 400)
    found = day_events(day)
    shown = found if wanted is None else found[(number - 1) * EVENTS_PER_PAGE:number * EVENTS_PER_PAGE]
    response = jsonify([e.contract() for e in shown])
    response.headers["X-Events-Total"] = str(len(found))
    response.headers["X-Events-Pages"] = str(max(1, -(-len(found) // EVENTS_PER_PAGE)))
    return response


@bp.get("/api/clients/<ref>")
def api_client(ref: str):
    try:
        return jsonify(client_lookup(ref))
    except ValueError as error:
        return api_error(str(error), 400)
