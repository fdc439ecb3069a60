"""Nothing outside hw/ (and the loader of hw/pinmap.toml) repeats a pin number."""
from __future__ import annotations

import ast
from pathlib import Path

APPLIANCE = Path(__file__).resolve().parents[2] / "appliance"
PIN_TAKERS = {
    "DigitalOutputDevice", "DigitalInputDevice", "Button", "Buzzer", "RGBLED", "LED", "PWMLED",
    "OutputDevice", "InputDevice", "SPIDevice", "MockSPIDevice", "Latch", "SeatSensor", "StatusLight",
    "PenLink", "pin", "SimulatedPen",
}
PIN_KEYWORDS = {"pin", "clock_pin", "mosi_pin", "miso_pin", "select_pin", "red", "green", "blue", "bcm"}


def _called_name(node: ast.Call) -> str:
    func = node.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def literal_pins(source: str) -> list[int]:
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and _called_name(node) in PIN_TAKERS:
            for arg in node.args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, int) and not isinstance(arg.value, bool):
                    found.append(node.lineno)
            for kw in node.keywords:
                if kw.arg in PIN_KEYWORDS and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, int):
                    found.append(node.lineno)
    return found


def test_the_check_finds_a_hard_coded_pin():
    assert literal_pins("from gpiozero import Button\nb = Button(17)\n") == [2]
    assert literal_pins("x = DigitalOutputDevice(pin=27)\n") == [1]
    assert literal_pins("x = Button(pinmap['seat'].bcm)\n") == []


def test_no_module_outside_the_pin_map_loader_hard_codes_a_pin():
    offenders = {}
    for path in APPLIANCE.rglob("*.py"):
        if path.name == "pinmap.py":
            continue
        lines = literal_pins(path.read_text())
        if lines:
            offenders[path.name] = lines
    assert offenders == {}
