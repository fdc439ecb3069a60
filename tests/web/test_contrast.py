"""The state band's colours, read from the page's own style.css: text on each band at least
4.5:1 (WCAG AA for any size), the three states apart from each other in luminance (so they
differ in grey, and so under red-green colour blindness), the focus ring and field borders
at least 3:1 on white (WCAG 1.4.11)."""
from __future__ import annotations

import itertools
import re

import pytest

from appliance.core.resources import web_folder

CSS = (web_folder() / "static" / "style.css").read_text()
STATES = ("free", "waiting", "stop")
TEXT_MIN, BETWEEN_MIN, UI_MIN = 4.5, 1.5, 3.0


def colour(name: str) -> str:
    found = re.search(rf"--{name}:\s*(#[0-9a-fA-F]{{6}})\b", CSS)
    assert found, f"--{name} is not a six-digit colour in style.css"
    return found.group(1)


def luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_is_wcags():
    assert contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert contrast("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("state", STATES + ("out", "down"))
def test_text_on_each_band(state):
    ratio = contrast(colour(f"band-{state}"), colour(f"band-{state}-ink"))
    assert ratio >= TEXT_MIN, f"{state}: {ratio:.2f}:1"


@pytest.mark.parametrize("one,other", list(itertools.combinations(STATES, 2)))
def test_the_states_differ_in_luminance(one, other):
    ratio = contrast(colour(f"band-{one}"), colour(f"band-{other}"))
    assert ratio >= BETWEEN_MIN, f"{one} vs {other}: {ratio:.2f}:1"


@pytest.mark.parametrize("name", ["focus", "field-line"])
def test_focus_ring_and_field_borders(name):
    assert contrast(colour(name), "#ffffff") >= UI_MIN
    assert contrast(colour(name), colour("page")) >= UI_MIN


def test_each_state_has_its_own_shape():
    shapes = {state: re.search(rf"\.band-{state} \.band-shape \{{([^}}]*)\}}", CSS).group(1) for state in STATES}
    assert len(set(shapes.values())) == len(STATES)
