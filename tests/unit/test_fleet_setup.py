"""The fleet's pure edges: the fleet_stale rule, the [fleet] table, provisioning's files."""
from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from datetime import datetime, timezone

import pytest

from appliance.cli import main
from appliance.cli_fleet import format_fleet
from appliance.core.config import Config, ConfigError, Fleet, parse_config
from appliance.core.model import CHECKLIST_ITEMS, CartridgeAuth, DockState, History, NextClient, PenReading
from appliance.core.rules import decide
from appliance.fleet import keys
from appliance.fleet.provision import provision
from appliance.fleet.settings import parse_broker

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=timezone.utc)
READING = PenReading(pen_serial=42, firmware="1.0", strokes=10, motor_seconds=10,
                     cartridge_serial=9001, cartridge_strokes=0, max_depth_mm=0.0,
                     battery_mv=4000, temperature_c=30.0)
READY = DockState(docked=True, reading=READING,
                  next_client=NextClient("BK-1", "face", frozenset(CHECKLIST_ITEMS)),
                  cartridge_auth=CartridgeAuth("authentic", cartridge_id=9001, counter=16))


def test_a_stale_history_is_a_warning_and_the_pen_works():
    decision = decide(replace(READY, fleet_stale=True), History(), Config(), NOW)
    assert decision.warnings == ("fleet_stale",) and not decision.held
    assert decide(READY, History(), Config(), NOW).warnings == ()


def test_a_clinic_may_make_a_stale_history_hold_the_pen():
    config = replace(Config(), fleet=Fleet(stale_is_lock=True))
    decision = decide(replace(READY, fleet_stale=True), History(), config, NOW)
    assert decision.locks == ("fleet_stale",)


def test_the_fleet_table_is_checked_like_the_rest():
    config = parse_config('[fleet]\nbroker = "mqtts://broker.clinic:8883"\ndock_id = "room-2"\n'
                          'stale_after_minutes = 5\nstale_is_lock = true\n')
    assert config.fleet.dock_id == "room-2" and config.fleet.stale_is_lock
    assert parse_broker(config.fleet.broker) == parse_broker("mqtts://broker.clinic:8883")
    assert parse_broker("mqtts://broker.clinic").port == 8883 and parse_broker("mqtt://b").port == 1883
    with pytest.raises(ConfigError, match="line 2: fleet.broker is set but fleet.dock_id is not"):
        parse_config('[fleet]\nbroker = "mqtt://10.0.0.2:1883"\n')
    with pytest.raises(ConfigError, match="line 2: fleet.dock_id must be a dock id"):
        parse_config('[fleet]\ndock_id = "Room 1"\n')
    with pytest.raises(ConfigError, match="fleet.stale_after_minutes must be"):
        parse_config("[fleet]\nstale_after_minutes = 0\n")


def test_provisioning_writes_logins_acl_and_keys_and_keeps_them_on_a_second_run(tmp_path):
    added = provision(tmp_path, ["room-1", "room-2"], "mqtt://10.0.0.2:1883")
    assert added == ["room-1", "room-2"]
    password = (tmp_path / "docks" / "room-1" / "broker-password").read_text().strip()
    line = (tmp_path / "broker" / "passwd").read_text().splitlines()[0]
    user, _, _, rounds, salt, digest = line.replace(":", "$", 1).split("$")
    assert user == "room-1"
    assert base64.b64encode(hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt),
                                                int(rounds))).decode() == digest
    acl = (tmp_path / "broker" / "acl").read_text()
    assert "user room-2\ntopic read pendock/#\ntopic write pendock/events/room-2\n" in acl
    assert "topic write pendock/events/room-1" not in acl.split("user room-2")[1]
    ring = keys.load_keyring(tmp_path / "keys")
    key = keys.load_private_key(tmp_path / "docks" / "room-1" / "fleet.key")
    assert keys.public_line(key) == (tmp_path / "keys" / "room-1.pub").read_text().strip()
    assert set(ring) == {"room-1", "room-2"}
    assert (tmp_path / "docks" / "room-1" / "fleet.key").stat().st_mode & 0o077 == 0
    assert provision(tmp_path, ["room-1", "room-3"], "mqtt://10.0.0.2:1883") == ["room-3"]
    assert keys.load_private_key(tmp_path / "docks" / "room-1" / "fleet.key").private_bytes_raw() \
        == key.private_bytes_raw()
    assert "user room-3" in (tmp_path / "broker" / "acl").read_text()


def test_fleet_verbs_refuse_bad_input_with_one_line(tmp_path, capsys):
    assert main(["fleet", "provision", "--out", str(tmp_path), "--dock", "Room 1",
                 "--broker", "mqtt://b:1883", "--plain"]) == 2
    assert "dock id" in capsys.readouterr().err
    assert main(["fleet", "provision", "--out", str(tmp_path), "--dock", "room-1",
                 "--broker", "mqtt://b:1883"]) == 2  # in clear: only when asked for (--plain)
    refused = capsys.readouterr().err
    assert "in clear" in refused and "--plain" in refused
    assert main(["fleet", "provision", "--out", str(tmp_path)]) == 2
    assert main(["demo", "--broker", "mqtt://b:1883"]) == 2
    assert "--dock-id" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_a_dock_that_works_alone_says_so():
    assert format_fleet(None) == "This dock works alone: no [fleet] broker is configured."


def test_the_page_shows_the_fleet_key_of_the_status():
    """The live panel's "Clinic docks" line (page/view.py) from this dock's status `fleet`."""
    from appliance.page.view import live_state

    status = {"docked": True, "held": True, "reasons": [], "now": "2026-03-02T10:00:00+00:00",
              "clock_synced": True, "fleet": None}
    assert "Clinic docks" not in dict(live_state(status).facts)
    status["fleet"] = {"dock_id": "room-2", "stale": True, "outbox": 3, "conflicts": 1,
                       "connected": False,
                       "peers": [{"dock_id": "room-1", "online": True, "last_heard": None, "seq": 4},
                                 {"dock_id": "room-3", "online": False, "last_heard": None, "seq": 0}]}
    said = dict(live_state(status).facts)["Clinic docks"]
    assert said.startswith("1 of 2 others online") and "not connected" in said and "out of date" in said


def test_provisioning_pins_the_client_id_to_the_login_and_serves_tls_by_default(tmp_path):
    from cryptography import x509

    from appliance import certs

    assert main(["fleet", "provision", "--out", str(tmp_path), "--dock", "room-1",
                 "--broker", "broker.clinic"]) == 0
    broker = tmp_path / "broker"
    conf = (broker / "mosquitto.conf").read_text()
    assert "use_username_as_clientid true" in conf and "listener 8883" in conf
    assert f"certfile {broker / 'broker.crt'}" in conf and f"cafile {broker / 'ca.crt'}" in conf
    assert oct((broker / "ca.key").stat().st_mode & 0o777) == "0o600"
    assert oct((broker / "broker.key").stat().st_mode & 0o777) == "0o600"
    served = x509.load_pem_x509_certificate((broker / "broker.crt").read_bytes())
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == ["broker.clinic"]
    dock = tmp_path / "docks" / "room-1"
    table = (dock / "fleet.toml").read_text()
    assert 'broker = "mqtts://broker.clinic"' in table and f'tls_ca_file = "{dock / "clinic-ca.crt"}"' in table
    assert (dock / "clinic-ca.crt").read_bytes() == (broker / "ca.crt").read_bytes()
    assert len(certs.fingerprint(broker / "ca.crt").split(":")) == 32
    plain = provision(tmp_path / "plain", ["room-1"], "mqtt://127.0.0.1:1883")
    assert plain == ["room-1"] and "use_username_as_clientid true" in (
        tmp_path / "plain" / "broker" / "mosquitto.conf").read_text()
