"""The clinic's first-run settings: what the setup form chose (clinic name and phone, time
zone, language), kept in the data folder as a small TOML file beside the record.

They sit under the config file: a key the config file sets wins; one it leaves out comes
from here. So a clinic set up from the page never has to edit TOML over SSH, and a
technician's config file still has the last word (README, "First run").
"""
from __future__ import annotations

import json
import tomllib
from dataclasses import replace
from pathlib import Path

from appliance.core.config import Config, ConfigError, parse_config
from appliance.core.dates import LOCALES

SETTINGS_NAME = "first-run.toml"
SETUP_CODE_NAME = "setup-code"
# The languages the page speaks in full (web/translations); the dates know more.
LANGUAGES = {"en-GB": "English (UK)", "en-US": "English (US)", "de-DE": "Deutsch"}
SETTING_KEYS = {"clinic": ("name", "phone", "locale"), "dock": ("timezone",)}


def settings_text(clinic_name: str, phone: str, timezone: str, locale: str) -> str:
    """The settings file for these choices (JSON strings are valid TOML basic strings)."""
    return ("# Written by the dock's first-run form; the config file's own keys win over these.\n"
            f"[clinic]\nname = {json.dumps(clinic_name)}\nphone = {json.dumps(phone)}\n"
            f"locale = {json.dumps(locale)}\n\n[dock]\ntimezone = {json.dumps(timezone)}\n")


def check_settings(clinic_name: str, phone: str, timezone: str, locale: str) -> Config:
    """The choices as a config, checked by the config file's own rules (ConfigError if not)."""
    if locale not in LANGUAGES or locale not in LOCALES:
        raise ConfigError(f"language {locale[:20]!r} is not one the page speaks: choose one of "
                          f"{', '.join(LANGUAGES)}")
    return parse_config(settings_text(clinic_name, phone, timezone, locale), source="the setup form")


def layered(config: Config, config_text: str, data_dir: Path) -> Config:
    """`config` with the first-run settings filled in where the config file is silent."""
    path = Path(data_dir) / SETTINGS_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError):
        return config
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the first-run settings: {exc}") from exc
    chosen = parse_config(text, source=str(path))
    stated = tomllib.loads(config_text) if config_text else {}
    for section, keys in SETTING_KEYS.items():
        left_out = {key: getattr(getattr(chosen, section), key) for key in keys
                    if key not in (stated.get(section) or {})}
        config = replace(config, **{section: replace(getattr(config, section), **left_out)})
    return config
