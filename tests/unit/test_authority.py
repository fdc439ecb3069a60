"""Authority at the daemon (README, "Who may override, from where"): an override carries
the manager who gave it, checked by the daemon whoever asks; a technician's account alone
can neither override a clinical lock nor make a manager."""
from __future__ import annotations

import io
import json

import pytest

from appliance import cli
from appliance.core import inputs
from appliance.daemon import authority
from appliance.daemon.control import Peer
from appliance.record.passwords import password_hash
from tests.support.inprocess import CHECKLIST

PASSWORD = "correct horse battery"
TECHNICIAN = Peer(uid=4242, gid=4242, pid=1, user="tech", technician=True, via="ssh 10.0.0.9")
PAGE = Peer(uid=4343, gid=4343, pid=2, user="pendock-web", technician=False, via="page user boss")
REASON = "dermatologist agreed in writing"


@pytest.fixture
def held(sim):
    """BK-1/face treated today and named again: held by client_interval; a manager
    `boss` and a therapist `thera` on the record."""
    for name, role in (("boss", "manager"), ("thera", "therapist")):
        sim.store.add_user(name, role, password_hash(PASSWORD, n=2**10), sim.clock.now())
    sim.session_cycle("BK-1")
    assert "client_interval" in sim.ready_for_client("BK-1")["locks"]
    return sim


def ask(sim, peer: Peer, cmd: str, **args) -> dict:
    """One request as `peer` sends it (the kernel's word for who is on the socket)."""
    return sim.running.server.dispatch({"cmd": cmd, "args": args}, peer)


def overrides_on_record(sim) -> list[dict]:
    return [e.detail for e in sim.store.audit_entries(limit=1000) if e.action == "override"]


def test_a_technicians_account_cannot_override_without_a_managers_password(held):
    """Finding 4: over the socket, any member of its groups could override."""
    for args in ({}, {"manager": "boss"}, {"manager": "boss", "manager_password": "guess-guess"},
                 {"manager": "thera", "manager_password": PASSWORD}):
        reply = ask(held, TECHNICIAN, "override", code="client_interval", reason=REASON, **args)
        assert not reply["ok"] and reply["error"] == "denied", (args, reply)
        assert "client_interval" in held.status()["locks"]
    assert overrides_on_record(held) == []
    reply = ask(held, TECHNICIAN, "override", code="client_interval", reason=REASON,
                manager="boss", manager_password=PASSWORD)
    assert reply["ok"] and not reply["result"]["held"]
    [given] = overrides_on_record(held)
    assert (given["manager"], given["client"], given["area"]) == ("boss", "BK-1", "face")


def test_the_page_passes_its_logged_in_manager_and_the_daemon_checks_the_role(held):
    for args in ({}, {"manager": "thera"}, {"manager": "nobody"}):
        reply = ask(held, PAGE, "override", code="client_interval", reason=REASON, **args)
        assert not reply["ok"] and reply["error"] == "denied", (args, reply)
    reply = ask(held, PAGE, "override", code="client_interval", reason=REASON, manager="boss")
    assert reply["ok"] and overrides_on_record(held)[0]["manager"] == "boss"


def test_the_cli_asks_for_the_managers_name_and_password(held, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PENDOCK_SOCKET", str(held.client.path))
    monkeypatch.setenv("PENDOCK_DATA", str(tmp_path / "data"))
    monkeypatch.setattr("sys.stdin", io.StringIO("boss\nwrong password\n"))
    assert cli.main(["override", "client_interval", "--reason", REASON]) == 2
    assert "name and password" in capsys.readouterr().err and held.status()["held"]
    monkeypatch.setattr("sys.stdin", io.StringIO(f"{PASSWORD}\n"))
    assert cli.main(["override", "client_interval", "--reason", REASON, "--manager", "boss", "--json"]) == 0
    assert not json.loads(capsys.readouterr().out)["held"]


def test_a_technician_cannot_make_a_manager_or_take_over_ones_password(held):
    new_hash = password_hash("a new password", n=2**10)
    for cmd, args in (("user_add", {"name": "me", "role": "manager"}), ("user_passwd", {"name": "boss"})):
        reply = ask(held, TECHNICIAN, cmd, password_hash=new_hash, **args)
        assert not reply["ok"] and reply["error"] == "denied", (cmd, reply)
        reply = ask(held, TECHNICIAN, cmd, password_hash=new_hash, manager="boss",
                    manager_password="guess-guess", **args)
        assert not reply["ok"] and reply["error"] == "denied", (cmd, reply)
    assert held.store.user("me") is None
    assert ask(held, TECHNICIAN, "user_add", name="t2", role="therapist", password_hash=new_hash)["ok"]
    assert ask(held, TECHNICIAN, "user_add", name="me", role="manager", password_hash=new_hash,
               manager="boss", manager_password=PASSWORD)["ok"]


def test_the_first_manager_of_a_new_dock_needs_no_other(sim):
    reply = ask(sim, TECHNICIAN, "user_add", name="first", role="manager",
                password_hash=password_hash(PASSWORD, n=2**10))
    assert reply["ok"]


def test_one_role_table():
    assert set(inputs.ROLE_ACTS) == set(inputs.ROLES)
    assert inputs.role_may("manager", "override") and not inputs.role_may("therapist", "override")
    assert not inputs.role_may("token", "name_client") and not inputs.role_may(None, "override")


def test_naming_a_client_stays_open_to_the_clinic(held):
    reply = ask(held, PAGE, "next_client", ref="BK-2", area="face", checklist=CHECKLIST)
    assert reply["ok"]


def test_the_page_sends_the_manager_it_logged_in(page, sim):
    """The real page on the real daemon: the override on record names its manager."""
    sim.session_cycle("BK-1")
    sim.ready_for_client("BK-1")
    token = page.get("/").get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    page.post("/override", data={"csrf": token, "code": "client_interval", "reason": REASON})
    assert not sim.status()["held"]
    [given] = overrides_on_record(sim)
    assert given["manager"] == "boss"


def test_the_cli_makes_a_second_manager_with_a_managers_consent(held, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PENDOCK_SOCKET", str(held.client.path))
    monkeypatch.setenv("PENDOCK_DATA", str(tmp_path / "data"))
    monkeypatch.setattr("sys.stdin", io.StringIO("a new password\n"))
    assert cli.main(["user", "add", "ana", "--role", "manager"]) == 2
    assert "--manager NAME" in capsys.readouterr().err and held.store.user("ana") is None
    monkeypatch.setattr("sys.stdin", io.StringIO(f"a new password\n{PASSWORD}\n"))
    assert cli.main(["user", "add", "ana", "--role", "manager", "--manager", "boss"]) == 0
    assert held.store.user("ana")["role"] == "manager"


def test_wrong_manager_passwords_are_capped_per_name(held, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(authority, "GUESSES", authority.GuessLimit(clock=lambda: now[0]))
    for n in range(authority.MAX_GUESSES):
        reply = ask(held, TECHNICIAN, "override", code="client_interval", reason=REASON,
                    manager="boss", manager_password=f"guess number {n}")
        assert reply["error"] == "denied" and "name and password" in reply["message"]
    reply = ask(held, TECHNICIAN, "override", code="client_interval", reason=REASON,
                manager="boss", manager_password=PASSWORD)
    assert reply["error"] == "denied" and "wrong passwords" in reply["message"]  # even the right one
    assert ask(held, PAGE, "override", code="client_interval", reason=REASON, manager="boss")["ok"]
    now[0] += authority.GUESS_WINDOW_S
    held.call("next_client", ref="BK-2", area="face", checklist=CHECKLIST)  # the override dropped
    held.call("next_client", ref="BK-1", area="face", checklist=CHECKLIST)
    reply = ask(held, TECHNICIAN, "override", code="client_interval", reason=REASON,
                manager="boss", manager_password=PASSWORD)
    assert reply["ok"], reply


def test_the_days_events_name_the_manager_who_overrode(held):
    from appliance.page import events

    ask(held, TECHNICIAN, "override", code="client_interval", reason=REASON, manager="boss",
        manager_password=PASSWORD)
    [entry] = [e for e in held.store.audit_entries(limit=100) if e.action == "override"]
    event = events.event_of(entry.action, entry.detail, entry.actor, entry.at, held.config.tz)
    assert event.words.startswith("Manager boss overrode") and event.actor.startswith("tech")
