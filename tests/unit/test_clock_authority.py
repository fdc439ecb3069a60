"""S7: who may set the clock over the control socket, as the daemon itself checks it.

A technician (root, the daemon's user, pendock-tech) may; a manager may, with their own
password, which the page passes on and the daemon checks against the record; the page
process on its own authority (the daemon's group) may not (README "The clock").
"""
from __future__ import annotations

from datetime import datetime, timedelta

from appliance.daemon.control import Peer
from appliance.record.passwords import password_hash

PAGE = Peer(uid=4242, gid=4242, pid=1, user="pendock-web", technician=False, via="page")


def minute_ahead(sim, minutes: int) -> str:
    now = datetime.fromisoformat(sim.status()["now"])
    return (now + timedelta(minutes=minutes)).strftime("%Y-%m-%dT%H:%M")


def set_clock(sim, peer: Peer, **args) -> dict:
    sim.call("sim.clock", synced=False)  # no NTP: a person's time is the one to take
    return sim.running.server.dispatch({"cmd": "clock_set", "args": args}, peer)


def test_the_page_on_its_own_authority_may_not_set_the_clock(sim):
    before = sim.call("clock")["now"]
    answer = set_clock(sim, PAGE, at=minute_ahead(sim, 600), reason="the page says so")
    assert answer["ok"] is False and answer["error"] == "denied"
    assert "manager" in answer["message"] and "technician" in answer["message"]
    assert abs(datetime.fromisoformat(sim.call("clock")["now"]) - datetime.fromisoformat(before)) < timedelta(minutes=5)
    assert "clock_set" not in sim.audit_actions()


def test_a_manager_with_their_password_may_and_is_named_in_the_trail(sim):
    sim.store.add_user("maria", "manager", password_hash("correct horse"), datetime.now().astimezone())
    sim.store.add_user("theo", "therapist", password_hash("therapist pw"), datetime.now().astimezone())
    wrong = set_clock(sim, PAGE, at=minute_ahead(sim, 60), reason="checked the phone",
                      manager="maria", password="wrong")
    assert wrong["ok"] is False and wrong["error"] == "denied"
    therapist = set_clock(sim, PAGE, at=minute_ahead(sim, 60), reason="checked the phone",
                          manager="theo", password="therapist pw")
    assert therapist["ok"] is False and therapist["error"] == "denied"
    answer = set_clock(sim, PAGE, at=minute_ahead(sim, 60), reason="checked the phone",
                       manager="maria", password="correct horse")
    assert answer["ok"] is True, answer
    entry = next(e for e in sim.store.audit_entries(limit=50) if e.action == "clock_set")
    assert entry.actor.startswith("maria (manager")


def test_a_technician_may(sim):
    tech = Peer(uid=0, gid=0, pid=1, user="root", technician=True, via="ssh 10.0.0.9")
    answer = set_clock(sim, tech, at=minute_ahead(sim, 60), reason="checked the phone")
    assert answer["ok"] is True, answer
