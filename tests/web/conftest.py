"""Page tests: the real app on a real (read-only) record, with a fake daemon."""
from __future__ import annotations

import copy
import re
from datetime import date, datetime, timezone

import pytest

from appliance.core.config import Config
from appliance.core.model import Decision, NextClient, PenReading
from appliance.daemon.control import BadRequest, DaemonUnavailable, Refused
from appliance.daemon.status import present_status
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web import records

TODAY = date(2026, 11, 28)

# The dock's state the fake daemon presents: a docked pen with no cartridge, held. Its
# status is built by the daemon's own presenter, so it has the real status's shape.
STATE = dict(
    docked=True, released=False, decision=Decision(locks=("no_cartridge",)),
    reading=PenReading(pen_serial=records.PEN, firmware="1.4", strokes=1, motor_seconds=1,
                       cartridge_serial=0, cartridge_strokes=0, max_depth_mm=0.0, battery_mv=4050,
                       temperature_c=24.5),
    next_client=None, clock_synced=True, storage_ok=True, light="red",
    now=datetime(2026, 11, 28, 9, 0, tzinfo=timezone.utc), tz=timezone.utc, pin_factory="MockFactory",
)


class FakeDaemon:
    """Records every call; answers like the daemon, or fails as told."""

    def __init__(self):
        self.calls: list[tuple[str, str, dict]] = []
        self.state = dict(STATE)
        self.status = present_status(**self.state)
        self.down = False
        self.refuse: str | None = None

    def set(self, **values) -> None:
        """Change the dock's state (present_status's arguments); the status follows."""
        self.state.update(values)
        self.status = present_status(**self.state)

    def client(self, via: str):
        daemon = self

        class _Client:
            def call(self, cmd, **args):
                daemon.calls.append((via, cmd, args))
                if daemon.down:
                    raise DaemonUnavailable("no daemon answers (test)")
                if cmd == "status":
                    return copy.deepcopy(daemon.status)
                if cmd == "login":
                    return {"recorded": True}
                if daemon.refuse:
                    raise Refused(daemon.refuse)
                if cmd == "next_client":
                    if not args.get("ref"):
                        raise BadRequest("empty ref")
                    daemon.set(next_client=NextClient(args["ref"], args["area"],
                                                      frozenset(args["checklist"])))
                    return copy.deepcopy(daemon.status)
                if cmd == "override":
                    return copy.deepcopy(daemon.status)
                raise BadRequest(f"unknown command {cmd!r}")

        return _Client()

    def commands(self, name: str) -> list[tuple[str, dict]]:
        return [(via, args) for via, cmd, args in self.calls if cmd == name]


@pytest.fixture(scope="session")
def record_dir(tmp_path_factory):
    data = tmp_path_factory.mktemp("record")
    rows = list(records.session_rows(date(2026, 11, 20), 9, 6))
    records.build_record(data, rows)
    return data


@pytest.fixture
def daemon():
    return FakeDaemon()


@pytest.fixture
def app(record_dir, daemon):
    store = Store.open(record_dir, readonly=True)
    app = create_app(Config(), record_dir, record_dir / "control.sock", control=daemon.client,
                     store=store, secret_key="test-key", status_fresh_s=0, health_fresh_s=0)
    yield app
    store.close()


@pytest.fixture
def client(app):
    return app.test_client()


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, "no CSRF field in the form"
    return found.group(1)


def log_in(client, name="thera", password=records.PASSWORD):
    token = csrf_of(client.get("/login").get_data(as_text=True))
    return client.post("/login", data={"csrf": token, "name": name, "password": password, "next": "/"})


@pytest.fixture
def therapist(client):
    assert log_in(client).status_code == 302
    return client


@pytest.fixture
def manager(app):
    c = app.test_client()
    assert log_in(c, "boss").status_code == 302
    return c
