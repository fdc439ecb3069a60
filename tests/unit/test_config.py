"""The config: defaults, the shipped file, and bad files refused with file, line and key."""
from __future__ import annotations

import os
import tomllib
from dataclasses import fields
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from appliance.core.config import (
    DEFAULT_CONFIG_PATH,
    Config,
    ConfigError,
    default_config_text,
    load_config,
    parse_config,
    resolve_config_path,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pendock.toml"
    path.write_text(text, encoding="utf-8")
    return path


def refused(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path} line "), message
    return message


def test_defaults_are_the_clinical_basis():
    config = Config()
    rules = config.rules
    assert (rules.min_interval_days, rules.recommended_interval_days) == (21, 28)
    assert (rules.course_max_treatments, rules.course_window_days) == (6, 180)
    assert (rules.max_needling_minutes, rules.session_overrun_minutes) == (30, 90)
    assert rules.service_interval_hours == 50 and rules.battery_min_mv == 3600
    assert rules.checklist_required is False
    assert dict(config.areas.max_depth_mm) == {
        "face": 1.5, "forehead": 1.0, "eyes": 0.5, "nose": 1.0, "neck": 1.0,
        "decolletage": 1.0, "hands": 0.5, "scalp": 1.0, "body": 2.0,
    }
    assert config.areas.default_area == "face"
    assert (config.dock.timezone, config.dock.readout_retries, config.dock.poll_interval_s) == ("UTC", 3, 0.5)
    assert (config.web.host, config.web.port) == ("127.0.0.1", 8080)
    assert config.store.retention_days == 3650
    assert config.tz == ZoneInfo("UTC")


def test_none_or_a_missing_file_means_defaults(tmp_path):
    assert load_config(None) == Config()
    assert load_config(tmp_path / "absent.toml") == Config()
    assert load_config(write(tmp_path, "")) == Config()


def test_the_shipped_file_is_exactly_the_defaults():
    text = default_config_text()
    assert parse_config(text) == Config()
    shipped = tomllib.loads(text)
    for section in fields(Config):  # every setting is written out, none left implicit
        written = set(shipped[section.name])
        assert written == {f.name for f in fields(getattr(Config(), section.name))}, section.name


def test_the_shipped_file_explains_every_rule_setting():
    text = default_config_text()
    lines = text.splitlines()
    for key in tomllib.loads(text)["rules"]:
        at = next(i for i, line in enumerate(lines) if line.startswith(f"{key} ="))
        assert lines[at - 1].startswith("#"), f"{key} has no comment above it"


def test_a_file_changes_only_what_it_sets(tmp_path):
    config = load_config(write(tmp_path, """
[rules]
min_interval_days = 28
recommended_interval_days = 35
checklist_required = true

[dock]
timezone = "Europe/London"

[areas.max_depth_mm]
face = 1.2
lips = 0.3
"""))
    assert config.rules.min_interval_days == 28 and config.rules.recommended_interval_days == 35
    assert config.rules.checklist_required is True
    assert config.rules.max_needling_minutes == 30
    assert config.tz == ZoneInfo("Europe/London")
    assert dict(config.areas.max_depth_mm) == {"face": 1.2, "lips": 0.3}  # the table is the whole list
    assert config.web == Config().web


def test_the_config_is_immutable():
    config = Config()
    with pytest.raises(AttributeError):
        config.rules.min_interval_days = 1  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.areas.max_depth_mm["face"] = 3.0  # type: ignore[index]


def test_the_readme_example_message(tmp_path):
    message = refused(tmp_path, "# clinic settings\n\n[rules]\n# shorter\nmin_interval_days = -3\n")
    assert message.endswith(" line 5: rules.min_interval_days must be a whole number of days from 1 to 365, got -3")


@pytest.mark.parametrize("setting, value, line, words", [
    ("rules.min_interval_days", "0", 3, "whole number of days"),
    ("rules.min_interval_days", "21.5", 3, "whole number of days"),
    ("rules.recommended_interval_days", '"28"', 3, "whole number of days"),
    ("rules.course_max_treatments", "0", 3, "whole number from 1"),
    ("rules.course_window_days", "-1", 3, "whole number of days"),
    ("rules.max_needling_minutes", "true", 3, "whole number of minutes"),
    ("rules.session_overrun_minutes", "100000", 3, "whole number of minutes"),
    ("rules.service_interval_hours", "0", 3, "number of hours above 0"),
    ("rules.battery_min_mv", "36", 3, "millivolts"),
    ("rules.checklist_required", '"yes"', 3, "true or false"),
    ("areas.default_area", "3", 3, "string"),
    ("dock.timezone", '"Mars/Olympus"', 3, "IANA time zone"),
    ("dock.timezone", '"Europe"', 3, "IANA time zone"),
    ("dock.readout_retries", "-1", 3, "whole number"),
    ("dock.poll_interval_s", "0", 3, "seconds"),
    ("web.host", '""', 3, "non-empty"),
    ("web.port", "70000", 3, "from 1 to 65535"),
    ("store.retention_days", "-1", 3, "whole number of days"),
])
def test_each_bad_value_is_named_with_file_line_and_key(tmp_path, setting, value, line, words):
    section, key = setting.split(".")
    message = refused(tmp_path, f"[{section}]\n# a comment\n{key} = {value}\n")
    assert f" line {line}: {setting} " in message
    assert words in message
    assert f"got {value}" in message


@pytest.mark.parametrize("depth", ["0", "-1", "3.05", '"1.5"'])
def test_bad_depths_are_refused(tmp_path, depth):
    message = refused(tmp_path, f"[areas.max_depth_mm]\nface = 1.5\n\nneck = {depth}\n")
    assert f" line 4: areas.max_depth_mm.neck must be a depth in mm above 0 and at most 3.0, got {depth}" in message


def test_depth_limit_of_3_mm_is_allowed(tmp_path):
    assert load_config(write(tmp_path, "[areas.max_depth_mm]\nface = 3.0\n")).areas.max_depth_mm["face"] == 3.0


def test_dotted_and_inline_area_depths_are_located(tmp_path):
    assert " line 3: areas.max_depth_mm.eyes " in refused(tmp_path, "[areas]\n\nmax_depth_mm.eyes = 9\n")
    assert " line 2: areas.max_depth_mm.face " in refused(
        tmp_path, '[areas]\nmax_depth_mm = { face = 9 }\ndefault_area = "face"\n')


def test_bad_area_names_are_refused(tmp_path):
    message = refused(tmp_path, '[areas.max_depth_mm]\nface = 1.5\n"Upper Lip" = 0.5\n')
    assert " line 3: areas.max_depth_mm.Upper Lip is not a usable area name" in message


def test_unknown_section_is_refused_with_a_suggestion(tmp_path):
    message = refused(tmp_path, "[rules]\nmin_interval_days = 21\n\n[rulez]\nx = 1\n")
    assert " line 4: rulez is not a config section" in message
    assert 'did you mean "rules"' in message


def test_unknown_key_is_refused_not_defaulted(tmp_path):
    message = refused(tmp_path, "[dock]\ntimezone = \"UTC\"\n[rules]\nmin_intervall_days = 30\n")
    assert " line 4: rules.min_intervall_days is not a known setting" in message
    assert 'did you mean "min_interval_days"' in message


def test_a_key_outside_any_section_is_refused(tmp_path):
    message = refused(tmp_path, '\ntimezone = "UTC"\n')
    assert " line 2: timezone " in message and "[dock]" in message


def test_the_same_key_in_two_sections_is_found_in_the_right_one(tmp_path):
    text = "[web]\nport = 8080\n\n[store]\nretention_days = 3650\n[web2]\n"
    assert " line 6: web2 " in refused(tmp_path, text)
    text = '[dock]\ntimezone = "UTC"\n[rules]\n"timezone" = "UTC"\n'
    assert " line 4: rules.timezone " in refused(tmp_path, text)


@pytest.mark.parametrize("text, line", [
    ("[rules]\nmin_interval_days = \n", 2),
    ("[rules]\nmin_interval_days 21\n", 2),
    ("[rules]\n[rules]\n", 2),
    ('[web]\nhost = "127.0.0.1\n', 2),
    ("[rules]\nmin_interval_days = 21\nmin_interval_days = 22\n", 3),
])
def test_syntax_errors_name_file_and_line(tmp_path, text, line):
    message = refused(tmp_path, text)
    assert f" line {line}: TOML syntax error" in message


def test_a_file_that_is_not_utf8_is_refused(tmp_path):
    path = tmp_path / "pendock.toml"
    path.write_bytes(b"[web]\nhost = \"\xff\"\n")
    with pytest.raises(ConfigError, match=r"line 2: .*not UTF-8"):
        load_config(path)


def test_an_unreadable_path_is_refused_with_the_file(tmp_path):
    with pytest.raises(ConfigError, match=str(tmp_path)):
        load_config(tmp_path)  # a folder, not a file


def test_recommended_interval_below_the_minimum_is_refused(tmp_path):
    message = refused(tmp_path, "[rules]\nmin_interval_days = 21\nrecommended_interval_days = 14\n")
    assert " line 3: rules.recommended_interval_days " in message and "at least min_interval_days" in message
    message = refused(tmp_path, "[rules]\n\nmin_interval_days = 35\n")  # recommended left at 28
    assert " line 3: rules.min_interval_days " in message


def test_overrun_shorter_than_needling_is_refused(tmp_path):
    message = refused(tmp_path, "[rules]\nsession_overrun_minutes = 20\n")
    assert " line 2: rules.session_overrun_minutes " in message and "max_needling_minutes" in message


def test_default_area_must_be_one_of_the_areas(tmp_path):
    message = refused(tmp_path, '[areas]\ndefault_area = "lips"\n')
    assert ' line 2: areas.default_area is wrong: default_area "lips" is not one of the areas' in message
    message = refused(tmp_path, "[areas]\n[areas.max_depth_mm]\nneck = 1.0\n")
    assert " line 2: areas.max_depth_mm " in message and '"face"' in message


def test_retention_must_cover_what_the_rules_count(tmp_path):
    message = refused(tmp_path, "[store]\nretention_days = 90\n")
    assert " line 2: store.retention_days must be 0 (keep forever) or at least 180 days" in message
    assert load_config(write(tmp_path, "[store]\nretention_days = 0\n")).store.retention_days == 0
    assert load_config(write(tmp_path, "[store]\nretention_days = 180\n")).store.retention_days == 180


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


def test_resolve_config_path_order():
    assert resolve_config_path("/tmp/a.toml", {"PENDOCK_CONFIG": "/tmp/b.toml"}) == Path("/tmp/a.toml")
    assert resolve_config_path(None, {"PENDOCK_CONFIG": "/tmp/b.toml"}) == Path("/tmp/b.toml")
    assert resolve_config_path(None, {}) == Path("/etc/pendock/pendock.toml") == DEFAULT_CONFIG_PATH
    assert resolve_config_path(None, {"PENDOCK_CONFIG": ""}) == DEFAULT_CONFIG_PATH
    assert resolve_config_path(None, os.environ.copy() | {"PENDOCK_CONFIG": "~/x.toml"}).is_absolute()
