"""The CLI's refusals: a bad config, a sim verb against a dock that is not simulated."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from gpiozero.pins.mock import MockFactory

from appliance.cli import main
from appliance.record.export import sessions_csv
from appliance.record.passwords import check_password, password_hash
from appliance.core.config import Config
from appliance.daemon.loop import start_dock
from appliance.hardware.pinmap import load_pinmap
from appliance.hardware.sim import SimClock

REPO = Path(__file__).resolve().parents[2]


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})), timeout=30, cwd=REPO)


@pytest.mark.parametrize("verb", ["demo", "daemon", "web"])
def test_a_bad_config_is_refused_naming_file_line_and_key(tmp_path, verb):
    bad = tmp_path / "pendock.toml"
    bad.write_text("[rules]\nmin_interval_days = 21\nmax_needling_minutes = -5\n")
    result = run(verb, "--config", str(bad), "--data", str(tmp_path / "d"))
    assert result.returncode == 2
    assert str(bad) in result.stderr and "line 3" in result.stderr and "rules.max_needling_minutes" in result.stderr
    assert not (tmp_path / "d" / "pendock.db").exists()  # refused before anything was opened


def test_a_broken_toml_file_is_refused_with_its_line(tmp_path):
    bad = tmp_path / "pendock.toml"
    bad.write_text("[rules\n")
    result = run("demo", "--config", str(bad), "--data", str(tmp_path / "d"))
    assert result.returncode == 2 and str(bad) in result.stderr and "line 1" in result.stderr


def test_sim_verbs_are_refused_against_a_dock_that_is_not_simulated(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")  # gpiozero's software SPI bus; see appliance/simdock.py
    factory = MockFactory()  # injected only: gpiozero's global pin factory stays untouched
    running = start_dock(Config(), tmp_path, tmp_path / "control.sock", SimClock(ZoneInfo("UTC")),
                         pin_factory=factory)  # no simulator extension: as on a Pi
    try:
        monkeypatch.setenv("PENDOCK_SOCKET", str(tmp_path / "control.sock"))
        assert main(["sim", "dock"]) == 2
        assert "not simulated" in capsys.readouterr().err
        assert main(["status", "--json"]) == 0
    finally:
        running.close()
        factory.reset()


def test_passwords_are_salted_and_slow_hashed():
    one, two = password_hash("correct horse"), password_hash("correct horse")
    assert one != two and one.startswith("scrypt$")
    assert check_password("correct horse", one) and not check_password("wrong horse", one)
    assert not check_password("anything", "garbage")


def test_csv_export_defuses_spreadsheet_formulas():
    text = sessions_csv([{"id": 1, "client_ref": "=HYPERLINK(1)", "warnings": ["a", "b"]}])
    assert "'=HYPERLINK(1)" in text and "a b" in text


@pytest.mark.parametrize("verb", ["demo", "daemon"])
def test_a_pin_map_with_a_duplicate_pin_is_refused_at_start(tmp_path, verb):
    from appliance.core.resources import hw_file

    text = hw_file("pinmap.toml").read_text()
    latch_bcm = load_pinmap()["latch"].bcm
    bad = tmp_path / "pinmap.toml"
    # Wire the buzzer onto the latch's pin: the map must be refused, naming the clash.
    bad.write_text(re.sub(r"(\[pins\.buzzer\][^\[]*?bcm\s*=\s*)\d+", rf"\g<1>{latch_bcm}", text, count=1))
    assert bad.read_text() != text
    result = run(verb, "--data", str(tmp_path / "d"), env={"PENDOCK_PINMAP": str(bad)})
    assert result.returncode == 2, result.stderr
    assert str(bad) in result.stderr and "buzzer" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_record_from_newer_software_is_refused_at_start(tmp_path):
    import sqlite3

    data = tmp_path / "d"
    data.mkdir()
    with sqlite3.connect(data / "pendock.db") as db:
        db.execute("PRAGMA user_version = 999")
    from tests.scenario.conftest import free_port

    result = run("demo", "--data", str(data), "--port", str(free_port()))
    assert result.returncode == 2 and "newer than this software" in result.stderr
