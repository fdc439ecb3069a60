"""GET /api/clock: the daemon's `clock` object for the page (login or token, like /api/)."""
from __future__ import annotations

import pytest

from tests.web.conftest import FakeDaemon

CLOCK = {"now": "2026-11-28T09:30:00+00:00", "known_right": False, "why": "unknown",
         "behind_record": True, "jumped": False, "last_known_right": None}


class ClockDaemon(FakeDaemon):
    def client(self, via: str):
        inner, daemon = super().client(via), self

        class _Client:
            def call(self, cmd, **args):
                if cmd == "clock" and not daemon.down:
                    daemon.calls.append((via, cmd, args))
                    return dict(CLOCK)
                return inner.call(cmd, **args)

        return _Client()


@pytest.fixture
def daemon():
    return ClockDaemon()


def test_the_clock_object_for_a_logged_in_user(therapist, daemon):
    response = therapist.get("/api/clock")
    assert response.status_code == 200 and response.get_json() == CLOCK
    assert daemon.commands("clock")


def test_no_login_no_clock(client):
    assert client.get("/api/clock").status_code == 401


def test_a_silent_daemon_is_503(therapist, daemon):
    daemon.down = True
    response = therapist.get("/api/clock")
    assert response.status_code == 503 and "not answering" in response.get_data(as_text=True)
