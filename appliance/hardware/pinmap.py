"""The dock's pin map, loaded from hw/pinmap.toml and checked before any pin is touched.

Every pin number is written down once, in hw/ (see hw/README.md); this module is the only code
that reads it. A mistake in the file (a pin used twice, a typo in a key) is refused at load
with the file and the key named, so a miswired dock never starts driving pins.
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from appliance.core.resources import hw_file

# The roles the code asks for; hw/pinmap.toml must define each of them, and no other.
ROLES = ("seat", "latch", "light_red", "light_green", "light_blue", "buzzer", "button")

# Keys of one [pins.ROLE] table and the type each must have.
_PIN_KEYS: dict[str, type] = {"bcm": int, "direction": str, "pull": str, "active": str, "what": str}
_SPI_KEYS: dict[str, type] = {
    "port": int, "device": int, "clock": int, "mosi": int, "miso": int, "select": int,
    "max_hz": int, "mode": int,
}
_SPI_LINES = ("clock", "mosi", "miso", "select")  # the SPI keys that are BCM pins
_DIRECTIONS = ("input", "output")
_PULLS = ("up", "down", "none")
_ACTIVES = ("high", "low")
_BCM_RANGE = range(0, 28)  # GPIO0..GPIO27 on the 40-pin header

# GPIO0..8 come out of reset with the SoC's pull-UP on (9..27 pull down) and keep it until
# the daemon claims them: a latch there would be driven towards "energised" during boot.
_BOOT_PULLED_UP = range(0, 9)

# The Pi's hardware SPI buses: port -> (clock, mosi, miso, chip selects by device).
_HARDWARE_SPI = {0: (11, 10, 9, (8, 7)), 1: (21, 20, 19, (18, 17, 16))}


class PinMapError(ValueError):
    """hw/pinmap.toml is missing, unreadable or inconsistent; the message says where."""


@dataclass(frozen=True)
class PinSpec:
    """One role's pin, as the hardware shell needs it to build a gpiozero device."""

    role: str
    bcm: int
    direction: str  # "input" or "output"
    pull: str  # "up", "down" or "none"
    active_high: bool
    what: str

    @property
    def pull_up(self) -> bool | None:
        """gpiozero's `pull_up` argument: True, False, or None for no internal pull."""
        return {"up": True, "down": False, "none": None}[self.pull]


@dataclass(frozen=True)
class SpiSpec:
    """The pen link's SPI bus (hardware SPI `port`, chip select `device`) and its pins."""

    port: int
    device: int
    clock: int
    mosi: int
    miso: int
    select: int
    max_hz: int
    mode: int


@dataclass(frozen=True)
class PinMap:
    """All roles and the SPI bus, as loaded from `source`."""

    pins: dict[str, PinSpec]
    spi: SpiSpec
    source: Path

    def __getitem__(self, role: str) -> PinSpec:
        try:
            return self.pins[role]
        except KeyError:
            raise KeyError(f"no pin role {role!r} in {self.source}; roles are {', '.join(ROLES)}") from None


def load_pinmap(path: Path | None = None) -> PinMap:
    """Read and check the pin map; the shipped hw/pinmap.toml when `path` is None."""
    source = Path(path) if path is not None else hw_file("pinmap.toml")
    return parse_pinmap(_read_toml(source), source)


def parse_pinmap(document: dict[str, Any], source: Path) -> PinMap:
    """Check an already parsed pin map document; `source` names it in error messages."""
    check = _Checker(source)
    check.only_keys(document, ("pins", "spi"), where="")
    pins_table = check.table(document, "pins", where="")
    spi_table = check.table(document, "spi", where="")

    missing = [role for role in ROLES if role not in pins_table]
    if missing:
        check.fail(
            f"pins.{missing[0]}",
            f"missing; add a [pins.{missing[0]}] table (every role must be defined: {', '.join(ROLES)})",
        )
    for role in pins_table:
        if role not in ROLES:
            check.fail(f"pins.{role}", f"is not a role the dock knows; roles are {', '.join(ROLES)}")

    pins = {role: _parse_pin(check, role, check.table(pins_table, role, where="pins.")) for role in ROLES}
    _check_roles(check, pins)
    spi = _parse_spi(check, spi_table)
    _check_unique(check, pins, spi)
    return PinMap(pins=pins, spi=spi, source=source)


def _read_toml(source: Path) -> dict[str, Any]:
    try:
        with open(source, "rb") as file:
            return tomllib.load(file)
    except FileNotFoundError:
        raise PinMapError(f"{source}: pin map not found; reinstall the dock or point to a pin map file") from None
    except OSError as error:
        raise PinMapError(f"{source}: cannot read the pin map: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise PinMapError(f"{source}: not valid TOML: {error}; fix the file at that line") from None
    except UnicodeDecodeError:
        raise PinMapError(f"{source}: not valid TOML: the file is not UTF-8 text") from None


def _parse_pin(check: _Checker, role: str, table: dict[str, Any]) -> PinSpec:
    where = f"pins.{role}."
    check.only_keys(table, tuple(_PIN_KEYS), where=where)
    values = {key: check.value(table, key, kind, where=where) for key, kind in _PIN_KEYS.items()}
    check.bcm(values["bcm"], f"{where}bcm")
    check.choice(values["direction"], _DIRECTIONS, f"{where}direction")
    check.choice(values["pull"], _PULLS, f"{where}pull")
    check.choice(values["active"], _ACTIVES, f"{where}active")
    if values["direction"] == "output" and values["pull"] != "none":
        check.fail(f"{where}pull", f'is "{values["pull"]}" on an output; outputs take pull = "none"')
    pulled_level = {"up": "low", "down": "high"}.get(values["pull"])
    if pulled_level is not None and values["active"] != pulled_level:
        check.fail(
            f"{where}active",
            f'is "{values["active"]}" with pull "{values["pull"]}"; a pulled-{values["pull"]} input is '
            f'active "{pulled_level}" (gpiozero ties them), or set pull = "none" and wire an external resistor',
        )
    return PinSpec(
        role=role, bcm=values["bcm"], direction=values["direction"], pull=values["pull"],
        active_high=values["active"] == "high", what=values["what"],
    )


def _check_roles(check: _Checker, pins: dict[str, PinSpec]) -> None:
    """What each role's hardware can honour, beyond the file's own consistency.

    The latch is fail-secure: de-energised must mean held whenever the Pi is not driving the
    pin (booting, crashed, unpowered), when only the MOSFET gate's pull-down and the SoC's
    reset pull act on the line. Both pull it to "not energised" only if energised is high
    and the pin resets pulled down.
    """
    for role in ("seat", "button"):
        if pins[role].direction != "input":
            check.fail(f"pins.{role}.direction",
                       f'is "{pins[role].direction}"; the {role} is a switch the dock reads: use "input"')
    for role in ("latch", "light_red", "light_green", "light_blue", "buzzer"):
        if pins[role].direction != "output":
            check.fail(f"pins.{role}.direction", f'is "{pins[role].direction}"; the {role} is driven by the dock: use "output"')
    latch = pins["latch"]
    if not latch.active_high:
        check.fail(
            "pins.latch.active",
            'is "low": the latch\'s de-energised level would then be high, and a crashed or unpowered Pi '
            "leaves the line low (the MOSFET gate's pull-down), which would energise the solenoid and release "
            'the pen; the latch must be active "high" (high = energised = released)',
        )
    if latch.bcm in _BOOT_PULLED_UP:
        check.fail(
            "pins.latch.bcm",
            f"is BCM {latch.bcm}, which comes out of reset pulled up: during every boot the latch would be "
            f"pulled towards energised (released); use a pin from BCM 9..27, which reset pulled down",
        )


def _parse_spi(check: _Checker, table: dict[str, Any]) -> SpiSpec:
    where = "spi."
    check.only_keys(table, tuple(_SPI_KEYS), where=where)
    values = {key: check.value(table, key, kind, where=where) for key, kind in _SPI_KEYS.items()}
    for line in _SPI_LINES:
        check.bcm(values[line], f"{where}{line}")
    if values["mode"] not in range(4):
        check.fail(f"{where}mode", f"is {values['mode']}; an SPI mode is 0, 1, 2 or 3 (the pen speaks mode 0)")
    if values["max_hz"] <= 0:
        check.fail(f"{where}max_hz", f"is {values['max_hz']}; give a positive clock rate such as 500000")
    if values["port"] not in _HARDWARE_SPI:
        check.fail(f"{where}port", f"is {values['port']}; the Pi's hardware SPI ports are 0 and 1")
    clock, mosi, miso, selects = _HARDWARE_SPI[values["port"]]
    if values["device"] not in range(len(selects)):
        check.fail(
            f"{where}device",
            f"is {values['device']}; SPI{values['port']} has chip selects 0..{len(selects) - 1}",
        )
    expected = {"clock": clock, "mosi": mosi, "miso": miso, "select": selects[values["device"]]}
    for line, bcm in expected.items():
        if values[line] != bcm:
            check.fail(
                f"{where}{line}",
                f"is BCM {values[line]}, but SPI{values['port']} device {values['device']} uses BCM {bcm} "
                f"for {line}; use {bcm} or change port/device",
            )
    return SpiSpec(**values)


def _check_unique(check: _Checker, pins: dict[str, PinSpec], spi: SpiSpec) -> None:
    seen: dict[int, str] = {}
    users = [(f"pins.{role}.bcm", spec.bcm) for role, spec in pins.items()]
    users += [(f"spi.{line}", getattr(spi, line)) for line in _SPI_LINES]
    for key, bcm in users:
        if bcm in seen:
            check.fail(key, f"is BCM {bcm}, already used by {seen[bcm]}; "
                            "give each pin one use only (the SPI lines are fixed by the Pi)")
        seen[bcm] = key


class _Checker:
    """Raises PinMapError with the file and the dotted key named."""

    def __init__(self, source: Path):
        self.source = source

    def fail(self, key: str, problem: str) -> None:
        raise PinMapError(f"{self.source}: {key} {problem}")

    def only_keys(self, table: dict[str, Any], allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                self.fail(f"{where}{key}", f"is not a known key; allowed here: {', '.join(allowed)}")

    def table(self, parent: dict[str, Any], key: str, where: str) -> dict[str, Any]:
        if key not in parent:
            self.fail(f"{where}{key}", f"missing; add a [{where}{key}] table")
        if not isinstance(parent[key], dict):
            self.fail(f"{where}{key}", f"must be a table ([{where}{key}]), not {_kind(parent[key])}")
        table: dict[str, Any] = parent[key]
        return table

    def value(self, table: dict[str, Any], key: str, kind: type, where: str) -> Any:
        if key not in table:
            self.fail(f"{where}{key}", f"missing; add {key} = ... ({kind.__name__})")
        value = table[key]
        if type(value) is not kind:  # bool is an int subclass: refuse `bcm = true`
            self.fail(f"{where}{key}", f"must be {_KIND_NAMES[kind]}, not {_kind(value)} ({value!r})")
        return value

    def bcm(self, value: int, key: str) -> None:
        if value not in _BCM_RANGE:
            self.fail(key, f"is {value}; a BCM GPIO number on the header is 0..27")

    def choice(self, value: str, allowed: tuple[str, ...], key: str) -> None:
        if value not in allowed:
            self.fail(key, f"is {value!r}; use one of {', '.join(repr(a) for a in allowed)}")


_KIND_NAMES = {int: "an integer", str: "a string"}


def _kind(value: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            dict: "a table", list: "an array"}.get(type(value), type(value).__name__)
