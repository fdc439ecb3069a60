"""The dock's settings: TOML, every default citing the clinical notes, checked at load.

A bad file is refused whole, with the file, line and key named, because a typo that
silently fell back to a default could release a pen the clinic meant to hold. The shipped
`appliance/core/pendock.toml` is the commented copy of these defaults.
"""
from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from appliance.core.broker import parse_broker

DEFAULT_CONFIG_PATH = Path("/etc/pendock/pendock.toml")
CONFIG_ENV = "PENDOCK_CONFIG"

# Deepest allowed needle depth per treatment area, mm (docs/clinical-basis.md: published
# protocols, shallower over bone, as the clinical notes ask for bony areas).
DEFAULT_MAX_DEPTH_MM: Mapping[str, float] = MappingProxyType(
    {
        "face": 1.5,
        "forehead": 1.0,
        "eyes": 0.5,
        "nose": 1.0,
        "neck": 1.0,
        "decolletage": 1.0,
        "hands": 0.5,
        "scalp": 1.0,
        "body": 2.0,
    }
)
MAX_DEPTH_LIMIT_MM = 3.0  # no area may be configured deeper than this
_AREA_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class ConfigError(ValueError):
    """The config file cannot be used; the message names the file, line and key."""


@dataclass(frozen=True)
class Rules:
    min_interval_days: int = 21  # client_interval lock: "less than 3 weeks apart"
    recommended_interval_days: int = 28  # interval_short warning: "one month apart"
    course_max_treatments: int = 6  # course_complete: "4-6 treatments"
    course_window_days: int = 180  # "then twice a year"
    max_needling_minutes: int = 30  # over_needling: "20-30 minutes of needling"
    session_overrun_minutes: int = 90  # session_overrun: a session is "about 45mins"
    service_interval_hours: float = 50  # service_due: motor hours between services
    battery_min_mv: int = 3600  # battery_low: charge for a 30-minute session
    checklist_required: bool = False  # true: checklist_missing is a lock

    @property
    def history_days(self) -> int:
        """How far back the interval and course rules look: retention keeps at least this."""
        return max(self.course_window_days, self.recommended_interval_days)


@dataclass(frozen=True)
class Areas:
    default_area: str = "face"
    max_depth_mm: Mapping[str, float] = field(default_factory=lambda: DEFAULT_MAX_DEPTH_MM)


@dataclass(frozen=True)
class Dock:
    timezone: str = "UTC"  # IANA name; "today" and eligible dates are in this zone
    readout_retries: int = 3  # a bad CRC is retried this many times
    poll_interval_s: float = 0.5


@dataclass(frozen=True)
class Web:
    host: str = "127.0.0.1"
    port: int = 8080
    session_hours: int = 12  # a login ends this long after it began, however active (S1, S5)


@dataclass(frozen=True)
class Store:
    retention_days: int = 3650  # 0 keeps records forever


@dataclass(frozen=True)
class Clinic:
    """Printed on the aftercare card: whom the client calls, and how dates are written."""

    name: str = ""  # empty: the card says "the clinic"
    phone: str = ""
    locale: str = "en-GB"  # dates with weekday, e.g. "Saturday 28 November 2026"


@dataclass(frozen=True)
class Fleet:
    """Several docks sharing one history over an MQTT broker (README "Setting up a clinic")."""

    broker: str = ""  # mqtt://HOST:PORT or mqtts://HOST:PORT; empty: this dock works alone
    dock_id: str = ""  # this dock's name in the clinic, e.g. "room-1"
    username: str = ""  # the broker login (default: the dock id)
    password_file: str = ""  # the broker password, alone in a file only the dock reads
    key_file: str = ""  # this dock's Ed25519 signing key (PEM)
    keys_dir: str = ""  # the clinic's public keys, <dock_id>.pub each
    tls_ca_file: str = ""  # mqtts: the CA that signed the broker's certificate
    stale_after_minutes: float = 10  # fleet_stale after this long without the broker
    stale_is_lock: bool = False  # true: a stale history holds the pen
    # The clinic's id in a chain (README "A chain's records in one place"); set, this dock
    # keeps each event until the chain's worker acknowledged it too. Empty: no chain.
    clinic: str = ""


@dataclass(frozen=True)
class Cartridges:
    # Pens whose link carries no chip exchange: cartridge_unverified is a warning, or a
    # lock when true (a clinic whose pens all speak it closes the downgrade).
    require_authentication: bool = False
    makers_dir: str = "/etc/pendock/makers"  # one PEM public key per trusted maker


@dataclass(frozen=True)
class Config:
    rules: Rules = field(default_factory=Rules)
    areas: Areas = field(default_factory=Areas)
    dock: Dock = field(default_factory=Dock)
    web: Web = field(default_factory=Web)
    store: Store = field(default_factory=Store)
    clinic: Clinic = field(default_factory=Clinic)
    fleet: Fleet = field(default_factory=Fleet)
    cartridges: Cartridges = field(default_factory=Cartridges)

    @property
    def tz(self) -> ZoneInfo:
        """The dock's time zone: what "today" means on the page and in the log."""
        return ZoneInfo(self.dock.timezone)


def resolve_config_path(cli_path: str | None, environ: Mapping[str, str]) -> Path:
    """--config, else $PENDOCK_CONFIG, else /etc/pendock/pendock.toml (as the README says)."""
    chosen = cli_path or environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH
    return Path(chosen).expanduser()


def default_config_text() -> str:
    """The shipped, commented config file: a starting point for /etc/pendock/pendock.toml."""
    return (resources.files("appliance.core") / "pendock.toml").read_text(encoding="utf-8")


def load_config(path: Path | None) -> Config:
    """Read and check the config; None or a missing file means the defaults."""
    if path is None:
        return Config()
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config file: {exc.strerror or exc}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"{path} line {line}: the file is not UTF-8 text") from exc
    return parse_config(text, source=str(path))


def parse_config(text: str, source: str = "<config>") -> Config:
    """Check TOML text as a config; errors name `source`, the line and the key."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source} line {_syntax_error_line(exc, text)}: TOML syntax error: {exc}") from exc
    return _Checker(text, source).build(data)


# --- checking values --------------------------------------------------------------------


class _Bad(Exception):
    """A value is wrong; the message says what it must be."""


Check = Callable[[Any], Any]


def _whole(low: int, high: int, unit: str = "") -> Check:
    what = f"a whole number of {unit} from {low} to {high}" if unit else f"a whole number from {low} to {high}"

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise _Bad(f"must be {what}")
        return value

    return check


def _number(above: float, high: float, unit: str) -> Check:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not above < value <= high:
            raise _Bad(f"must be a number of {unit} above {above:g} and at most {high:g}")
        return value

    return check


def _boolean(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _Bad("must be true or false")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _Bad("must be a non-empty quoted string")
    return value


def _timezone(value: Any) -> str:
    try:
        name = _text(value)
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError, _Bad):
        raise _Bad('must be an IANA time zone name such as "UTC" or "Europe/London"') from None
    return name


def _short_text(limit: int) -> Check:
    def check(value: Any) -> str:
        if not isinstance(value, str) or len(value) > limit or any(ord(c) < 32 for c in value):
            raise _Bad(f"must be a quoted string of at most {limit} characters on one line")
        return value.strip()

    return check


def _locale(value: Any) -> str:
    from appliance.core.dates import LOCALES

    if value not in LOCALES:
        raise _Bad(f"must be one of {', '.join(sorted(LOCALES))}")
    return str(value)


def _depth(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_DEPTH_LIMIT_MM:
        raise _Bad(f"must be a depth in mm above 0 and at most {MAX_DEPTH_LIMIT_MM}")
    return float(value)


def _optional_text(value: Any) -> str:
    if not isinstance(value, str):
        raise _Bad('must be a quoted string ("" for none)')
    return value


def _broker(value: Any) -> str:
    """The broker's one rule (appliance/core/broker.py), applied here, at load."""
    text = _optional_text(value)
    if text:
        try:
            parse_broker(text)
        except ValueError as error:
            raise _Bad(f"must be mqtt://HOST:PORT or mqtts://HOST:PORT with a port from 1 to "
                       f"65535 ({error})") from None
    return text


def _dock_id(value: Any) -> str:
    if not isinstance(value, str) or value and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", value):
        raise _Bad("must be a dock id: lower-case letters, digits and '-', at most 32")
    return value


def _clinic_id(value: Any) -> str:
    if not isinstance(value, str) or value and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,31}", value):
        raise _Bad("must be a clinic id: lower-case letters, digits and '-', at most 32 (e.g. north)")
    return value


_SCHEMA: dict[str, dict[str, Check]] = {
    "rules": {
        "min_interval_days": _whole(1, 365, "days"),
        "recommended_interval_days": _whole(1, 365, "days"),
        "course_max_treatments": _whole(1, 100),
        "course_window_days": _whole(1, 3650, "days"),
        "max_needling_minutes": _whole(1, 240, "minutes"),
        "session_overrun_minutes": _whole(1, 1440, "minutes"),
        "service_interval_hours": _number(0, 100_000, "hours"),
        "battery_min_mv": _whole(2500, 5000, "millivolts"),
        "checklist_required": _boolean,
    },
    "areas": {"default_area": _text, "max_depth_mm": lambda v: v},  # max_depth_mm: see below
    "dock": {
        "timezone": _timezone,
        "readout_retries": _whole(0, 10, "retries"),
        "poll_interval_s": _number(0, 10, "seconds"),
    },
    "web": {"host": _text, "port": _whole(1, 65535), "session_hours": _whole(1, 168, "hours")},
    "store": {"retention_days": _whole(0, 36500, "days")},
    "clinic": {"name": _short_text(80), "phone": _short_text(40), "locale": _locale},
    "fleet": {
        "broker": _broker,
        "dock_id": _dock_id,
        "username": _optional_text,
        "password_file": _optional_text,
        "key_file": _optional_text,
        "keys_dir": _optional_text,
        "tls_ca_file": _optional_text,
        "stale_after_minutes": _number(0, 10_080, "minutes"),
        "stale_is_lock": _boolean,
        "clinic": _clinic_id,
    },
    "cartridges": {"require_authentication": _boolean, "makers_dir": _text},
}
_SECTIONS = {"rules": Rules, "areas": Areas, "dock": Dock, "web": Web, "store": Store, "clinic": Clinic,
             "fleet": Fleet, "cartridges": Cartridges}
assert all({f.name for f in fields(cls)} == set(_SCHEMA[name]) for name, cls in _SECTIONS.items())


class _Checker:
    """Turns parsed TOML into a Config, or a ConfigError that points at the line."""

    def __init__(self, text: str, source: str):
        self.source = source
        self.lines = _key_lines(text)

    def fail(self, key: str, message: str, value: Any = None, *, show_value: bool = True) -> ConfigError:
        got = f", got {_show(value)}" if show_value else ""
        return ConfigError(f"{self.source} line {self.line_of(key)}: {key} {message}{got}")

    def line_of(self, key: str) -> int:
        """The line that sets `key`, else the nearest enclosing table or key, else 1."""
        parts = tuple(key.split("."))
        for length in range(len(parts), 0, -1):
            if parts[:length] in self.lines:
                return self.lines[parts[:length]]
        return 1

    def build(self, data: dict[str, Any]) -> Config:
        sections: dict[str, Any] = {}
        for name, table in data.items():
            if name not in _SCHEMA:
                hint = _did_you_mean(name, _SCHEMA)
                raise self.fail(name, f"is not a config section{hint}; the sections are "
                                f"{', '.join('[' + s + ']' for s in _SCHEMA)}", show_value=False)
            if not isinstance(table, dict):
                raise self.fail(name, f"must be a section [{name}], not a single value", table)
            sections[name] = self.section(name, table)
        config = Config(**sections)
        self.cross_check(config, data)
        return config

    def section(self, name: str, table: dict[str, Any]) -> Any:
        schema = _SCHEMA[name]
        values: dict[str, Any] = {}
        for key, value in table.items():
            dotted = f"{name}.{key}"
            if key not in schema:
                hint = _did_you_mean(key, schema)
                raise self.fail(dotted, f"is not a known setting{hint}; [{name}] takes "
                                f"{', '.join(schema)}", show_value=False)
            if dotted == "areas.max_depth_mm":
                values[key] = self.depths(value)
                continue
            try:
                values[key] = schema[key](value)
            except _Bad as bad:
                raise self.fail(dotted, str(bad), value) from None
        return _SECTIONS[name](**values)

    def depths(self, table: Any) -> Mapping[str, float]:
        if not isinstance(table, dict) or not table:
            raise self.fail("areas.max_depth_mm", "must be a table of area = depth in mm, "
                            "such as [areas.max_depth_mm] face = 1.5", table)
        depths: dict[str, float] = {}
        for area, depth in table.items():
            key = f"areas.max_depth_mm.{area}"
            if not _AREA_NAME.fullmatch(area):
                raise self.fail(key, "is not a usable area name: use lower-case letters, digits, "
                                "'-' or '_', starting with a letter, at most 32 characters",
                                show_value=False)
            try:
                depths[area] = _depth(depth)
            except _Bad as bad:
                raise self.fail(key, str(bad), depth) from None
        return MappingProxyType(depths)

    def cross_check(self, config: Config, data: dict[str, Any]) -> None:
        """Settings that only make sense together; blame the one the file actually sets."""

        def blame(*keys: str) -> str:
            for key in keys:
                section, _, name = key.partition(".")
                if name in data.get(section, {}):
                    return key
            return keys[0]

        rules, areas, store = config.rules, config.areas, config.store
        if rules.recommended_interval_days < rules.min_interval_days:
            key = blame("rules.recommended_interval_days", "rules.min_interval_days")
            raise self.fail(key, f"is wrong: recommended_interval_days ({rules.recommended_interval_days}) "
                            f"must be at least min_interval_days ({rules.min_interval_days})", show_value=False)
        if rules.session_overrun_minutes < rules.max_needling_minutes:
            key = blame("rules.session_overrun_minutes", "rules.max_needling_minutes")
            raise self.fail(key, f"is wrong: session_overrun_minutes ({rules.session_overrun_minutes}) "
                            f"must be at least max_needling_minutes ({rules.max_needling_minutes})",
                            show_value=False)
        if areas.default_area not in areas.max_depth_mm:
            key = blame("areas.default_area", "areas.max_depth_mm")
            raise self.fail(key, f"is wrong: default_area {_show(areas.default_area)} is not one of the "
                            f"areas in [areas.max_depth_mm] ({', '.join(areas.max_depth_mm)})", show_value=False)
        needed = rules.history_days
        if config.fleet.broker and not config.fleet.dock_id:
            raise self.fail("fleet.broker", "is set but fleet.dock_id is not: name this dock "
                            '(dock_id = "room-1")', show_value=False)
        if 0 < store.retention_days < needed:
            raise self.fail("store.retention_days", f"must be 0 (keep forever) or at least {needed} days, "
                            "or the interval and course rules would lose the treatments they count",
                            store.retention_days)


def _show(value: Any) -> str:
    """A value as it would be written in TOML, so the user recognises it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, dict):
        return "a table"
    return str(value)


def _did_you_mean(word: str, known: Mapping[str, Any]) -> str:
    import difflib  # only for a config with a mistake: not kept by the daemon for months (P4)

    close = difflib.get_close_matches(word, list(known), n=1)
    return f' (did you mean "{close[0]}"?)' if close else ""


def _syntax_error_line(exc: tomllib.TOMLDecodeError, text: str) -> int:
    found = re.search(r"at line (\d+)", str(exc))
    if found:
        return int(found.group(1))
    return max(1, text.count("\n") + (0 if text.endswith("\n") else 1))  # "at end of document"


_HEADER = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_ASSIGNMENT = re.compile(r"^\s*([A-Za-z0-9_\-\"'. ]+?)\s*=")


def _key_lines(text: str) -> dict[tuple[str, ...], int]:
    """Where each table and key is written: tomllib keeps no line numbers.

    A plain scan is enough for a config file: table headers set the prefix, `key =` lines
    add to it. Dotted and quoted keys are understood; inline tables point at their key.
    """
    found: dict[tuple[str, ...], int] = {}
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), start=1):
        header = _HEADER.match(line)
        if header:
            table = _split_key(header.group(1))
            found.setdefault(table, number)
            continue
        assignment = _ASSIGNMENT.match(line)
        if assignment:
            found.setdefault(table + _split_key(assignment.group(1)), number)
    return found


def _split_key(key: str) -> tuple[str, ...]:
    return tuple(part.strip().strip("\"'") for part in key.split("."))


def replace_rules(config: Config, **changes: Any) -> Config:
    """A copy of `config` with some rule settings changed (handy in tests and the simulator)."""
    return replace(config, rules=replace(config.rules, **changes))
