"""P4: what the dock's process must never hold for its months of running (README, quality
bars): sqlite-utils and its CLI stack (the record is created or upgraded by a child
process), hashlib's second OpenSSL (SHA-256 goes through cryptography), urllib's
http/ssl stack (the demo's page probe is a plain socket). The figure itself is
tests/bench/bench_memory.py's; these tests keep its causes from coming back."""
from __future__ import annotations

import hashlib
import json
import logging
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.core.digest import Sha256, sha256, sha256_hex
from appliance.record import migrations
from appliance.record.store import WRITER_CACHE_KIB, Store
from appliance.record.upgrade import needs_upgrade, upgrade_apart

REPO = Path(__file__).resolve().parents[2]
NEVER_IN_THE_DOCK = ("sqlite_utils", "click", "pluggy", "dateutil", "hashlib", "_hashlib", "hmac",
                     "secrets", "urllib.request", "http.client", "ssl")

# A dock's start as `pendock daemon` and `pendock demo` make it (prepare_process, then the
# shared start_dock under the simulated pen), one treatment through the control socket,
# then the modules the process holds.
DOCK_DAY = """
import json, sys, threading
from pathlib import Path
from appliance.core.config import Config
from appliance.daemon.control import ControlClient
from appliance.daemon.loop import prepare_process, run_loop
from appliance.simdock import build_sim_dock

data = Path(sys.argv[1])
prepare_process(data)
sim = build_sim_dock(Config(), data, data / "control.sock", pen_file=data / "pen.json")
stop = threading.Event()
loop = threading.Thread(target=run_loop, args=(sim.running, stop), daemon=True)
loop.start()
try:
    client = ControlClient(data / "control.sock", timeout=10)
    client.call("sim.cartridge", serial=None, strokes=None, remove=False)
    client.call("next_client", ref="FP-1", area="face", checklist="screened,test-area")
    client.call("sim.undock", force=False)
    client.call("sim.needle", minutes="10", depth="1.0", strokes=None)
    client.call("sim.dock", bounce=False)
    closed = sim.running.store.conn.execute("SELECT count(*) FROM sessions WHERE outcome != 'open'").fetchone()[0]
finally:
    stop.set()
    loop.join(5)
    sim.close()
print(json.dumps({"closed": closed, "modules": sorted(sys.modules)}))
"""


def _python(code: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO), GPIOZERO_PIN_FACTORY="mock")
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=120)


def test_a_dock_started_on_a_new_data_folder_never_loads_what_it_does_not_need(tmp_path):
    done = _python(DOCK_DAY, str(tmp_path / "data"))
    assert done.returncode == 0, done.stderr
    day = json.loads(done.stdout.strip().splitlines()[-1])
    assert day["closed"] == 1  # the treatment really ran: authenticated cartridge, hashed audit
    held = set(day["modules"])
    assert "cryptography" in held  # what the dock does need is there
    assert sorted(held.intersection(NEVER_IN_THE_DOCK)) == []


def test_opening_a_current_record_does_not_load_sqlite_utils_but_creating_one_does(tmp_path):
    opening = ("import sys; from pathlib import Path; from appliance.record.store import Store; "
               "Store(Path(sys.argv[1])).close(); print('sqlite_utils' in sys.modules)")
    record = tmp_path / "pendock.db"
    assert _python(opening, str(record)).stdout.strip() == "True"  # created: the migrations ran
    assert _python(opening, str(record)).stdout.strip() == "False"  # current: nothing to run


def schema_of(record) -> int:
    conn = sqlite3.connect(record)
    try:
        return migrations.schema_version(conn)
    finally:
        conn.close()


def test_upgrade_apart_creates_the_record_in_a_child_then_leaves_a_current_one_alone(tmp_path):
    record = tmp_path / "pendock.db"
    assert needs_upgrade(record)
    assert upgrade_apart(record) is True
    assert schema_of(record) == migrations.CURRENT_VERSION
    assert not needs_upgrade(record)
    assert upgrade_apart(record) is False
    with Store(record) as store:  # what the daemon opens next is a sound record
        assert store.verify_audit().ok


def test_upgrade_apart_upgrades_an_older_record(tmp_path):
    record = tmp_path / "pendock.db"
    conn = sqlite3.connect(record, isolation_level=None)
    try:
        import sqlite_utils

        migrations.migrate(sqlite_utils.Database(conn), target=1)
    finally:
        conn.close()
    assert needs_upgrade(record)
    assert upgrade_apart(record) is True
    assert schema_of(record) == migrations.CURRENT_VERSION


def test_a_failed_child_is_left_to_the_daemon_and_never_raises(tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with caplog.at_level(logging.WARNING, logger="pendock.record"):
        assert upgrade_apart(blocker / "pendock.db") is False
    assert "the daemon prepares it itself" in caplog.text


@pytest.mark.parametrize("data", [b"", b"abc", bytes(range(256)) * 1000])
def test_digest_is_sha256(data):
    assert sha256(data) == hashlib.sha256(data).digest()
    assert sha256_hex(data) == hashlib.sha256(data).hexdigest()
    incremental = Sha256()
    for start in range(0, len(data), 4096):
        incremental.update(data[start:start + 4096])
    assert incremental.hexdigest() == hashlib.sha256(data).hexdigest()
    assert incremental.digest() == incremental.digest()  # asking twice gives the same


def test_the_writers_page_cache_is_bounded_and_readers_keep_sqlites_default(tmp_path):
    with Store(tmp_path / "pendock.db") as writer:
        assert writer.conn.execute("PRAGMA cache_size").fetchone()[0] == -WRITER_CACHE_KIB
        with Store(tmp_path / "pendock.db", readonly=True) as reader:  # the page's: P2 is its bar
            assert reader.conn.execute("PRAGMA cache_size").fetchone()[0] == -2000


def test_the_child_runs_the_installed_code_not_a_package_in_the_working_directory(tmp_path, monkeypatch):
    planted = tmp_path / "cwd" / "appliance"
    planted.mkdir(parents=True)
    (planted / "__init__.py").write_text("raise SystemExit(3)\n")
    monkeypatch.chdir(planted.parent)
    assert upgrade_apart(tmp_path / "data" / "pendock.db") is True
