"""`pendock chain provision` and `pendock chain report`: the files a real Mosquitto runs
with (logins and TLS on the bridge), the report's JSON shape over a real PostgreSQL, and
errors a technician can act on."""
from __future__ import annotations

import json
import secrets
import subprocess
import sys
from datetime import datetime, timezone

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.chain import store
from appliance.chain.provision import provision
from appliance.fleet import events as ev
from appliance.fleet.provision import provision as provision_clinic
from tests.support import chain as chain_support
from tests.support.demo import REPO
from tests.support.waiting import wait_for

needs_engines = pytest.mark.skipif(chain_support.skip_reason() is not None,
                                   reason=chain_support.skip_reason() or "")


def pendock(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "appliance", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60)


def test_bad_input_is_exit_2_with_what_to_do(tmp_path):
    result = pendock("chain", "provision", "--out", str(tmp_path), "--central", "mqtt://c:1884",
                     "--clinic", "North=mqtt://n:1883")
    assert result.returncode == 2 and "ID=mqtt://HOST:PORT" in result.stderr
    result = pendock("chain", "provision", "--out", str(tmp_path), "--central", "mqtt://c:1884",
                     "--clinic", "chain=mqtt://n:1883")
    assert result.returncode == 2 and "reserved" in result.stderr
    result = pendock("chain", "provision", "--out", str(tmp_path), "--central", "mqtt://c:1884",
                     "--clinic", "north=mqtt://n:1883")
    assert result.returncode == 2 and "mqtts://" in result.stderr
    result = pendock("chain", "ingest", "--broker", "mqtt://c:1884")
    assert result.returncode == 2 and "--database" in result.stderr
    result = pendock("chain", "report", "--database", "postgresql:///x", "--since", "14/03/2026")
    assert result.returncode == 2 and "YYYY-MM-DD" in result.stderr


def test_provision_again_keeps_the_worker_key_and_the_logins(tmp_path):
    args = (tmp_path, "mqtts://127.0.0.1:8884", ["north=mqtt://127.0.0.1:1883"])
    provision(*args)
    first = [(tmp_path / p).read_bytes() for p in ("worker/chain.key", "brokers/north/bridge-password",
                                                   "central/ca.crt")]
    provision(*args)
    assert first == [(tmp_path / p).read_bytes() for p in ("worker/chain.key",
                                                           "brokers/north/bridge-password", "central/ca.crt")]
    assert (tmp_path / "worker" / "chain.key").stat().st_mode & 0o077 == 0
    conf = (tmp_path / "brokers" / "north" / "mosquitto.conf").read_text()
    assert "remote_username bridge-north" in conf and "bridge_cafile" in conf


@needs_engines
def test_a_clinic_bridge_logs_in_over_tls_to_the_central_broker(tmp_path):
    """The provisioned files as they are: TLS and a login on the bridge; a bridge without its
    password is refused."""
    ns = f"chain-{secrets.token_hex(2)}-t"
    chain_support.ip("netns", "add", ns)
    procs = []
    try:
        chain_support.ip("-n", ns, "link", "set", "lo", "up")
        provision(tmp_path, "mqtts://127.0.0.1:8884", ["north=mqtt://127.0.0.1:1883"])
        clinic = provision_clinic(tmp_path / "clinic", ["n-1"], "mqtt://127.0.0.1:1883")
        assert clinic == ["n-1"]
        home = tmp_path / "brokers" / "north"
        for name in ("passwd", "acl"):  # the clinic's own logins, as the README says to copy
            (home / name).write_bytes((tmp_path / "clinic" / "broker" / name).read_bytes())
        for conf in (tmp_path / "central" / "mosquitto.conf", home / "mosquitto.conf"):
            conf.write_text(conf.read_text() + "user root\n")
        logs = tmp_path / "central.log"
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "mosquitto", "-v", "-c",
                                       str(tmp_path / "central" / "mosquitto.conf")],
                                      stdout=open(logs, "ab"), stderr=subprocess.STDOUT))
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "mosquitto", "-c", str(home / "mosquitto.conf")],
                                      stdout=open(tmp_path / "north.log", "ab"), stderr=subprocess.STDOUT))
        assert wait_for(lambda: "as pendock-bridge-north" in logs.read_text() and
                        "u'bridge-north'" in logs.read_text(), timeout=20, every=0.2), logs.read_text()
        # The same bridge with a wrong password: refused.
        procs[-1].terminate()
        procs[-1].wait(10)
        conf = home / "mosquitto.conf"
        text = conf.read_text()
        password = (home / "bridge-password").read_text().strip()
        conf.write_text(text.replace(password, "wrong-password"))
        before = logs.read_text().count("as pendock-bridge-north")
        procs.append(subprocess.Popen(["ip", "netns", "exec", ns, "mosquitto", "-c", str(conf)],
                                      stdout=open(tmp_path / "north.log", "ab"), stderr=subprocess.STDOUT))
        assert wait_for(lambda: "not authorised" in logs.read_text(), timeout=20, every=0.2), logs.read_text()
        assert logs.read_text().count("as pendock-bridge-north") == before
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
        chain_support.ip("netns", "del", ns, check=False)


@pytest.fixture
def pg():
    if chain_support.pg_bin() is None or (chain_support.os.geteuid() == 0 and not chain_support.shutil.which("runuser")):
        pytest.skip("needs Debian's postgresql (make test installs it)")
    cluster = chain_support.Postgres().start()
    try:
        yield cluster
    finally:
        cluster.stop()


def signed(key, dock: str, seq: int, kind: str, payload: dict, prev: str = ev.GENESIS) -> ev.Event:
    return ev.sign(ev.Event(dock, seq, kind, "2026-03-02T10:00:00+01:00", payload, prev), key)


def test_the_report_json_is_the_contract_s_shape_and_counts_once(pg, tmp_path):
    key = Ed25519PrivateKey.generate()
    opened = signed(key, "n-1", 1, "session_opened", {"session": 1, "pen_serial": 7, "cartridge_serial": 0})
    closed = signed(key, "n-1", 2, "session_closed", {"session": 1, "outcome": "completed"}, opened.hash)
    later = signed(key, "n-1", 4, "session_opened", {"session": 2, "pen_serial": 7, "cartridge_serial": 0})
    with store.connect(pg.url) as conn:
        store.create(conn)
        first = store.write(conn, [("north", opened), ("north", closed), ("north", later)],
                            {"n-1": ("north", 5)}, {("north", "forged"): 2})
        again = store.write(conn, [("north", opened), ("north", closed)], {}, {})
    assert (first.new, again.new, again.duplicates) == (3, 0, 2)
    assert first.marks == {"north": {"n-1": 2}} and first.gaps == {"north"}  # 3 is missing
    result = pendock("chain", "report", "--database", pg.url, "--json")
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert set(shown) == {"clinics", "sessions", "dropped"}
    assert shown["sessions"] == 2 and shown["dropped"] == {"forged": 2}
    (clinic,) = shown["clinics"]
    assert set(clinic) == {"clinic", "docks"} and clinic["clinic"] == "north"
    (dock,) = clinic["docks"]
    assert set(dock) == {"dock_id", "sessions", "last_event_at", "lag_seconds", "missing"}
    assert dock["dock_id"] == "n-1" and dock["sessions"] == 2 and dock["missing"] == 2  # 3 and 5
    assert datetime.fromisoformat(dock["last_event_at"]) == datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
    assert 0 <= dock["lag_seconds"] < 60
    result = pendock("chain", "report", "--database", pg.url, "--json", "--since", "2026-03-03")
    assert json.loads(result.stdout)["sessions"] == 0
    text = pendock("chain", "report", "--database", pg.url).stdout
    assert "Clinic north:" in text and "missing 2" in text and "forged 2" in text


def test_a_dock_names_its_clinic_in_the_config_or_with_demo_clinic():
    from argparse import Namespace

    from appliance.core.config import ConfigError, parse_config
    from appliance.demo import with_fleet_flags

    assert parse_config('[fleet]\nclinic = "north"\n').fleet.clinic == "north"
    with pytest.raises(ConfigError, match="clinic id"):
        parse_config('[fleet]\nclinic = "North Side"\n')
    flagged = with_fleet_flags(parse_config(""), Namespace(broker="mqtt://127.0.0.1:1883", dock_id="n-1",
                                                           clinic="north"))
    assert (flagged.fleet.clinic, flagged.fleet.dock_id) == ("north", "n-1")
    with pytest.raises(ConfigError, match="clinic id"):
        with_fleet_flags(parse_config(""), Namespace(broker=None, dock_id=None, clinic="NORTH"))
