"""The pin map: the shipped file loads, matches its human page, and every mistake is refused."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from appliance.hardware.pinmap import ROLES, PinMap, PinMapError, load_pinmap
from appliance.core.resources import hw_file

SHIPPED = hw_file("pinmap.toml").read_text(encoding="utf-8")


# BCM number -> physical pin of the 40-pin header (same on every 40-pin Pi): what hw/README
# tells the technician with a meter.
HEADER_PIN = {
    2: 3, 3: 5, 4: 7, 14: 8, 15: 10, 17: 11, 18: 12, 27: 13, 22: 15, 23: 16, 24: 18,
    10: 19, 9: 21, 25: 22, 11: 23, 8: 24, 7: 26, 0: 27, 1: 28, 5: 29, 6: 31, 12: 32,
    13: 33, 19: 35, 16: 36, 26: 37, 20: 38, 21: 40,
}


def write_variant(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "pinmap.toml"
    path.write_text(text, encoding="utf-8")
    return path


def replace_in_table(text: str, table: str, old: str, new: str) -> str:
    """Replace `old` with `new` inside one [table] of the shipped file only."""
    start = text.index(f"[{table}]\n")
    end = text.find("\n[", start + 1)
    end = len(text) if end == -1 else end
    section = text[start:end]
    assert old in section, f"{old!r} not in [{table}]"
    return text[:start] + section.replace(old, new, 1) + text[end:]


def refused(tmp_path: Path, text: str) -> str:
    path = write_variant(tmp_path, text)
    with pytest.raises(PinMapError) as caught:
        load_pinmap(path)
    message = str(caught.value)
    assert str(path) in message, "the error must name the file"
    return message


# --- the shipped map ---------------------------------------------------------------------

def test_shipped_map_defines_every_role_with_the_documented_polarities():
    pins = load_pinmap()
    assert isinstance(pins, PinMap)
    assert set(pins.pins) == set(ROLES)
    assert pins.source == hw_file("pinmap.toml")
    seat, latch, button = pins["seat"], pins["latch"], pins["button"]
    assert (seat.direction, seat.pull, seat.active_high, seat.pull_up) == ("input", "up", False, True)
    assert (button.direction, button.pull, button.active_high) == ("input", "up", False)
    # energised = released: the latch pin is driven high to let the pen go
    assert (latch.direction, latch.active_high, latch.pull_up) == ("output", True, None)
    for role in ("light_red", "light_green", "light_blue", "buzzer"):
        assert pins[role].direction == "output"


def test_shipped_spi_is_hardware_spi0_ce0_mode0():
    spi = load_pinmap().spi
    assert (spi.port, spi.device, spi.clock, spi.mosi, spi.miso, spi.select, spi.mode) == (0, 0, 11, 10, 9, 8, 0)
    assert 0 < spi.max_hz <= 1_000_000


def test_unknown_role_lookup_names_the_roles():
    with pytest.raises(KeyError, match="seat"):
        load_pinmap()["door"]


def test_readme_wiring_table_matches_the_pin_map():
    """hw/README.md is written by hand; this keeps it honest."""
    pins = load_pinmap()
    readme = hw_file("README.md").read_text(encoding="utf-8")
    rows = {
        match[1]: (int(match[2]), int(match[3]))
        for match in re.finditer(r"^\| (\w+) \| (\d+) \| (\d+) \|", readme, re.MULTILINE)
    }
    used = {role: spec.bcm for role, spec in pins.pins.items()}
    used.update({f"spi_{line}": getattr(pins.spi, line) for line in ("clock", "mosi", "miso", "select")})
    expected = {role: (bcm, HEADER_PIN[bcm]) for role, bcm in used.items()}
    assert {role: rows.get(role) for role in expected} == expected


# --- refusals ------------------------------------------------------------------------------

def test_missing_role_is_refused(tmp_path):
    text = re.sub(r"\[pins\.button\]\n(?:[^\[\n][^\n]*\n|\n)*", "", SHIPPED)
    assert "[pins.button]" not in text
    message = refused(tmp_path, text)
    assert "pins.button" in message and "missing" in message


def test_duplicate_bcm_is_refused_naming_both_keys(tmp_path):
    message = refused(tmp_path, replace_in_table(SHIPPED, "pins.latch", "bcm = 27", "bcm = 17"))
    assert "pins.latch.bcm" in message and "pins.seat.bcm" in message and "17" in message


def test_duplicate_with_an_spi_line_is_refused(tmp_path):
    message = refused(tmp_path, replace_in_table(SHIPPED, "pins.buzzer", "bcm = 25", "bcm = 10"))
    assert "spi.mosi" in message and "pins.buzzer.bcm" in message


def test_bad_direction_is_refused(tmp_path):
    message = refused(tmp_path, replace_in_table(SHIPPED, "pins.latch", '"output"', '"outptu"'))
    assert "pins.latch.direction" in message and "'input'" in message


@pytest.mark.parametrize(
    ("table", "old", "new", "key"),
    [
        ("pins.seat", 'pull = "up"', 'pull = "sideways"', "pins.seat.pull"),
        ("pins.buzzer", 'active = "high"', 'active = "on"', "pins.buzzer.active"),
        ("pins.latch", 'pull = "none"', 'pull = "down"', "pins.latch.pull"),  # pull on an output
        ("pins.button", 'active = "low"', 'active = "high"', "pins.button.active"),  # pull-up is active low
        ("pins.seat", "bcm = 17", "bcm = 28", "pins.seat.bcm"),
        ("pins.seat", "bcm = 17", "bcm = -1", "pins.seat.bcm"),
        ("pins.seat", "bcm = 17", 'bcm = "17"', "pins.seat.bcm"),
        ("pins.seat", "bcm = 17", "bcm = true", "pins.seat.bcm"),
        ("pins.seat", "bcm = 17", "bcm = 17\ncolour = 1", "pins.seat.colour"),
        ("pins.seat", "bcm = 17\n", "", "pins.seat.bcm"),
        ("spi", "mode = 0", "mode = 4", "spi.mode"),
        ("spi", "max_hz = 500000", "max_hz = 0", "spi.max_hz"),
        ("spi", "select = 8", "select = 7", "spi.select"),  # CE1 is device 1, not 0
        ("spi", "port = 0", "port = 2", "spi.port"),
        ("spi", "mode = 0", "mode = 0\nspeed = 1", "spi.speed"),
    ],
)
def test_bad_values_are_refused_naming_the_key(tmp_path, table, old, new, key):
    message = refused(tmp_path, replace_in_table(SHIPPED, table, old, new))
    assert key in message


def test_unknown_role_and_top_level_key_are_refused(tmp_path):
    extra_role = SHIPPED + '\n[pins.fan]\nbcm = 6\ndirection = "output"\npull = "none"\nactive = "high"\nwhat = "x"\n'
    assert "pins.fan" in refused(tmp_path, extra_role)
    assert "colour" in refused(tmp_path, "colour = 1\n" + SHIPPED)


def test_bad_toml_names_file_and_line(tmp_path):
    lines = SHIPPED.splitlines()
    lines.insert(4, "bcm = = 3")
    message = refused(tmp_path, "\n".join(lines))
    assert "not valid TOML" in message and "line 5" in message


def test_missing_file_is_refused(tmp_path):
    with pytest.raises(PinMapError, match="not found"):
        load_pinmap(tmp_path / "nope.toml")


# --- what the hardware cannot honour -------------------------------------------------------

def test_a_latch_active_low_is_refused_because_its_resting_level_would_release(tmp_path):
    message = refused(tmp_path, replace_in_table(SHIPPED, "pins.latch", 'active = "high"', 'active = "low"'))
    assert "pins.latch.active" in message and "release" in message and "crashed or unpowered" in message


def test_a_latch_on_a_pin_that_boots_pulled_up_is_refused(tmp_path):
    text = replace_in_table(SHIPPED, "pins.button", "bcm = 5", "bcm = 6")
    message = refused(tmp_path, replace_in_table(text, "pins.latch", "bcm = 27", "bcm = 5"))
    assert "pins.latch.bcm" in message and "pulled up" in message and "9..27" in message


@pytest.mark.parametrize(("role", "old", "new"), [
    ("seat", '"input"', '"output"'), ("button", '"input"', '"output"'), ("buzzer", '"output"', '"input"'),
])
def test_a_role_with_the_wrong_direction_is_refused(tmp_path, role, old, new):
    text = replace_in_table(SHIPPED, f"pins.{role}", old, new)
    if new == '"output"':
        text = replace_in_table(text, f"pins.{role}", 'pull = "up"', 'pull = "none"')
    message = refused(tmp_path, text)
    assert f"pins.{role}.direction" in message


@pytest.mark.parametrize("verb", ["demo", "daemon"])
def test_a_pin_map_the_latch_cannot_honour_stops_the_start_with_exit_2(tmp_path, verb):
    from tests.unit.test_cli import run

    bad = write_variant(tmp_path, replace_in_table(SHIPPED, "pins.latch", 'active = "high"', 'active = "low"'))
    result = run(verb, "--data", str(tmp_path / "d"), env={"PENDOCK_PINMAP": str(bad)})
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pins.latch.active" in lines[0] and "release the pen" in lines[0]
    assert not (tmp_path / "d" / "pendock.db").exists()  # refused before anything was opened
