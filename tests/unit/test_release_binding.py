"""The moment of release (README, "The release binds its decision"): a session is recorded
only for the client, area, pen and cartridge the releasing decision checked; naming
another client re-holds the latch first; naming one while the pen is out changes nothing;
an override belongs to its client and area; a decision that could not be committed never
moves the latch."""
from __future__ import annotations

import json
import threading
import time

import pytest

from appliance import cli
from appliance.daemon.control import ControlError, Refused
from appliance.record.store import StorageError
from tests.support.inprocess import CHECKLIST

DELAYS_MS = range(-20, 65, 5)  # the rename sent this long after (or, negative, before) the lift


def released_for(sim, ref: str) -> dict:
    status = sim.ready_for_client(ref)
    assert not status["held"], status["locks"]
    return status


def client_in_interval(sim, ref="BK-1", area="face") -> None:
    """`ref`/`area` was treated today, so naming it holds the pen (client_interval)."""
    if not sim.status()["docked"]:
        sim.call("sim.dock")
    sim.call("sim.cartridge")
    assert not sim.call("next_client", ref=ref, area=area, checklist=CHECKLIST)["held"]
    sim.call("sim.undock")
    sim.call("sim.needle", minutes=10)
    sim.call("sim.dock")


def session_refs(sim) -> list[str]:
    return [r[0] for r in sim.store._read("SELECT client_ref FROM sessions ORDER BY id")]


def _attempt(results: dict, key: str, delay_ms: int, call) -> None:
    time.sleep(max(0, delay_ms) / 1000)
    try:
        results[key] = call()
    except ControlError as error:
        results[key] = error


def race(sim, delay_ms: int) -> dict:
    """`sim.undock` and `next_client BK-1` from two connections, the rename `delay_ms`
    after the lift (before it, when negative); what each answered."""
    results: dict[str, object] = {}
    threads = [
        threading.Thread(target=_attempt, args=(results, "lift", -delay_ms, lambda: sim.call("sim.undock"))),
        threading.Thread(target=_attempt, args=(results, "rename", delay_ms, lambda: sim.call(
            "next_client", ref="BK-1", area="face", checklist=CHECKLIST))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return results


def test_the_lift_race_never_records_a_client_the_rules_did_not_release_for(sim):
    """Finding 2: `next_client BK-1` sent about the moment of `sim.undock` (inside the
    seat's settle time, and around it), BK-1/face inside its interval, BK-2 released. At
    every delay: either the lift came first (the rename is refused, the session is BK-2's)
    or the rename came first (the latch holds again, the pen cannot be lifted, nothing is
    recorded) - never a BK-1 session without a lock checked."""
    client_in_interval(sim)
    outcomes = {"lift first": 0, "rename first": 0}
    for n, delay_ms in enumerate(DELAYS_MS):
        checked = f"R{n}"  # a client never treated: released
        released_for(sim, checked)
        before = len(session_refs(sim))
        results = race(sim, delay_ms)
        new = session_refs(sim)[before:]
        if isinstance(results["rename"], Refused):
            outcomes["lift first"] += 1
            assert new == [checked], (delay_ms, new)
            sim.call("sim.dock")  # the session closes
        else:
            outcomes["rename first"] += 1
            assert isinstance(results["lift"], ControlError), (delay_ms, results)
            assert new == [], (delay_ms, new)
            assert "client_interval" in sim.status()["locks"]
        assert "BK-1" not in session_refs(sim)[1:], delay_ms
    assert outcomes["lift first"] >= 3  # the race was driven inside the settle time


def test_a_rename_while_released_holds_the_latch_before_anything_else_and_decides_again(sim):
    client_in_interval(sim)
    released_for(sim, "BK-2")
    seen = []
    latch = sim.dock.hw.latch
    real_audit = sim.store.audit

    def audit(actor, action, *args, **kwargs):  # what the latch was when each entry was written
        seen.append((action, latch.is_held))
        return real_audit(actor, action, *args, **kwargs)

    sim.store.audit = audit
    status = sim.call("next_client", ref="BK-1", area="face", checklist=CHECKLIST)
    assert status["held"] and "client_interval" in status["locks"]
    assert seen[0] == ("next_client", True) and ("lock", True) in seen
    assert all(held for _, held in seen)
    assert sim.dock.release_binding is None


def test_the_session_opens_with_exactly_what_the_release_checked(sim):
    released_for(sim, "BK-7")
    [release] = [e for e in sim.store.audit_entries(limit=50) if e.action == "release"][:1]
    sim.call("sim.undock")
    [session] = sim.store._read("SELECT client_ref, area, pen_serial, cartridge_serial FROM sessions")
    assert tuple(session) == (release.detail["client"], release.detail["area"],
                              release.detail["pen"], release.detail["cartridge"])


def test_naming_a_client_while_the_pen_is_out_is_refused_and_changes_nothing(sim, tmp_path, monkeypatch, capsys):
    released_for(sim, "BK-2")
    sim.call("sim.undock")
    before = (sim.status()["next_client"], len(sim.store.audit_entries(limit=1000)))
    monkeypatch.setenv("PENDOCK_SOCKET", str(sim.client.path))
    monkeypatch.setenv("PENDOCK_DATA", str(tmp_path / "data"))
    assert cli.main(["next-client", "BK-3", "--area", "face", "--checklist", CHECKLIST]) == 1
    assert "out of the cradle" in capsys.readouterr().err
    assert cli.main(["clear-client"]) == 1
    assert (sim.status()["next_client"], len(sim.store.audit_entries(limit=1000))) == before
    [ref] = session_refs(sim)
    assert ref == "BK-2"


def override_interval(sim) -> dict:
    """As the page gives it: its logged-in manager's name (appliance/daemon/authority.py)."""
    if sim.store.user("boss") is None:
        sim.store.add_user("boss", "manager", "scrypt$not-used", sim.clock.now())
    return sim.call("override", code="client_interval", reason="dermatologist agreed in writing",
                    manager="boss")


@pytest.mark.parametrize("other", [("BK-B", "face"), ("BK-A", "neck")])
def test_an_override_belongs_to_its_client_and_area(sim, other):
    """Finding 3. Fails when the line `self.overrides = {}` in Dock.name_client
    (appliance/daemon/dock.py, where naming another client or area drops the override;
    it was in daemon/commands.py's next_client) is deleted: the manager's override for
    BK-A/face would release the pen for another client, or another area."""
    ref, area = other
    for treated in (("BK-A", "face"), ("BK-A", "neck"), ("BK-B", "face")):
        client_in_interval(sim, *treated)  # every one of them inside its interval now
    sim.call("sim.cartridge")
    assert sim.call("next_client", ref="BK-A", area="face", checklist=CHECKLIST)["held"]
    assert not override_interval(sim)["held"]
    status = sim.call("next_client", ref=ref, area=area, checklist=CHECKLIST)
    assert status["held"] and "client_interval" in status["locks"]
    assert status["overridden"] == []


def test_the_same_client_named_again_keeps_its_override(sim):
    client_in_interval(sim, "BK-A")
    sim.call("sim.cartridge")
    sim.call("next_client", ref="BK-A", area="face", checklist="screened")
    override_interval(sim)
    assert not sim.call("next_client", ref="bk-a", area="face", checklist=CHECKLIST)["held"]


def test_a_decision_that_could_not_be_committed_never_releases(sim, monkeypatch):
    """Finding 6. Fails when the line `release = False` of `_refresh`'s failed-write
    branch (appliance/daemon/dock.py) is deleted: the pen would be released with
    storage_error showing."""
    sim.call("sim.dock")
    sim.call("sim.cartridge")

    def failing_record(*args, **kwargs):
        raise StorageError("database or disk is full (test)")

    with sim.dock.lock:
        monkeypatch.setattr(sim.dock, "_record", failing_record)
    status = sim.call("next_client", ref="BK-9", area="face", checklist=CHECKLIST)
    assert status["held"] and "storage_error" in status["locks"]
    assert sim.dock.hw.latch.is_held and sim.dock.release_binding is None


def test_a_refused_command_on_a_full_disk_shows_storage_error_until_a_write_succeeds(sim, monkeypatch):
    """Finding 6: the refused next-client leaves storage_error, not client_missing."""
    sim.call("sim.dock")
    sim.call("sim.cartridge")
    real_audit, broken = sim.store.audit, [True]

    def audit(*args, **kwargs):
        if broken[0]:
            raise StorageError("database or disk is full (test)")
        return real_audit(*args, **kwargs)

    monkeypatch.setattr(sim.store, "audit", audit)
    with pytest.raises(Refused):
        sim.call("next_client", ref="BK-9", area="face", checklist=CHECKLIST)
    status = sim.status()
    assert "storage_error" in status["locks"] and not status["storage_ok"]
    time.sleep(0.3)  # the loop keeps trying to write; it still cannot
    assert "storage_error" in sim.status()["locks"]
    broken[0] = False
    deadline = time.monotonic() + 5
    while "storage_error" in sim.status()["locks"] and time.monotonic() < deadline:
        time.sleep(0.05)
    status = sim.status()
    assert status["storage_ok"] and status["locks"] == ["client_missing"], status["locks"]
    assert json.dumps(status)  # still the contract's JSON


def test_any_command_whose_write_failed_leaves_storage_error(sim, monkeypatch):
    """A technician's command (here a token) that could not be written: storage_error
    shows, as for the dock's own writes."""
    def full(*args, **kwargs):
        raise StorageError("database or disk is full (test)")

    monkeypatch.setattr(sim.store, "add_token", full)
    monkeypatch.setattr(sim.store, "audit", full)  # and the dock's own attempts fail too
    with pytest.raises(Refused):
        sim.call("token_create", name="api", token_hash="0" * 64)
    assert "storage_error" in sim.status()["locks"]
