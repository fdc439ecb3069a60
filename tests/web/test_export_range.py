"""The manager's export: any date range, every room of the clinic, local times with their
offset, minutes, the therapist who named the client, warnings in words beside their
codes, overrides with the manager and the reason; a documented CSV dialect."""
from __future__ import annotations

import csv
import io
import json
import sqlite3
from dataclasses import replace
from datetime import date, datetime, timezone

import pytest

from appliance.core.config import Config
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web import records
from tests.web.conftest import FakeDaemon, log_in

UTC = timezone.utc


@pytest.fixture
def manager_page(tmp_path):
    rows = [list(r) for r in records.session_rows(date(2026, 11, 26), 3, 1)]  # 26, 27, 28 at 08:00 UTC
    rows[1][3], rows[1][16] = "BK-1042", json.dumps(["client_interval"])  # client_ref, overrides
    rows[1][15] = json.dumps(["depth_high"])  # warnings
    records.build_record(tmp_path, [tuple(r) for r in rows])
    with Store.open(tmp_path) as store:
        store.audit("page user thera", "next_client", {"ref": "BK-1042", "area": "face", "checklist": []},
                    datetime(2026, 11, 27, 7, 50, tzinfo=UTC), True)
        store.audit("page user boss", "override", {"code": "client_interval", "reason": "dermatologist agreed",
                                                   "client": "BK-1042"}, datetime(2026, 11, 27, 7, 55, tzinfo=UTC), True)
    with sqlite3.connect(tmp_path / "pendock.db") as conn:
        conn.execute(
            "INSERT INTO fleet_sessions (dock_id, session, day, started_at, ended_at, client_ref, "
            "area, pen_serial, cartridge_serial, outcome, needling_seconds, strokes, max_depth_mm, "
            "warnings, overrides) VALUES ('room-2', 7, '2026-11-27', '2026-11-27T09:30:00+00:00', "
            "'2026-11-27T10:00:00+00:00', 'BK-ROOM2', 'neck', 42, 777, 'completed', 1230, 9000, "
            "1.0, '[]', '[]')")
    config = Config()
    config = replace(config, dock=replace(config.dock, timezone="Europe/Berlin"),
                     fleet=replace(config.fleet, dock_id="room-1"))
    store = Store.open(tmp_path, readonly=True)
    app = create_app(config, tmp_path, tmp_path / "control.sock", control=FakeDaemon().client, store=store,
                     secret_key="test-key", status_fresh_s=0)
    client = app.test_client()
    assert log_in(client, "boss").status_code == 302
    yield client
    store.close()


def table(response) -> list[dict]:
    assert response.status_code == 200, response.get_data(as_text=True)
    text = response.get_data(as_text=True)
    assert text.startswith("\ufeff")  # UTF-8 with a BOM: a spreadsheet reads "ü" right
    return list(csv.DictReader(io.StringIO(text.lstrip("\ufeff"))))


def test_a_range_of_days_of_every_room(manager_page):
    found = table(manager_page.get("/export.csv?from=2026-11-26&to=2026-11-27"))
    assert [(r["room"], r["client_ref"]) for r in found][:1] == [("room-1", found[0]["client_ref"])]
    assert {r["room"] for r in found} == {"room-1", "room-2"} and len(found) == 3
    assert all(r["started"][:10] in ("2026-11-26", "2026-11-27") for r in found)


def test_local_times_with_offset_minutes_therapist_words_and_overrides(manager_page):
    [row] = [r for r in table(manager_page.get("/export.csv?from=2026-11-27&to=2026-11-27"))
             if r["client_ref"] == "BK-1042"]
    assert row["started"] == "2026-11-27 09:00:00" and row["utc_offset"] == "+01:00"  # Berlin in winter
    assert row["needling_minutes"] == f"{int(row['needling_minutes'].split('.')[0])}.0"
    assert row["therapist"] == "thera"
    assert row["warning_codes"] == "depth_high" and "deeper" in row["warnings"].lower()
    assert row["override_codes"] == "client_interval"
    assert "boss" in row["overrides"] and "dermatologist agreed" in row["overrides"]
    room2 = [r for r in table(manager_page.get("/export.csv?from=2026-11-27&to=2026-11-27"))
             if r["room"] == "room-2"][0]
    assert room2["needling_minutes"] == "20.5" and room2["started"] == "2026-11-27 10:30:00"


def test_a_bad_range_is_refused_in_words(manager_page):
    response = manager_page.get("/export.csv?from=2026-11-28&to=2026-11-26")
    assert response.status_code == 400 and "from" in response.get_data(as_text=True)
    assert manager_page.get("/export.csv?from=2020-01-01&to=2026-11-28").status_code == 400  # over a year


def test_one_day_keeps_its_contract_columns(manager_page):
    text = manager_page.get("/export.csv?date=2026-11-27").get_data(as_text=True)
    assert text.splitlines()[0].startswith("id,started_at,ended_at,client_ref")
