"""The pin map reaches the pins as written: for every variant the map accepts, the PHYSICAL
pin level on gpiozero's mock factory is the one the map says means seated, pressed, held,
lit and sounding.

The code's own idea of "active" is not trusted here: the test drives and reads raw pin
levels (high/low) and compares them with the map's `active` key, so a device built with
the wrong polarity or pull (as the seat once was with `pull = "none"`) fails.
"""
from __future__ import annotations

import itertools

import pytest
from gpiozero import Device
from gpiozero.pins.mock import MockFactory
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from appliance.core.resources import hw_file
from appliance.hardware.devices import COLOURS, DockHardware
from appliance.hardware.pinmap import PinMapError, load_pinmap

SHIPPED = hw_file("pinmap.toml").read_text(encoding="utf-8")
INPUTS = ("seat", "button")
OUTPUTS = ("latch", "light_red", "light_green", "light_blue", "buzzer")
INPUT_VARIANTS = tuple(itertools.product(("up", "down", "none"), ("high", "low")))
OUTPUT_VARIANTS = tuple(("none", active) for active in ("high", "low"))


def with_polarity(text: str, role: str, pull: str, active: str) -> str:
    """The shipped map with one role's pull and active level replaced."""
    start = text.index(f"[pins.{role}]\n")
    end = text.find("\n[", start + 1)
    lines = text[start:end].splitlines()
    for index, line in enumerate(lines):
        if line.startswith("pull ="):
            lines[index] = f'pull = "{pull}"'
        elif line.startswith("active ="):
            lines[index] = f'active = "{active}"'
    return text[:start] + "\n".join(lines) + text[end:]


def level(active: str, on: bool) -> int:
    """The physical level (1 high, 0 low) of a pin that is `on` under `active`."""
    return int(on) if active == "high" else int(not on)


def check_levels(tmp_path, variant: dict[str, tuple[str, str]]) -> None:
    """Load the map with `variant` applied; if accepted, check every role's physical level."""
    text = SHIPPED
    for role, (pull, active) in variant.items():
        text = with_polarity(text, role, pull, active)
    path = tmp_path / "variant.toml"
    path.write_text(text, encoding="utf-8")
    try:
        pinmap = load_pinmap(path)
    except PinMapError as error:
        # A refusal must name one of the varied roles; the accepted variants are checked below.
        assert any(f"pins.{role}." in str(error) for role in variant), str(error)
        return
    factory = MockFactory()
    previous, Device.pin_factory = Device.pin_factory, factory
    hw = DockHardware.from_pinmap(pinmap, pin_factory=factory)
    try:
        _check(pinmap, factory, hw)
    finally:
        hw.close()
        factory.reset()
        Device.pin_factory = previous


def _check(pinmap, factory, hw) -> None:
    spec = pinmap.pins
    active = {role: "high" if spec[role].active_high else "low" for role in spec}
    pin = {role: factory.pin(spec[role].bcm) for role in spec}

    # Seated: the hall switch holds the line at the map's active level.
    for seated in (True, False, True):
        drive(pin["seat"], level(active["seat"], seated))
        assert hw.seat.raw() is seated, f"seat {active['seat']=} {spec['seat'].pull=} line {pin['seat'].state}"
    # Pressed: the button holds its line at the map's active level.
    for pressed in (True, False):
        drive(pin["button"], level(active["button"], pressed))
        assert hw.button.is_pressed is pressed, f"button {active['button']=} line {pin['button'].state}"

    # Held: the latch's de-energised level, from the first moment, and after every hold.
    assert pin["latch"].state == level(active["latch"], False), "the latch must start de-energised (held)"
    hw.latch.release()
    assert pin["latch"].state == level(active["latch"], True)
    hw.latch.hold()
    assert pin["latch"].state == level(active["latch"], False)

    # Lit: each colour pin with its OWN polarity.
    for colour, rgb in COLOURS.items():
        hw.light.show(colour)
        for role, on in zip(("light_red", "light_green", "light_blue"), rgb, strict=True):
            assert pin[role].state == level(active[role], bool(on)), f"{colour}: {role} {active[role]=}"

    # Sounding.
    hw.buzzer.on()
    assert pin["buzzer"].state == level(active["buzzer"], True)
    hw.buzzer.off()
    assert pin["buzzer"].state == level(active["buzzer"], False)


def drive(pin, high: int) -> None:
    pin.drive_high() if high else pin.drive_low()


@pytest.mark.parametrize(
    "role, pull, active",
    [(role, pull, active) for role in INPUTS for pull, active in INPUT_VARIANTS]
    + [(role, pull, active) for role in OUTPUTS for pull, active in OUTPUT_VARIANTS],
)
def test_every_variant_of_every_role_reaches_the_pins(tmp_path, role, pull, active):
    check_levels(tmp_path, {role: (pull, active)})


def test_seat_without_pull_active_low_reads_seated_only_when_low(tmp_path):
    """The fault seen: pull "none", active "low" read "seated" with the line high."""
    check_levels(tmp_path, {"seat": ("none", "low")})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.fixed_dictionaries(
    {role: st.sampled_from(INPUT_VARIANTS) for role in INPUTS}
    | {role: st.sampled_from(OUTPUT_VARIANTS) for role in OUTPUTS}
))
@example({"seat": ("none", "low"), "button": ("none", "high"), "latch": ("none", "high"),
          "light_red": ("none", "high"), "light_green": ("none", "low"), "light_blue": ("none", "high"),
          "buzzer": ("none", "low")})
def test_any_combination_of_variants_reaches_the_pins(tmp_path, variant):
    check_levels(tmp_path, variant)
