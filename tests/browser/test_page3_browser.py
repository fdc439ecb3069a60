"""The page in German, in Debian's Chromium against a real `pendock demo` whose clinic chose
German at first run (first-run.toml in its data folder): the band as live.js redraws it,
the date to rebook on, axe-core 0 violations; screenshots at 360 and 1024 px."""
from __future__ import annotations

import re

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is missing").expect

from appliance.core import first_run  # noqa: E402
from tests.browser import axe  # noqa: E402 (after the skip)
from tests.browser.conftest import ARTIFACTS, log_in  # noqa: E402
from tests.support.demo import DemoProcess  # noqa: E402

pytestmark = pytest.mark.browser
LIVE_MS = 2000


@pytest.fixture(scope="module")
def german_demo(tmp_path_factory):
    data = tmp_path_factory.mktemp("demo-de")
    (data / first_run.SETTINGS_NAME).write_text(
        first_run.settings_text("Hautpraxis Müller", "030 1234567", "UTC", "de-DE"))
    dock = DemoProcess(data, runtime=tmp_path_factory.mktemp("run-de"), data_flag=True)
    dock.start(timeout=30)
    try:
        yield dock
    finally:
        dock.stop()


@pytest.fixture
def open_page(browser):
    contexts = []

    def make(width: int, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_init_script(path=str(axe.axe_script()))
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


@pytest.mark.parametrize("width", (360, 1024))
def test_the_band_in_german_as_live_js_draws_it(open_page, german_demo, width):
    demo = german_demo
    page = open_page(width, 768)
    log_in(page, demo.url, "demo")
    assert page.get_attribute("html", "lang") == "de"
    demo.sim("fault", "clear")
    demo.sim("cartridge")
    demo.ok("next-client", f"DE-{width}", "--area", "face", "--checklist", "screened,test-area")
    expect(page.locator("#band-word")).to_have_text("FREI", timeout=LIVE_MS)
    expect(page.locator("#band-who")).to_have_text(f"für DE-{width}, Gesicht")
    assert page.title().startswith("Frei")
    demo.sim("undock")
    expect(page.locator("#band-word")).to_have_text("IN BENUTZUNG", timeout=LIVE_MS)
    expect(page.locator("#timer-out")).to_have_text(re.compile(r"^\d+ Min\. \d\d Sek\.$"))
    assert "wenn der Stift zurück ist" in page.inner_text("#timer-note")
    demo.sim("needle", "--minutes", "3")
    demo.sim("dock")
    demo.sim("cartridge")
    demo.run("next-client", f"DE-{width}", "--area", "face", "--checklist", "screened,test-area")
    expect(page.locator("#band-word")).to_have_text("STOPP", timeout=LIVE_MS)
    expect(page.locator("#band-date")).to_have_text(
        re.compile(r"^Frühester nächster Termin: (Montag|Dienstag|Mittwoch|Donnerstag|Freitag|Samstag|Sonntag), "
                   r"\d+\. \w+ \d{4}$"))
    reasons = page.inner_text("#live-reasons")
    assert "Dieser Bereich der Kundin wurde vor zu kurzer Zeit behandelt" in reasons
    assert "Zuletzt behandelt am" in reasons and "Last treated" not in reasons  # the facts too, as live.js draws them
    found = axe.violations(page)
    assert not found, axe.describe(found)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"de-interval-{width}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"de-interval-{width}-top.png"))
    page.goto(demo.url + "/")
    page.click("table.sessions a:has-text('Nachsorge')")
    card = page.inner_text("article")
    assert "Rufen Sie Hautpraxis Müller unter 030 1234567 an, wenn" in card and "Gesicht" in card
    page.screenshot(path=str(ARTIFACTS / f"de-aftercare-{width}.png"), full_page=True)
