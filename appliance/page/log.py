"""The day's log for people: the live state, the timeline, the sessions of one day, an
aftercare card per session, and the day's CSV export."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, render_template, request

from appliance.page import view as web_view
from appliance.page.context import here
from appliance.page.replies import page_error, text_error
from appliance.record.export import sessions_csv

bp = Blueprint("log", __name__)


def render_day(day_text: str | None, *, message: str = "", code: int = 200, form: dict | None = None):
    """The log page of one day (today when `day_text` is None), with a message to show
    (an action's refusal) and the form as it was sent."""
    page = here()
    status = page.live_status()
    today = page.now_of(status).date()
    try:
        day = web_view.parse_day(day_text, today)
    except web_view.BadParameter as error:
        day, message, code = today, str(error), 400
    found = page.day_record(day)
    return render_template(
        "log.html",
        status=status,
        live=web_view.live_state(status),
        day=day,
        today=today,
        is_today=day == today,
        rows=page.rows_of(found),
        timeline=page.timeline_of(found, day, page.now_of(status)),
        last_session_id=((status or {}).get("last_session") or {}).get("id") or 0,
        prev_day=day - timedelta(days=1) if day > web_view.FIRST_DAY else None,
        next_day=day + timedelta(days=1) if day < min(today, web_view.LAST_DAY) else None,
        message=message,
        form=form or {},
    ), code


@bp.get("/")
def index():
    return render_day(request.args.get("date"))


@bp.get("/sessions/<int:session_id>/aftercare")
def aftercare(session_id: int):
    found = here().record().session(session_id) if session_id < 2**63 else None
    if found is None:
        return page_error(f"There is no session {session_id} in the record.", 404)
    return render_template("aftercare.html", card=web_view.aftercare(found, here().tz))


@bp.get("/export.csv")
def export_csv():
    page = here()
    try:
        day = page.day_param()
    except web_view.BadParameter as error:
        return text_error(str(error), 400)
    body = page.day_record(day).piece("csv", sessions_csv)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename=pendock-{day.isoformat()}.csv"})
