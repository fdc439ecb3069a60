"""First run: a one-time setup code guards the setup form's `setup`; it makes the first
manager and the clinic's settings, then first run is closed for good."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest

from appliance.core import first_run
from appliance.core.config import Config, parse_config
from appliance.daemon.control import BadRequest, Refused
from appliance.record.passwords import password_hash
from tests.support.inprocess import SimDock

QUICK = password_hash("a good password", n=2**10)


@pytest.fixture
def dock(tmp_path):
    dock = SimDock(tmp_path / "data", tmp_path / "control.sock", loop=False)
    yield dock
    dock.close()


def form(code: str, **values) -> dict:
    sent = dict(code=code, name="anna", password_hash=QUICK, clinic_name="Hautpraxis Müller",
                clinic_phone="+49 30 1234567", timezone="Europe/Berlin", locale="de-DE")
    sent.update(values)
    return sent


def test_the_code_is_made_while_no_manager_exists_and_kept_private(dock, tmp_path):
    code = dock.call("setup_code")["code"]
    assert len(code.replace("-", "")) == 12
    path = tmp_path / "data" / first_run.SETUP_CODE_NAME
    assert path.read_text().strip() == code and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert dock.call("setup_code")["code"] == code  # the same code until it is used


def test_a_wrong_code_is_refused_and_adds_no_manager(dock):
    dock.call("setup_code")
    with pytest.raises(Refused, match="setup code is not right"):
        dock.call("setup", **form("AAAA-BBBB-CCCC"))
    assert dock.store.users() == []


def test_setup_makes_the_manager_and_the_settings_then_closes(dock, tmp_path):
    code = dock.call("setup_code")["code"]
    done = dock.call("setup", **form(code.lower().replace("-", " ")))  # as a person types it
    assert done["manager"] == "anna"
    assert [(u["name"], u["role"]) for u in dock.store.users()] == [("anna", "manager")]
    assert dock.dock.config.clinic.name == "Hautpraxis Müller" and str(dock.dock.config.tz) == "Europe/Berlin"
    assert "first_run" in dock.audit_actions()
    assert not (tmp_path / "data" / first_run.SETUP_CODE_NAME).exists()
    with pytest.raises(Refused, match="first run is closed"):
        dock.call("setup_code")
    with pytest.raises(Refused, match="first run is closed"):
        dock.call("setup", **form(code, name="mallory"))
    assert [u["name"] for u in dock.store.users()] == ["anna"]


def test_a_manager_added_over_ssh_closes_first_run(dock):
    dock.call("setup_code")
    dock.call("user_add", name="boss", role="manager", password_hash=QUICK)
    with pytest.raises(Refused, match="first run is closed"):
        dock.call("setup_code")


def test_bad_settings_are_refused_before_the_code_is_looked_at(dock):
    code = dock.call("setup_code")["code"]
    with pytest.raises(BadRequest, match="Mars/Olympus"):
        dock.call("setup", **form(code, timezone="Mars/Olympus"))
    with pytest.raises(BadRequest, match="language"):
        dock.call("setup", **form(code, locale="xx-XX"))
    assert dock.store.users() == []


def test_the_config_file_wins_over_the_setup_form(tmp_path: Path):
    (tmp_path / first_run.SETTINGS_NAME).write_text(
        first_run.settings_text("Praxis", "123", "Europe/Berlin", "de-DE"))
    stated = '[clinic]\nname = "From the file"\n'
    config = first_run.layered(parse_config(stated), stated, tmp_path)
    assert config.clinic.name == "From the file" and config.clinic.phone == "123"
    assert config.clinic.locale == "de-DE" and config.dock.timezone == "Europe/Berlin"
    assert first_run.layered(Config(), "", tmp_path / "none") == Config()


def test_pendock_setup_code_prints_it(dock, capsys):
    from appliance import cli

    code = dock.call("setup_code")["code"]
    args = cli.parse_command_line(["setup-code"])
    assert cli._setup_code(args, dock.client) == 0
    assert code in capsys.readouterr().out


def test_cli_status_gives_the_next_eligible_date_and_log_the_overrides():
    from appliance import cli

    status = {"docked": True, "held": True, "now": "2026-11-28T09:00:00+00:00", "clock_synced": True,
              "reasons": [{"kind": "lock", "code": "client_interval", "words": "Too recent.", "action": "Rebook.",
                           "detail": {"next_eligible_date": "2026-12-11"}}]}
    assert "Next eligible date: Friday 11 December 2026" in cli.format_status(status)
    session = {"id": 1, "started_at": "2026-11-28T09:00:00+00:00", "area": "face", "outcome": "completed",
               "warnings": [], "overrides": ["client_interval"]}
    assert "overridden: client_interval" in cli.format_log([session], "2026-11-28")
