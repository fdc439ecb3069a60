"""S7 on the page: the therapist's band says in words what to do about the clock and who
can do it, never a shell command; a manager confirms the clock from the page, through the
daemon's own `clock_set` (the same audited act as `pendock clock set`, with a reason and
the manager's password, which the daemon checks)."""
from __future__ import annotations

import pytest

from appliance.daemon.control import Denied
from appliance.daemon.status import present_reason
from tests.web import records
from tests.web.conftest import FakeDaemon, csrf_of


class ClockDaemon(FakeDaemon):
    """Answers `clock_set` as the daemon does: a manager's password or nothing."""

    def client(self, via: str):
        inner, daemon = super().client(via), self

        class _Client:
            def call(self, cmd, **args):
                if cmd == "clock_set":
                    daemon.calls.append((via, cmd, args))
                    if args.get("password") != records.PASSWORD:
                        raise Denied("the clock was not set: 'boss' is not a manager with that password")
                    return {"now": args["at"] + ":00+00:00", "known_right": True, "why": "person"}
                return inner.call(cmd, **args)

        return _Client()


@pytest.fixture
def daemon():
    return ClockDaemon()


def clock_held(daemon) -> None:
    reason = {**present_reason("clock_unsynced", "lock"), "detail": {}, "detail_words": ""}
    daemon.status.update(held=True, locks=["clock_unsynced"], reasons=[reason], clock_synced=False)


def test_the_therapist_reads_words_and_who_can_act_never_a_command(therapist, daemon):
    clock_held(daemon)
    html = therapist.get("/").get_data(as_text=True)
    assert "pendock" not in html.lower().replace("pendock-", "").replace("pen-dock", "")
    assert "a manager" in html and 'id="clock-form"' not in html
    response = therapist.post("/clock", data={"csrf": csrf_of(html), "at": "2026-11-28T09:30",
                                              "clock_reason": "checked my phone", "password": "x"})
    assert response.status_code == 403 and not daemon.commands("clock_set")


def test_a_manager_confirms_the_clock_with_a_reason_and_their_password(manager, daemon):
    clock_held(daemon)
    html = manager.get("/").get_data(as_text=True)
    assert 'id="clock-form"' in html
    response = manager.post("/clock", data={"csrf": csrf_of(html), "at": "2026-11-28T09:30",
                                            "clock_reason": "checked against the phone",
                                            "password": records.PASSWORD})
    assert response.status_code == 302
    (via, args), = daemon.commands("clock_set")
    assert args == {"at": "2026-11-28T09:30", "reason": "checked against the phone", "manager": "boss",
                    "password": records.PASSWORD}
    assert "clock was set to 2026-11-28 09:30" in manager.get("/").get_data(as_text=True)


def test_a_wrong_password_or_bad_input_sets_nothing_and_says_why(manager, daemon):
    html = manager.get("/").get_data(as_text=True)
    token = csrf_of(html)
    wrong = manager.post("/clock", data={"csrf": token, "at": "2026-11-28T09:30",
                                         "clock_reason": "checked against the phone", "password": "nope"})
    assert wrong.status_code == 403 and "not a manager with that password" in wrong.get_data(as_text=True)
    for form, field in (({"at": "tomorrow", "clock_reason": "checked it", "password": "x"}, "at"),
                        ({"at": "2026-11-28T09:30", "clock_reason": "", "password": "x"}, "clock_reason"),
                        ({"at": "2026-11-28T09:30", "clock_reason": "checked it", "password": ""}, "password")):
        response = manager.post("/clock", data={"csrf": token, **form})
        assert response.status_code == 400 and f'id="{field}-error"' in response.get_data(as_text=True)
    assert len(daemon.commands("clock_set")) == 1  # only the wrong password reached the daemon
