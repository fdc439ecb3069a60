"""One place for each rule: the page's client lookup, the fleet's conflict check and the
reasons' facts ask appliance/core/rules.py, over the history the rules count, so none of
them can say something the dock's decision does not."""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from html import unescape
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.core import reason_facts, rules
from appliance.core.broker import parse_broker
from appliance.core.config import Config, ConfigError, load_config
from appliance.core.model import CHECKLIST_ITEMS, History, NextClient, Treatment
from appliance.fleet import events as ev
from appliance.fleet.ledger import Ledger
from appliance.daemon import dock as dock_module
from appliance.page import clients
from appliance.page import view as web_view
from appliance.record import lookups
from appliance.record.store import Store

UTC = timezone.utc
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEY = Ed25519PrivateKey.generate()


def peer_events(tmp_path, sessions: list[tuple[int, str, datetime]]) -> list[ev.Event]:
    """room-2's session_opened events (session, ref, start), signed as it sends them."""
    source = Store(tmp_path / "room-2.db")
    with source.transaction("peer events"):
        ledger = Ledger(source.db.conn, "room-2")
        for session, ref, at in sessions:
            ledger.record_own("session_opened", {"session": session, "client_ref": ref, "area": "face",
                                                 "pen_serial": 7, "cartridge_serial": 900 + session}, at)
    rows = Ledger(source.db.conn, "room-2", KEY).events_after("room-2", 0, 100)
    source.close()
    return [ev.verify(ev.decode_event(body), {"room-2": KEY.public_key()}) for _, body in rows]


def ingest(store: Store, events: list[ev.Event], tz=UTC):
    with store.transaction("ingest"):
        return Ledger(store.conn, "room-1").ingest(events, min_interval_days=21, tz=tz, now=NOW)


def test_the_client_lookup_counts_a_session_given_in_another_room(tmp_path):
    """Finding 5: a session in another room 5 days ago holds the pen; the lookup says so."""
    with Store(tmp_path / "room-1.db") as store:
        ingest(store, peer_events(tmp_path, [(1, "C-1", NOW - timedelta(days=5))]))
        found = clients.client_history("C-1", lookups.client_sessions(store, "C-1"), Config(), NOW, UTC)
    assert found["client_ref"] == "C-1"
    [face] = found["areas"]
    assert face["treatments_total"] == 1 and face["days_since"] == 5
    assert not face["eligible_today"]


def test_the_lookup_and_the_rules_agree_on_whether_the_pen_would_be_held():
    config = Config()
    for days_ago, hour in ((20, 23), (21, 0), (21, 23), (27, 12), (30, 1)):
        start = (NOW - timedelta(days=days_ago)).replace(hour=hour)
        sessions = [{"id": 1, "area": "face", "started_at": start.isoformat(), "outcome": "completed"}]
        [face] = clients.client_history("C-1", sessions, config, NOW, UTC)["areas"]
        history = History(treatments=(Treatment("C-1", "face", start),))
        held = "client_interval" in rules.client_codes(
            NextClient("C-1", "face", frozenset(CHECKLIST_ITEMS)), history, config, NOW)
        assert face["eligible_today"] is not held, (days_ago, hour)


def test_the_conflict_check_counts_calendar_days_as_the_rules_do(tmp_path):
    """1 Nov 20:00 and 22 Nov 08:00 are 21 calendar days apart: the rules allow it, so it
    is no conflict; 1 Nov 08:00 and 21 Nov 20:00 (20 days) is one."""
    with Store(tmp_path / "room-1.db") as store:
        with store.transaction("pen"):
            store.conn.execute("INSERT INTO pens VALUES (42, '1', ?, 0, 0, 0)", (NOW.isoformat(),))
        store.open_session(started_at=datetime(2026, 11, 1, 20, 0, tzinfo=UTC), client_ref="BK-1",
                           area="face", pen_serial=42, cartridge_serial=1, strokes_start=0,
                           motor_seconds_start=0)
        store.open_session(started_at=datetime(2026, 11, 1, 8, 0, tzinfo=UTC), client_ref="BK-2",
                           area="face", pen_serial=42, cartridge_serial=2, strokes_start=0,
                           motor_seconds_start=0)
        result = ingest(store, peer_events(tmp_path, [
            (1, "BK-1", datetime(2026, 11, 22, 8, 0, tzinfo=UTC)),
            (2, "bk-2", datetime(2026, 11, 21, 20, 0, tzinfo=UTC))]))
    assert [c["client_ref"] for c in result.conflicts] == ["BK-2"]


def test_the_reasons_facts_are_the_rules_facts_for_any_spelling_on_record():
    """The facts under client_interval name the date the rules held the pen for, even when
    the record's treatment was written in another spelling (a peer's, before migration 9)."""
    config = Config()
    last = NOW - timedelta(days=3)
    history = History(treatments=(Treatment("bk-1042", "face", last),))
    client = NextClient("BK-1042", "face", frozenset(CHECKLIST_ITEMS))
    assert "client_interval" in rules.client_codes(client, history, config, NOW)
    facts = reason_facts.client_facts(reason_facts.FactInputs(
        config=config, now=NOW, history=history, next_client=client))
    dates = rules.eligible_dates(last, config)
    assert facts["last_date"] == "2026-11-25" and facts["days_since"] == 3
    assert facts["next_eligible_date"] == dates.next_eligible.isoformat()
    assert facts["treatments_in_window"] == 1


def test_one_stop_table_for_the_light_the_page_and_live_js(sim, page):
    """Finding 5: a forged cartridge lit STOP with an amber reason (three tables)."""
    sim.call("sim.dock")
    sim.call("sim.cartridge", forged=True)
    status = sim.status()
    assert "cartridge_unauthentic" in status["locks"] and status["light"] == "red"
    [reason] = [r for r in web_view.live_state(status).reasons if r.code == "cartridge_unauthentic"]
    assert reason.tone == "stop"
    assert dock_module.RED_LOCKS is web_view.RED_CODES is rules.STOP_LOCKS
    html = page.get("/").get_data(as_text=True)
    served = json.loads(unescape(re.search(r'data-rules="([^"]+)"', html).group(1)))
    assert served == {"stop": sorted(rules.STOP_LOCKS), "overridable": sorted(rules.OVERRIDABLE)}
    script = (Path(__file__).parents[2] / "web" / "static" / "live.js").read_text()
    # No copy of a table: no list or map of reason codes in live.js. (It may name one code
    # where it words that code's facts in the page's language: `code === "battery_low"`.)
    copied = [code for code in rules.CODES
              if re.search(rf'\[[^\]]*"{code}"', script) or re.search(rf'[{{,]\s*"?{code}"?\s*:', script)]
    assert copied == []


@pytest.mark.parametrize("broker", ["mqtt://b:99999", "mqtt://b:0", "mqtt://user@b:1883", "http://b:1883",
                                    "mqtts://b/topic", "mqtt://:1883"])
def test_a_broker_address_is_refused_at_load_with_file_and_line(tmp_path, broker):
    """Finding 5: the config took port 99999 that the daemon then refused at start."""
    path = tmp_path / "pendock.toml"
    path.write_text(f'[fleet]\ndock_id = "room-1"\n# the clinic broker\nbroker = "{broker}"\n')
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path} line 4: fleet.broker ")


@pytest.mark.parametrize("broker", ["mqtt://b", "mqtts://broker.clinic:8883", "mqtt://10.0.0.2:1883/",
                                    "mqtt://[fd00::1]:1883"])
def test_what_the_config_takes_the_link_can_use(tmp_path, broker):
    path = tmp_path / "pendock.toml"
    path.write_text(f'[fleet]\ndock_id = "room-1"\nbroker = "{broker}"\n')
    assert str(parse_broker(load_config(path).fleet.broker)).startswith("mqtt")
