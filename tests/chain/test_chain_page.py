"""The owner's page over a real PostgreSQL: nothing without the chain's login, the clinics
and docks with their lag, the weekly chart as SVG, overrides with their reason, a CSV of a
range, and the dock page's hardening headers (no inline script or style)."""
from __future__ import annotations

import csv
import io
import re
from datetime import date, datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.chain import store
from appliance.chain.page import add_user, create_chain_app
from appliance.fleet import events as ev
from appliance.page.guard import CSP
from tests.chain.test_chain_setup import pg  # noqa: F401  (the fixture)

KEY = Ed25519PrivateKey.generate()


def event(seq: int, kind: str, payload: dict, at: datetime, dock: str = "n-1") -> ev.Event:
    return ev.sign(ev.Event(dock, seq, kind, at.isoformat(), payload, ev.GENESIS), KEY)


@pytest.fixture
def page(pg):  # noqa: F811
    today = datetime.now(timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0)
    with store.connect(pg.url) as conn:
        store.create(conn)
        store.write(conn, [
            ("north", event(1, "session_opened", {"session": 1, "client_ref": "BK-1", "area": "face",
                                                  "pen_serial": 7, "cartridge_serial": 11}, today - timedelta(days=40))),
            ("north", event(2, "session_opened", {"session": 2, "client_ref": "BK-2", "area": "neck",
                                                  "pen_serial": 7, "cartridge_serial": 12}, today)),
            ("north", event(3, "override", {"code": "client_interval", "reason": "client travelling <b>"}, today)),
            ("north", event(4, "pen_registered", {"serial": 7, "strokes": 0, "motor_seconds": 36_000}, today)),
            ("north", event(5, "pen_counters", {"serial": 7, "strokes": 9, "motor_seconds": 144_000}, today)),
            # Room 2, blind to room 1 during a partition: the same client and area 3 days on.
            ("north", event(1, "session_opened", {"session": 1, "client_ref": "BK-2", "area": "neck",
                                                  "pen_serial": 8, "cartridge_serial": 13},
                            today + timedelta(days=3), dock="n-2")),
        ], {}, {})
    add_user(pg.url, "owner", "owner-password")
    return create_chain_app(pg.url, secret_key=b"k" * 32).test_client()


def log_in(client, password="owner-password"):
    form = client.get("/login").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
    return client.post("/login", data={"name": "owner", "password": password, "csrf": csrf})


def test_nothing_without_the_chain_s_login(page):
    assert page.get("/").status_code == 302 and page.get("/sessions.csv").status_code == 302
    assert log_in(page, "wrong-password").status_code == 401
    assert page.get("/").status_code == 302
    assert page.post("/login", data={"name": "owner", "password": "owner-password"}).status_code == 401  # no CSRF


def test_the_owner_sees_docks_the_chart_overrides_and_a_csv_of_a_range(page):
    assert log_in(page).status_code == 302
    reply = page.get("/")
    text = reply.get_data(as_text=True)
    assert reply.status_code == 200 and reply.headers["Content-Security-Policy"] == CSP
    assert "n-1" in text and "north" in text and "<svg" in text and "<rect" in text
    assert "client_interval" in text and "client travelling &lt;b&gt;" in text  # escaped, never markup
    assert "<script" not in text and "style=" not in text
    # Pen 7: 40 motor hours, 10 of them before it was registered (its last service): 30 of
    # the rules' 50 used, 20 to go.
    assert re.search(r"<td>7</td><td>north/n-1 [^<]*</td><td>20.0</td>", text), text
    assert re.search(r"<td>north</td><td>BK-2</td><td>neck</td><td>n-1 [^<]*</td><td>n-2 ", text)
    recent = (date.today() - timedelta(days=7)).isoformat()
    rows = list(csv.DictReader(io.StringIO(page.get(f"/sessions.csv?from={recent}").get_data(as_text=True))))
    assert [(r["dock_id"], r["client_ref"], r["area"]) for r in rows] == [("n-1", "BK-2", "neck"),
                                                                         ("n-2", "BK-2", "neck")]
    every = list(csv.DictReader(io.StringIO(page.get("/sessions.csv").get_data(as_text=True))))
    assert len(every) == 3
    assert page.get("/sessions.csv?from=yesterday").status_code == 400
