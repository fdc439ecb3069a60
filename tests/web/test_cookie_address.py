"""S8: a login cookie copied off one device is no login on another. A manager's session
works from the address it logged in from and nowhere else (override form included), and
the copy does not end it for its owner."""
from __future__ import annotations

from tests.web.conftest import csrf_of, log_in

TABLET = {"REMOTE_ADDR": "192.0.2.10"}
STRANGER = {"REMOTE_ADDR": "192.0.2.66"}


def test_a_managers_cookie_taken_to_another_address_is_no_login(app):
    tablet = app.test_client()
    tablet.environ_base.update(TABLET)
    assert log_in(tablet, "boss").status_code == 302
    page = tablet.get("/")
    assert page.status_code == 200 and "override-card" in page.get_data(as_text=True)
    cookie = tablet.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None

    thief = app.test_client()
    thief.environ_base.update(STRANGER)
    thief.set_cookie(cookie.key, cookie.value)
    stolen = thief.get("/")
    assert stolen.status_code == 302 and "/login" in stolen.headers["Location"]
    assert thief.get("/api/status").status_code == 401
    override = thief.post("/override", data={"csrf": csrf_of(page.get_data(as_text=True)),
                                             "code": "client_interval", "reason": "stolen cookie"})
    assert override.status_code == 302 and "/login" in override.headers["Location"]

    again = tablet.get("/")  # the owner's tablet is still logged in
    assert again.status_code == 200 and "override-card" in again.get_data(as_text=True)
