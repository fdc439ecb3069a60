"""`/setup`: the first-run form (first manager, clinic name and phone, time zone, language),
open only while the record has no manager, and only with the one-time setup code the
installer printed (`pendock setup-code` shows it again over SSH).

The page checks the form for errors a person can fix at the field, then sends it to the
daemon (`setup`), which checks the code and that no manager exists, and writes the
manager and the settings (appliance/daemon/first_run.py): the page never decides it.
"""
from __future__ import annotations

from dataclasses import replace
from zoneinfo import available_timezones

from flask import Blueprint, flash, redirect, render_template, request, session, url_for

from appliance.core import first_run, inputs
from appliance.daemon.control import ControlError, DaemonUnavailable
from appliance.page import auth, i18n
from appliance.page.context import here
from appliance.page.i18n import N_
from appliance.record.passwords import password_hash

bp = Blueprint("setup", __name__)
MIN_PASSWORD = 8  # as `pendock user add` asks
COMMON_ZONES = ("Europe/Berlin", "Europe/Vienna", "Europe/Zurich", "Europe/London", "Europe/Paris",
                "Europe/Amsterdam", "Europe/Madrid", "Europe/Rome", "America/New_York", "UTC")
FIELDS = ("code", "name", "clinic_name", "clinic_phone", "timezone", "locale")


def first_run_open() -> bool:
    """No manager in the record yet: the login page offers the setup form."""
    try:
        return not any(u["role"] == "manager" for u in here().record().users())
    except Exception:  # no record yet, or unreadable: the daemon decides at `setup`
        return False


@bp.app_context_processor
def offer_first_run() -> dict:
    return {"first_run_open": first_run_open}


def _form_errors(form: dict, password: str, again: str) -> dict:
    errors = {}
    if not form["code"]:
        errors["code"] = N_("Enter the setup code: the installer printed it; `sudo pendock setup-code` shows it.")
    if not inputs.valid_user_name(form["name"]):
        errors["name"] = N_("A user name of letters, digits, '-', '_' or '.' (up to 32), e.g. anna.")
    if len(password) < MIN_PASSWORD or len(password) > auth.MAX_PASSWORD:
        errors["password"] = N_("A password of at least 8 characters.")  # MIN_PASSWORD
    elif password != again:
        errors["password2"] = N_("The two passwords differ: type the same password twice.")
    if not form["clinic_name"]:
        errors["clinic_name"] = N_("The clinic's name, as the aftercare card shows it.")
    if form["timezone"] not in available_timezones():
        errors["timezone"] = N_("A time zone from the list, e.g. Europe/Berlin.")
    if form["locale"] not in first_run.LANGUAGES:
        errors["locale"] = N_("Choose one of the languages in the list.")
    return errors


def _show(form: dict, errors: dict, message: str = "", code: int = 200):
    first = next((f for f in ("code", "name", "password", "password2", "clinic_name", "timezone", "locale")
                  if f in errors), "")
    return render_template("setup.html", form=form, errors=dict(errors, _focus=first), message=message,
                           languages=first_run.LANGUAGES, zones=sorted(available_timezones()),
                           common_zones=COMMON_ZONES), code


@bp.route("/setup", methods=["GET", "POST"])
def setup():
    if not first_run_open():
        tr = i18n.translator()
        flash(tr("First run is closed: this dock has a manager. Log in."))
        return redirect(url_for("login.login"))
    if request.method == "GET":
        return _show({"timezone": "Europe/Berlin", "locale": "en-GB"}, {})
    if not auth.csrf_ok(session.get("csrf"), request.form.get("csrf")):
        return _show({}, {}, N_("The form was out of date; please fill it in again."), 400)
    form = {key: (request.form.get(key) or "").strip()[:80] for key in FIELDS}
    password, again = request.form.get("password") or "", request.form.get("password2") or ""
    errors = _form_errors(form, password, again)
    if errors:
        return _show(form, errors, N_("Please correct the fields marked below."), 400)
    page = here()
    try:
        done = page.make_client("page setup").call(
            "setup", code=form["code"], name=form["name"], password_hash=password_hash(password),
            clinic_name=form["clinic_name"], clinic_phone=form["clinic_phone"], timezone=form["timezone"],
            locale=form["locale"])
    except DaemonUnavailable:
        return _show(form, {}, "The dock is not answering, so nothing was set up. Wait a minute and try again; "
                               "if it lasts, restart the dock.", 503)
    except ControlError as error:
        field = "code" if "setup code" in str(error) else ""
        return _show(form, {field: f"The dock refused: {error}."} if field else {},
                     f"The dock refused: {error}.", 400)
    config = page.config
    page.config = replace(config, clinic=replace(config.clinic, name=done["clinic_name"], phone=done["clinic_phone"],
                                                 locale=done["locale"]),
                          dock=replace(config.dock, timezone=done["timezone"]))
    page.tz = page.config.tz
    tr = i18n.translator()
    flash(tr("This dock is set up for {clinic}. Log in as {manager}, then add the therapists' "
             "accounts (`pendock user add NAME --role therapist` over SSH).").format(
        clinic=done["clinic_name"], manager=done["manager"]))
    return redirect(url_for("login.login"))
