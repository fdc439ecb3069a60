"""What happened and to whom: `GET /api/events?date=` (the day's audit trail as events)
and `GET /api/clients/REF` (one client's history per area). Read-only, like the page."""
from __future__ import annotations

from flask import Blueprint, jsonify

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


@bp.get("/api/events")
def api_events():
    try:
        day = here().day_param()
    except web_view.BadParameter as error:
        return api_error(str(error), 400)
    return jsonify([e.contract() for e in day_events(day)])


@bp.get("/api/clients/<ref>")
def api_client(ref: str):
    try:
        return jsonify(client_lookup(ref))
    except ValueError as error:
        return api_error(str(error), 400)
