"""The day's log for people: the live state, the timeline, the sessions of one day, an
aftercare card per session, and the day's CSV export."""
from __future__ import annotations

from datetime import timedelta

from flask import Blueprint, Response, render_template, request
from markupsafe import Markup

from appliance.core.dates import date_names, long_date
from appliance.page import clients, events, history, i18n
from appliance.page import view as web_view
from appliance.page.context import here
from appliance.page.i18n import N_
from appliance.page.replies import page_error, text_error
from appliance.record import lookups
from appliance.record.export import sessions_csv

bp = Blueprint("log", __name__)


NO_SCRIPT_REFRESH_S = 30  # without JavaScript the log reloads itself this often
EVENT_KIND_WORDS = {"hold": N_("Held"), "release": N_("Released"), "fault": N_("Fault"), "override": N_("Override"),
                    "forced_removal": N_("Forced out"), "clock": N_("Clock"), "technician": N_("Technician"),
                    "session": N_("Session"), "client": N_("Next client"), "login": N_("Login"), "dock": N_("Dock"),
                    "other": N_("Other")}


# The events list's filter, in the order offered ("" = every meaningful change, no logins).
EVENT_FILTER_WORDS = {"": N_("Every change (no logins)"), "hold": N_("Held and released"), "fault": N_("Faults"),
                      "override": N_("Overrides"), "forced_removal": N_("Forced out"), "session": N_("Sessions"),
                      "client": N_("Next client"), "clock": N_("Clock"), "technician": N_("Technician and dock"),
                      "login": N_("Logins (technician's view)")}


def day_events(found, day) -> list:
    """The day's events, read once per change of the record (the audit is in it too)."""
    page = here()
    tr = i18n.translator()
    return found.piece(f"events:{page.config.clinic.locale}", lambda _sessions: events.events(
        lookups.audit_on(page.record(), day, page.tz), page.tz, tr))


def rows_with_faults(found, day) -> tuple:
    """The day's rows, each with the faults that happened while its pen was out."""
    def make(sessions):
        faults = events.faults_by_session(sessions, day_events(found, day))
        tr, locale = i18n.translator(), here().config.clinic.locale
        return tuple(web_view.session_row(s, here().tz, faults.get(int(s["id"]), ()), tr, locale) for s in sessions)
    return found.piece("rows", make)


def day_html(found, template: str, day, is_today: bool, dated, kind: str = "",
             events_page: int = 1) -> Markup:
    """The day's sessions or events as HTML, rendered once per change of the record (many
    open pages, each reloading the log, would otherwise render hundreds of rows each time).
    `kind`: the events list's filter (appliance/page/events.py readable). The events newest
    first, history.EVENTS_ON_PAGE at a time (`?events=N`): none is cut."""
    kind = kind if kind in events.FILTERS else ""

    def make(_sessions):
        every = events.readable(day_events(found, day), kind, i18n.translator())
        pages = max(1, -(-len(every) // history.EVENTS_ON_PAGE))
        number = min(events_page, pages)
        newest_first = every[::-1]
        shown = newest_first[(number - 1) * history.EVENTS_ON_PAGE:number * history.EVENTS_ON_PAGE]
        return Markup(render_template(
            template, rows=rows_with_faults(found, day), events=every, events_shown=shown,
            events_page=number, events_pages=pages, day=day, is_today=is_today, long_date=dated,
            event_kind_words=EVENT_KIND_WORDS, event_filter=kind, event_filters=EVENT_FILTER_WORDS))
    return found.piece(f"{template}:{is_today}:{kind}:{events_page}", make)


def render_day(day_text: str | None, *, message: str = "", code: int = 200, form: dict | None = None,
               errors: dict | None = None):
    """The log page of one day (today when `day_text` is None), with a message to show
    (an action's refusal), the form as it was sent and its errors by field ("_focus": the
    field to focus)."""
    page = here()
    status = page.live_status()
    today = page.now_of(status).date()
    errors = dict(errors or {})
    try:
        day = web_view.parse_day(day_text, today)
    except web_view.BadParameter as error:
        day, message, code = today, str(error), 400
    lookup = None
    ref = (request.args.get("client") or "").strip() if request.method == "GET" else ""
    if ref:
        try:
            lookup = history.client_lookup(ref)
        except ValueError as error:
            errors.setdefault("client", str(error))
            errors.setdefault("_focus", "client")
            code = 400
    try:
        events_page = history.page_number(request.args.get("events"))
    except web_view.BadParameter as error:
        events_page, message, code = 1, str(error), 400
    found = page.day_record(day)
    locale = page.config.clinic.locale
    is_today = day == today
    dated = lambda value: long_date(value, locale)  # noqa: E731
    return render_template(
        "log.html",
        status=status,
        live=web_view.live_state(status, locale=locale, tr=i18n.translator()),
        js_words=i18n.js_words(i18n.translator()),
        date_names=date_names(locale),
        day=day,
        today=today,
        is_today=is_today,
        rows=rows_with_faults(found, day),
        rows_html=day_html(found, "_rows.html", day, is_today, dated),
        events_html=day_html(found, "_events.html", day, is_today, dated, request.args.get("kind") or "",
                             events_page),
        lookup=lookup,
        errors=errors,
        long_date=dated,
        course_words=clients.course_words,
        page_lang=i18n.language_of(locale),
        refresh_seconds=NO_SCRIPT_REFRESH_S,
        timeline=page.timeline_of(found, day, page.now_of(status), is_today),
        # A clinic's dock: the other rooms' sessions of the day, shared over the broker.
        other_rooms=web_view.room_rows(page.record().peer_sessions_on(day), page.tz, i18n.translator(), locale),
        last_session_id=((status or {}).get("last_session") or {}).get("id") or 0,
        prev_day=day - timedelta(days=1) if day > web_view.FIRST_DAY else None,
        first_day=web_view.FIRST_DAY,
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
    if not found.get("client_ref"):
        tr = i18n.translator()
        return page_error(tr("Session {id} had no client named (the pen was out, nobody was treated), "
                             "so it has no aftercare card.").format(id=session_id), 404)
    clinic = here().config.clinic
    return render_template("aftercare.html", card=web_view.aftercare(found, here().tz, clinic),
                           page_lang=i18n.language_of(clinic.locale),
                           care_days=web_view.AFTERCARE_DAYS, redness_hours=web_view.REDNESS_HOURS)


@bp.get("/export.csv")
def export_csv():
    page = here()
    if request.args.get("from") or request.args.get("to"):
        return export_range()
    try:
        day = page.day_param()
    except web_view.BadParameter as error:
        return text_error(str(error), 400)
    body = page.day_record(day).piece("csv", sessions_csv)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename=pendock-{day.isoformat()}.csv"})


def export_range():
    """`/export.csv?from=YYYY-MM-DD&to=YYYY-MM-DD`: the manager's export (page/export.py)."""
    from appliance.page import export
    from appliance.record import lookups

    page = here()
    today = page.now_of(page.live_status()).date()
    try:
        first = web_view.parse_day(request.args.get("from") or request.args.get("to"), today)
        last = web_view.parse_day(request.args.get("to") or request.args.get("from"), today)
    except web_view.BadParameter as error:
        return text_error(f"{error} (the export wants ?from=YYYY-MM-DD&to=YYYY-MM-DD)", 400)
    if first > last:
        return text_error(f"from {first.isoformat()} is after to {last.isoformat()}: swap them", 400)
    days = (last - first).days + 1
    if days > export.MAX_DAYS:
        return text_error(f"{days} days asked for; one file holds at most {export.MAX_DAYS}: "
                          f"export the range in parts", 400)
    store, tz = page.record(), page.tz
    sessions, entries = [], []
    for n in range(days):
        day = first + timedelta(days=n)
        sessions += [{**s, "dock_id": None} for s in store.sessions_on(day)] + store.peer_sessions_on(day)
        entries += lookups.audit_on(store, day, tz)
    # Therapists and overrides are named before a session begins, perhaps the day before.
    entries = lookups.audit_on(store, first - timedelta(days=1), tz) + entries
    sessions.sort(key=lambda s: (s.get("started_at") or "", s.get("dock_id") or ""))
    tr = i18n.translator()
    body = export.manager_csv(sessions, entries, tz, page.config.fleet.dock_id or tr("this dock"), tr)
    return Response(body, mimetype="text/csv", headers={
        "Content-Disposition": f"attachment; filename=pendock-{first.isoformat()}-to-{last.isoformat()}.csv"})
