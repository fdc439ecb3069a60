"""The first-run form: offered while the record has no manager, sent to the daemon (which
checks the code), errors at their field, closed once a manager exists."""
from __future__ import annotations

from datetime import date

import pytest

from appliance.core.config import Config
from appliance.daemon.control import Refused
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web import records
from tests.web.conftest import csrf_of

GOOD = dict(code="ABCD-EFGH-JKLM", name="anna", password="a long password", password2="a long password",
            clinic_name="Hautpraxis Müller", clinic_phone="+49 30 1234567", timezone="Europe/Berlin",
            locale="de-DE")


class SetupDaemon:
    def __init__(self):
        self.sent: list[dict] = []
        self.refuse = ""

    def client(self, via):
        daemon = self

        class _Client:
            def call(self, cmd, **args):
                if cmd != "setup":
                    raise Refused(f"not in this test: {cmd}")
                daemon.sent.append(args)
                if daemon.refuse:
                    raise Refused(daemon.refuse)
                return {"manager": args["name"], "clinic_name": args["clinic_name"],
                        "clinic_phone": args["clinic_phone"], "timezone": args["timezone"], "locale": args["locale"]}

        return _Client()


@pytest.fixture
def daemon():
    return SetupDaemon()


@pytest.fixture
def empty_app(tmp_path, daemon):
    records.build_record(tmp_path, list(records.session_rows(date(2026, 11, 20), 1, 1)), users=False)
    store = Store.open(tmp_path, readonly=True)
    app = create_app(Config(), tmp_path, tmp_path / "control.sock", control=daemon.client, store=store,
                     secret_key="test-key", status_fresh_s=0)
    yield app
    store.close()


def post_setup(client, **values):
    token = csrf_of(client.get("/setup").get_data(as_text=True))
    return client.post("/setup", data=dict(GOOD, csrf=token, **values))


def test_the_login_page_offers_first_run_while_no_manager_exists(empty_app):
    html = empty_app.test_client().get("/login").get_data(as_text=True)
    assert "Set up this dock" in html and "Ask a manager for an account" not in html


def test_the_form_goes_to_the_daemon_with_a_hash_never_the_password(empty_app, daemon):
    client = empty_app.test_client()
    response = post_setup(client)
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    [sent] = daemon.sent
    assert sent["code"] == GOOD["code"] and sent["password_hash"].startswith("scrypt$")
    assert GOOD["password"] not in str(sent) and sent["timezone"] == "Europe/Berlin"
    shown = client.get("/login").get_data(as_text=True)  # now in the clinic's language, German
    assert "Dieses Dock ist für Hautpraxis Müller eingerichtet" in shown and '<html lang="de">' in shown


def test_errors_are_at_their_field(empty_app, daemon):
    response = post_setup(empty_app.test_client(), password2="another password", timezone="Mars/Olympus")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and not daemon.sent
    assert 'id="password2-error"' in html and 'id="timezone-error"' in html
    assert 'aria-describedby="password2-error" autofocus' in html


def test_a_wrong_code_is_the_daemons_refusal_at_the_code(empty_app, daemon):
    daemon.refuse = "the setup code is not right: `sudo pendock setup-code` on the dock shows it"
    response = post_setup(empty_app.test_client())
    assert response.status_code == 400 and 'id="code-error"' in response.get_data(as_text=True)


def test_closed_once_a_manager_exists(app):  # the page tests' record has a manager
    client = app.test_client()
    assert client.get("/setup").headers["Location"].endswith("/login")
    assert "Set up this dock" not in client.get("/login").get_data(as_text=True)
