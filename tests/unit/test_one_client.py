"""One client however it is typed (README, "Booking references"): every door that reads a
booking reference (the socket, the CLI, the page and its lookup, a peer's events, a
restore, the CSV, an older record) keeps one canonical spelling, so the 21-day rule
cannot be got round by letter case."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import cli
from appliance.core import rules
from appliance.core.config import Config
from appliance.core.model import CHECKLIST_ITEMS, History, NextClient, Treatment
from appliance.fleet import events as ev
from appliance.fleet.ledger import Ledger
from appliance.record import migrations
from appliance.record.export import sessions_csv
from appliance.record.store import Store
from tests.support.inprocess import CHECKLIST

UTC = timezone.utc


def treated(sim, ref="BK-1042") -> dict:
    """One whole session for `ref`, face (the dock's sim day starts at 08:00)."""
    return sim.session_cycle(ref)


def test_the_socket_holds_the_pen_for_a_lower_case_spelling_of_a_client_treated_today(sim):
    """Finding 1: BK-1042/face treated, then `bk-1042` named: the pen stays held."""
    treated(sim)
    status = sim.ready_for_client("bk-1042")
    assert status["held"] and "client_interval" in status["locks"]
    assert status["next_client"]["ref"] == "BK-1042"
    facts = {r["code"]: r.get("detail", {}) for r in status["reasons"]}
    assert facts["client_interval"]["client_ref"] == "BK-1042"


def test_the_cli_holds_the_pen_for_a_mixed_case_spelling(sim, tmp_path, monkeypatch, capsys):
    treated(sim, "bk-1042")  # recorded under its canonical spelling
    monkeypatch.setenv("PENDOCK_SOCKET", str(sim.client.path))
    monkeypatch.setenv("PENDOCK_DATA", str(tmp_path / "data"))
    sim.call("sim.cartridge")
    code = cli.main(["next-client", "Bk-1042", "--area", "face", "--checklist", CHECKLIST, "--json"])
    shown = json.loads(capsys.readouterr().out)
    assert code == 1 and shown["held"] and "client_interval" in shown["locks"]
    assert shown["next_client"]["ref"] == "BK-1042"
    cli.main(["log", "--json"])
    [logged] = json.loads(capsys.readouterr().out)
    assert logged["client_ref"] == "BK-1042"


def test_the_page_names_and_looks_up_one_client_in_any_case(sim, page):
    treated(sim)
    sim.call("sim.cartridge")
    token = page.get("/").get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    page.post("/next-client", data={"csrf": token, "ref": "bK-1042", "area": "face",
                                    "checklist": list(CHECKLIST_ITEMS)})
    status = sim.status()
    assert status["next_client"]["ref"] == "BK-1042" and "client_interval" in status["locks"]
    for spelling in ("bk-1042", "Bk-1042", "BK-1042"):
        found = page.get(f"/api/clients/{spelling}").get_json()
        assert found["client_ref"] == "BK-1042"
        [face] = found["areas"]
        assert face["treatments_total"] == 1 and not face["eligible_today"]


def event_from(dock: str, key, payload: dict, at: datetime, tmp_path) -> ev.Event:
    source = Store(tmp_path / f"{dock}.db")
    with source.transaction("peer event"):
        Ledger(source.db.conn, dock).record_own("session_opened", payload, at)
    rows = Ledger(source.db.conn, dock, key).events_after(dock, 0, 10)
    source.close()
    return ev.verify(ev.decode_event(rows[0][1]), {dock: key.public_key()})


def test_a_peers_lower_case_session_holds_the_pen_here(sim, tmp_path):
    """A peer running older software sends `bk-1042`: it is BK-1042 here."""
    key = Ed25519PrivateKey.generate()
    event = event_from("room-9", key, {"session": 1, "client_ref": "bk-1042", "area": "face",
                                       "pen_serial": 7, "cartridge_serial": 99},
                       sim.clock.now() - timedelta(hours=1), tmp_path)
    with sim.store.transaction("ingest"):
        Ledger(sim.store.conn, "room-1").ingest([event], min_interval_days=21, tz=UTC, now=sim.clock.now())
    status = sim.ready_for_client("BK-1042")
    assert "client_interval" in status["locks"]


def test_the_rules_compare_canonical_spellings_only():
    now = datetime(2026, 11, 28, 13, 29, tzinfo=UTC)
    history = History(treatments=(Treatment("bk-1042", "face", now - timedelta(hours=3)),))
    client = NextClient("BK-1042", "face", frozenset(CHECKLIST_ITEMS))
    assert "client_interval" in rules.client_codes(client, history, Config(), now)


def schema_8_record(path, rows) -> None:
    """A record as schema 8 left it, with `rows` of (client_ref, started_at) sessions."""
    with Store(path):  # the current schema, then wound back to 8
        pass
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 8")
    for column in ("vouched_at", "vouch"):  # migration 10's, after this one
        conn.execute(f"ALTER TABLE sessions DROP COLUMN {column}")
    conn.execute("INSERT OR IGNORE INTO pens VALUES (42, '1', '2026-11-01T00:00:00+00:00', 0, 0, 0)")
    for n, (ref, started) in enumerate(rows, 1):
        conn.execute("INSERT INTO sessions (id, day, started_at, client_ref, area, pen_serial, "
                     "cartridge_serial, outcome) VALUES (?, ?, ?, ?, 'face', 42, ?, 'completed')",
                     (n, started[:10], started, ref, 500 + n))
    conn.commit()
    conn.close()


def test_the_migration_merges_the_spellings_of_one_reference_and_says_so(tmp_path, sim):
    path = tmp_path / "old.db"
    schema_8_record(path, [("bk-1042", "2026-11-20T09:00:00+00:00"), ("Bk-1042", "2026-11-21T09:00:00+00:00"),
                           ("BK-1042", "2026-11-22T09:00:00+00:00"), ("c-7", "2026-11-22T10:00:00+00:00")])
    with Store(path) as store:
        refs = [r[0] for r in store._read("SELECT client_ref FROM sessions ORDER BY id")]
        merges = store.get_state(migrations.CLIENT_REF_MERGES_KEY)
    assert refs == ["BK-1042", "BK-1042", "BK-1042", "C-7"]
    assert merges == [{"ref": "BK-1042", "sessions": 2, "spellings": ["Bk-1042", "bk-1042"]},
                      {"ref": "C-7", "sessions": 1, "spellings": ["c-7"]}]
    # The dock audits the merge once, at its start, and clears what the migration left.
    sim.store.set_state(migrations.CLIENT_REF_MERGES_KEY, merges)
    sim.dock._audit_client_ref_merges(sim.clock.now())
    sim.dock._audit_client_ref_merges(sim.clock.now())
    [entry] = [e for e in sim.store.audit_entries(limit=100) if e.action == "client_refs_merged"]
    assert entry.detail["merged"] == merges
    assert sim.store.get_state(migrations.CLIENT_REF_MERGES_KEY) is None
    assert sim.store.verify_audit().ok


def other_docks_backup(tmp_path, started, spelling: str, area: str, pen: int):
    """Another dock's genuine backup with one session, whose row kept an older spelling
    of its reference (the audit entry agrees up to letter case)."""
    from tests.unit.test_store import close, reading

    with Store.open(tmp_path / "old-dock") as old:
        old.register_pen(reading(serial=pen), started - timedelta(days=30), "dock", True)
        gone = old.open_session(started_at=started, client_ref=spelling.upper(), area=area, pen_serial=pen,
                                cartridge_serial=777, strokes_start=1, motor_seconds_start=1)
        close(old, gone, started + timedelta(minutes=30))
        old.backup_to(tmp_path / "backup.db")
    conn = sqlite3.connect(tmp_path / "backup.db")
    conn.execute("UPDATE sessions SET client_ref = ?", (spelling,))
    conn.commit()
    conn.close()
    return tmp_path / "backup.db"


def test_a_restored_backup_brings_one_spelling(sim, tmp_path):
    """A restored session that kept another spelling becomes the one canonical client."""
    backup = other_docks_backup(tmp_path, sim.clock.now() - timedelta(hours=2), "bk-1042", "face", 42)
    sim.call("restore", path=str(backup))
    refs = {r[0] for r in sim.store._read("SELECT client_ref FROM sessions")}
    assert refs == {"BK-1042"}
    assert "client_interval" in sim.ready_for_client("bk-1042")["locks"]


def test_the_csv_and_the_log_show_the_canonical_spelling(sim):
    treated(sim, "bk-1042")
    day = sim.clock.now().date()
    sessions = sim.store.sessions_on(day)
    assert [s["client_ref"] for s in sessions] == ["BK-1042"]
    assert "BK-1042" in sessions_csv(sessions) and "bk-1042" not in sessions_csv(sessions)
    assert [s["client_ref"] for s in sim.call("sessions")] == ["BK-1042"]


def test_references_alike_but_for_separators_or_leading_zeros():
    assert rules.ref_likeness("BK-01042") == rules.ref_likeness("bk_1042") == rules.ref_likeness("BK1042.")
    assert rules.ref_likeness("BK-1042") != rules.ref_likeness("BK-1043")
    assert rules.ref_likeness("BK-10420") != rules.ref_likeness("BK-1042")  # a trailing zero counts
    assert rules.ref_likeness("2025.03") == rules.ref_likeness("2025-3")


@pytest.mark.parametrize("typed", ["BK-01042", "bk_1042", "BK1042"])
def test_a_reference_like_one_treated_in_the_course_window_is_a_warning_with_its_facts(sim, typed):
    treated(sim, "BK-1042")
    status = sim.ready_for_client(typed)
    assert not status["held"] and "client_ref_similar" in status["warnings"]
    [reason] = [r for r in status["reasons"] if r["code"] == "client_ref_similar"]
    day = sim.clock.now().date().isoformat()
    assert reason["detail"] == {"client_ref": typed.upper(), "similar_ref": "BK-1042",
                                "similar_area": "face", "last_date": day}
    assert "BK-1042 was treated on" in reason["detail_words"]
    assert "client_ref_similar" not in sim.ready_for_client("BK-1042")["warnings"]  # itself


def test_a_different_reference_is_not_similar(sim):
    treated(sim, "BK-1042")
    assert "client_ref_similar" not in sim.ready_for_client("BK-1043")["warnings"]


def test_every_door_that_reads_a_reference_sees_one_client(sim, page, tmp_path, monkeypatch, capsys):
    """The socket, the CLI, the page's form and lookup, a peer's event, a restore and the
    CSV, each given another letter case of one reference: one client everywhere."""
    treated(sim, "bk-1042")  # the socket
    monkeypatch.setenv("PENDOCK_SOCKET", str(sim.client.path))
    monkeypatch.setenv("PENDOCK_DATA", str(tmp_path / "data"))
    sim.call("sim.cartridge")
    assert cli.main(["next-client", "Bk-1042", "--area", "face", "--checklist", CHECKLIST]) == 1  # the CLI
    capsys.readouterr()
    assert "client_interval" in sim.status()["locks"]
    token = page.get("/").get_data(as_text=True).split('name="csrf" value="')[1].split('"')[0]
    page.post("/next-client", data={"csrf": token, "ref": "bK-1042", "area": "face",  # the page
                                    "checklist": list(CHECKLIST_ITEMS)})
    assert sim.status()["next_client"]["ref"] == "BK-1042" and "client_interval" in sim.status()["locks"]
    key = Ed25519PrivateKey.generate()  # a peer's event
    event = event_from("room-9", key, {"session": 1, "client_ref": "bK-1042", "area": "neck",
                                       "pen_serial": 7, "cartridge_serial": 99},
                       sim.clock.now() - timedelta(hours=1), tmp_path)
    with sim.store.transaction("ingest"):
        Ledger(sim.store.conn, "room-1").ingest([event], min_interval_days=21, tz=UTC, now=sim.clock.now())
    sim.call("clear_client")
    backup = other_docks_backup(tmp_path, sim.clock.now() - timedelta(days=3), "Bk-1042", "neck",  # a restore
                                sim.status()["pen"]["serial"])
    sim.call("restore", path=str(backup))
    refs = {r[0] for r in sim.store._read("SELECT client_ref FROM sessions UNION "
                                          "SELECT client_ref FROM fleet_sessions")}
    assert refs == {"BK-1042"}
    found = page.get("/api/clients/bk-1042").get_json()  # the lookup
    totals = {a["area"]: a["treatments_total"] for a in found["areas"]}
    assert found["client_ref"] == "BK-1042" and totals == {"face": 1, "neck": 2}
    csv = sessions_csv(sim.store.sessions_on(sim.clock.now().date()))  # the CSV
    assert "BK-1042" in csv and not {"bk-1042", "Bk-1042", "bK-1042"} & set(csv.replace(",", " ").split())
