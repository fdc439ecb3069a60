"""Clear a wrongly named next client: the daemon forgets the name (and any override given
for it) and holds the pen until the right client is named."""
from __future__ import annotations

from flask import Blueprint, abort, flash, g, redirect, url_for

from appliance.daemon.control import ControlError
from appliance.page.context import here
from appliance.page.log import render_day
from appliance.page.replies import control_code, control_words

bp = Blueprint("clear", __name__)


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
