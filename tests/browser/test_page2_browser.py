"""The therapist's page, second pass, in Debian's Chromium against a real `pendock demo`:
the three states of the band, the facts behind each reason, the events list, the client
lookup, the wall view, field errors on a phone, the timeline by keyboard, and axe-core
with 0 violations on every page; screenshots at 360, 768 and 1024 px in test-artifacts/."""
from __future__ import annotations

import re

import pytest

expect = pytest.importorskip("playwright.sync_api", reason="the playwright Python package is missing").expect

from tests.browser import axe  # noqa: E402 (after the skip)
from tests.browser.conftest import ARTIFACTS, log_in  # noqa: E402

pytestmark = pytest.mark.browser
WIDTHS = (360, 768, 1024)
LIVE_MS = 2000


@pytest.fixture(scope="module")
def axe_path():
    try:
        return str(axe.axe_script())
    except axe.AxeMissing as error:
        pytest.fail(str(error))


@pytest.fixture
def open_page(browser, axe_path):
    contexts = []

    def make(width: int, height: int = 900):
        context = browser.new_context(viewport={"width": width, "height": height})
        context.add_init_script(path=axe_path)
        contexts.append(context)
        page = context.new_page()
        page.csp_errors = []
        page.on("console", lambda m: "Content Security Policy" in m.text and page.csp_errors.append(m.text))
        return page

    yield make
    for context in contexts:
        context.close()


def accessible(page, where: str) -> None:
    found = axe.violations(page)
    assert not found, f"axe-core on {where}:\n{axe.describe(found)}"


def shot(page, name: str) -> None:
    """The whole page, and what the screen shows without scrolling (name-top.png)."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-top.png"))


def no_sideways_scroll(page, width: int) -> None:
    scroll = page.evaluate("document.documentElement.scrollWidth")
    assert scroll <= width, f"the page is {scroll}px wide at {width}px"


def band(page):
    return page.locator("#band")


def to_waiting(demo):
    demo.sim("fault", "clear")
    demo.run("sim", "dock")
    demo.sim("cartridge", "--remove")


def to_free(demo, ref="C-5001", area="neck", cartridge=None):
    demo.sim("fault", "clear")
    demo.sim("cartridge", *(["--serial", cartridge] if cartridge else []))
    demo.ok("next-client", ref, "--area", area, "--checklist", "screened,test-area")


def name(demo, ref, area="face"):
    """Name a client whatever the verdict (`next-client` exits 1 while the pen stays held)."""
    demo.run("next-client", ref, "--area", area, "--checklist", "screened,test-area")


def run_session(demo, ref, area="neck", minutes="12", cartridge=None):
    to_free(demo, ref, area, cartridge)
    demo.sim("undock")
    demo.sim("needle", "--minutes", minutes, "--depth", "0.8")
    demo.sim("dock")


@pytest.mark.parametrize("width", WIDTHS)
def test_three_states_in_colour_shape_and_words(open_page, demo, width):
    page = open_page(width)
    to_waiting(demo)
    log_in(page, demo.url, "manager")
    expect(band(page)).to_have_attribute("data-tone", "waiting", timeout=LIVE_MS)
    assert page.inner_text("#band-word") == "WAITING for you" and page.title().startswith("Waiting")
    assert "icon-waiting.svg" in page.get_attribute("#favicon", "href")
    no_sideways_scroll(page, width)
    accessible(page, f"the log, waiting, {width}px")
    shot(page, f"state-waiting-{width}")
    demo.sim("cartridge")
    demo.sim("fault", "stall")
    expect(band(page)).to_have_attribute("data-tone", "stop", timeout=LIVE_MS)
    assert page.inner_text("#band-word") == "STOP" and page.title().startswith("STOP")
    expect(page.locator("#favicon")).to_have_attribute("href", re.compile("icon-stop.svg"))
    assert "stall" in page.inner_text("#live-reasons")  # the fault's facts: which fault
    shot(page, f"state-stop-{width}")
    to_free(demo)
    expect(band(page)).to_have_attribute("data-tone", "free", timeout=LIVE_MS)
    assert page.inner_text("#band-word") == "FREE" and page.title().startswith("Free")
    # Across the room: the band's word is big at tablet width.
    size = page.evaluate("parseFloat(getComputedStyle(document.getElementById('band-word')).fontSize)")
    assert size >= (48 if width >= 768 else 36)
    accessible(page, f"the log, free, {width}px")
    shot(page, f"state-free-{width}")
    # Only changes are announced, not the panel every second.
    page.wait_for_timeout(1500)
    assert page.inner_text("#live-announce").startswith("FREE")
    assert page.get_attribute("#live", "aria-live") is None
    assert not page.csp_errors
    name(demo, "C-0000")  # leave the pen held for the next test


def test_each_reason_with_its_facts(open_page, demo):
    run_session(demo, "C-6001", "face")
    page = open_page(1024)
    log_in(page, demo.url, "manager")
    demo.sim("cartridge")
    name(demo, "C-6001", "face")
    expect(page.locator("#live-reasons")).to_contain_text("next eligible date", timeout=LIVE_MS)
    reasons = page.inner_text("#live-reasons")
    assert re.search(r"Last treated on \d{4}-\d{2}-\d{2} \(0 days ago\); next eligible date \d{4}-\d{2}-\d{2}", reasons)
    assert page.inner_text("#band-word") == "STOP"  # too soon is a stop, like the dock's red light
    # The override form is there, preselecting the lock that holds the pen.
    expect(page.locator("#override-form")).to_be_visible()
    assert page.input_value("#code") == "client_interval"
    assert "too recently" in page.inner_text("#code option:checked")
    shot(page, "reason-facts-interval-1024")
    demo.sim("fault", "battery-low")
    expect(page.locator("#live-reasons")).to_contain_text("charging in the cradle", timeout=LIVE_MS)
    assert re.search(r"Battery \d+% \(3\.30 V\), charging in the cradle: about \d+ minutes to go",
                     page.inner_text("#live-reasons"))
    assert "Charge the pen, then" not in page.inner_text("#live-reasons")
    assert "motor hours" in page.inner_text("#live-facts")
    shot(page, "reason-facts-battery-1024")
    demo.sim("fault", "clear")
    accessible(page, "the log with reasons and facts")
    page.fill("#reason", "dermatologist approved")
    page.click("#override-form button[type=submit]")
    expect(page.locator(".notice-ok")).to_contain_text("Overridden")
    expect(page.locator("#events")).to_contain_text("dermatologist approved")
    assert "manager" in page.inner_text("#events")
    name(demo, "C-0000")


def test_a_reused_cartridge_says_where_it_was_seen(open_page, demo):
    run_session(demo, "C-6101", "hands", cartridge="880001")
    run_session(demo, "C-6103", "hands")  # the next session, on a new cartridge
    demo.sim("cartridge", "--serial", "880001")  # the first cartridge again: a reuse
    name(demo, "C-6102", "hands")
    page = open_page(768)
    log_in(page, demo.url, "demo")
    expect(page.locator("#live-reasons")).to_contain_text("was on session", timeout=LIVE_MS)
    assert page.inner_text("#band-word") == "STOP"
    assert "used before" in page.inner_text("#events")  # the hold is in the day's events
    shot(page, "reason-facts-reused-768")


@pytest.mark.parametrize("width", WIDTHS)
def test_events_list_and_lookup(open_page, demo, width):
    ref = f"C-7{width:03d}"
    run_session(demo, ref, "forehead")
    page = open_page(width)
    log_in(page, demo.url, "manager")
    events = page.inner_text("#events")
    assert "Held" in events and "Released" in events and "Session" in events
    page.fill("#client-ref", ref)
    page.click("#lookup-card button[type=submit]")
    result = page.inner_text("#lookup-result")
    assert "forehead" in result and "Next eligible" in result and re.search(r"\d of 6 in the last 180 days", result)
    assert re.search(r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \d+ \w+ \d{4}", result)
    no_sideways_scroll(page, width)
    accessible(page, f"the log with a lookup, {width}px")
    shot(page, f"events-lookup-{width}")
    page.locator("#events").scroll_into_view_if_needed()
    page.locator("#events").screenshot(path=str(ARTIFACTS / f"events-{width}.png"))


@pytest.mark.parametrize("dark", [False, True])
def test_the_wall_with_a_token_login(open_page, demo, dark):
    token = demo.ok("token", "create", "--name", "wall").strip().splitlines()[-1]
    to_waiting(demo)
    page = open_page(1024, 768)
    page.goto(f"{demo.url}/wall/login?token={token}")
    assert page.url.endswith("/wall") and token not in page.url
    if dark:
        page.goto(f"{demo.url}/wall?dark=1")
    expect(band(page)).to_have_attribute("data-tone", "waiting", timeout=LIVE_MS)
    demo.sim("cartridge")
    demo.sim("fault", "stall")
    expect(band(page)).to_have_attribute("data-tone", "stop", timeout=LIVE_MS)
    size = page.evaluate("parseFloat(getComputedStyle(document.getElementById('band-word')).fontSize)")
    assert size >= 80
    accessible(page, f"/wall{' dark' if dark else ''}")
    shot(page, f"wall{'-dark' if dark else ''}-1024")
    page.goto(demo.url + "/")  # the wall's login sees the wall only
    assert page.url.endswith("/wall")
    demo.sim("fault", "clear")


def test_phone_form_error_at_its_field_focused(open_page, demo):
    page = open_page(360, 740)
    log_in(page, demo.url, "demo")
    band_box = page.locator("#band").bounding_box()
    form_box = page.locator("#next-client-form").bounding_box()
    assert band_box["y"] < form_box["y"] < 740 * 1.6, "the form is not near the top on a phone"
    page.fill("#ref", "Jane Smith")
    page.click("#next-client-form button[type=submit]")
    expect(page.locator("#ref-error")).to_contain_text("never a name")
    assert page.get_attribute("#ref", "aria-invalid") == "true"
    assert page.get_attribute("#ref", "aria-describedby") == "ref-error"
    assert page.evaluate("document.activeElement.id") == "ref"
    accessible(page, "the log with a form error, 360px")
    shot(page, "form-error-360")
    # Touch targets: every button, field and checkbox row at least 44 px tall.
    small = page.evaluate("""() => Array.from(document.querySelectorAll(
        'main button, main .button, main input:not([type=hidden]):not([type=checkbox]), main select, label.check'))
        .filter(e => e.offsetParent !== null && e.getBoundingClientRect().height < 44)
        .map(e => e.outerHTML.slice(0, 80))""")
    assert not small, f"touch targets under 44 px: {small}"


def test_print_the_day(open_page, demo):
    for n in range(7):  # the day: 7 sessions took 13 A4 pages
        run_session(demo, f"PR-{n}", ("face", "neck", "forehead", "hands")[n % 4], minutes="2")
    page = open_page(1024)
    log_in(page, demo.url, "demo")
    page.emulate_media(media="print")
    assert page.is_visible("#day") and page.is_visible("#events")
    assert not page.is_visible("#band") and not page.is_visible("#next-client-form")
    # On paper the sessions are a table, never the phone's cards (A4 is narrower than 900 px).
    assert page.evaluate("getComputedStyle(document.querySelector('table.sessions thead')).display") != "none"
    sessions = page.locator("table.sessions tbody tr").count()
    events = page.locator("#events li.event").count()
    pdf = page.pdf(format="A4")
    pages = pdf.count(b"/Type /Page") - pdf.count(b"/Type /Pages")
    (ARTIFACTS / "print-the-day.pdf").write_bytes(pdf)
    page.set_viewport_size({"width": 794, "height": 1123})  # A4 at 96 dpi, for a look at the print
    page.screenshot(path=str(ARTIFACTS / "print-the-day.png"), full_page=True)
    # About 25 sessions or 60 events a page (the events in two columns): the day as short as it can be.
    assert pages <= 1 + sessions // 25 + events // 60, f"{pages} A4 pages for {sessions} sessions, {events} events"


def test_timeline_by_keyboard_with_a_now_marker(open_page, demo):
    run_session(demo, "C-8001", "neck")
    page = open_page(360)
    log_in(page, demo.url, "demo")
    assert page.locator(".now-line").count() == 1
    link = page.locator("a.bar-link").first
    assert "C-8001" in (link.get_attribute("aria-label") or "") or page.locator("a.bar-link").count() > 1
    link.focus()
    page.keyboard.press("Enter")
    assert re.search(r"#session-\d+$", page.url)
    scroller = page.locator(".timeline-scroll")
    assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")  # it scrolls, and says so
    assert page.is_visible(".scroll-hint")
    shot(page, "timeline-360")
    page.locator(".timeline-figure").screenshot(path=str(ARTIFACTS / "timeline-figure-360.png"))


def test_running_session_timer_and_aftercare_and_past_day(open_page, demo):
    to_free(demo, "C-9001", "face")
    page = open_page(768)
    log_in(page, demo.url, "demo")
    demo.sim("undock")
    expect(band(page)).to_have_attribute("data-tone", "out", timeout=LIVE_MS)
    expect(page.locator("#band-timer")).to_be_visible()
    page.evaluate("window.__sameDocument = true")
    # The session in progress is in the log at once, without a reload.
    expect(page.locator("#day")).to_contain_text("In progress", timeout=3000)
    assert page.evaluate("window.__sameDocument") is True
    first = page.inner_text("#timer-out")
    page.wait_for_timeout(2100)
    assert page.inner_text("#timer-out") != first  # it ticks between polls
    assert re.match(r"\d+ min \d\d s$", page.inner_text("#timer-out"))  # never "12:08", a time of day
    assert "when the pen is back" in page.inner_text("#timer-note")
    expect(page.locator("#band-who")).to_have_text(re.compile(r"^for C-9001, face, out \d+ min$"))
    shot(page, "session-running-768")
    demo.sim("needle", "--minutes", "5")
    demo.sim("dock")
    # The session's end says what happened, with the way to its aftercare card.
    expect(page.locator("#new-session")).to_be_visible(timeout=LIVE_MS)
    assert re.match(r"Session ended: C-9001, face, 5 min needling \(\w+\)\.", page.inner_text("#new-session-words"))
    assert re.search(r"/sessions/\d+/aftercare$", page.get_attribute("#new-session-aftercare", "href"))
    page.goto(demo.url + "/")
    page.click("table.sessions a:has-text('Aftercare')")
    card = page.inner_text("article")
    assert re.search(r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \d+ \w+ \d{4}", card)
    assert "Call the clinic" in card or "Call " in card
    accessible(page, "the aftercare card")
    page.goto(demo.url + "/?date=2020-01-01")
    assert "You are looking at" in page.inner_text("main")
    accessible(page, "a past day")
    page.goto(demo.url + "/no-such-page")
    accessible(page, "the error page")


def test_login_page_accessible(open_page, demo):
    page = open_page(360)
    page.goto(demo.url + "/login")
    accessible(page, "the login page")


def test_clear_the_next_client(open_page, demo):
    to_free(demo, "C-9101", "face")
    page = open_page(1024)
    log_in(page, demo.url, "demo")
    expect(page.locator("#clear-client-form")).to_be_visible()
    page.click("#clear-client-form button")
    expect(page.locator(".notice-ok")).to_contain_text("cleared")
    expect(band(page)).to_have_attribute("data-tone", "waiting", timeout=LIVE_MS)
    assert "Next client cleared" in page.inner_text("#events")
    demo.ok("next-client", "C-9102", "--area", "face", "--checklist", "screened,test-area")
    assert "Next client cleared" in demo.ok("clear-client")  # the same from the command line
    assert demo.status()["next_client"] is None


def test_without_javascript_the_page_says_when_and_refreshes(browser, demo):
    context = browser.new_context(java_script_enabled=False, viewport={"width": 768, "height": 900})
    try:
        page = context.new_page()
        log_in(page, demo.url, "demo")
        assert re.search(r"loaded at \d\d:\d\d:\d\d", page.inner_text("#live-updated"))
        assert page.locator("noscript").count() >= 1
        assert 'http-equiv="refresh"' in page.content()
    finally:
        context.close()


@pytest.mark.parametrize("width", (360, 1024))
def test_the_band_names_the_client_and_the_date_to_rebook(open_page, demo, width):
    page = open_page(width, 768)
    log_in(page, demo.url, "demo")
    to_free(demo, f"BK-{width}", "face")
    expect(page.locator("#band-who")).to_have_text(f"for BK-{width}, face", timeout=LIVE_MS)
    run_session(demo, f"BK-{width + 1}", "face", minutes="3")
    demo.sim("cartridge")
    name(demo, f"BK-{width + 1}", "face")  # the same area again: held by the interval
    expect(page.locator("#band-date")).to_contain_text("Next eligible date: ", timeout=LIVE_MS)
    assert re.search(r"(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday) \d+ \w+ \d{4}$",
                     page.inner_text("#band-date"))
    box = page.locator("#band-date").bounding_box()
    assert box and box["y"] + box["height"] <= 768, "the date to rebook on is below the first screen"
    accessible(page, f"the log, interval hold, {width}px")
    shot(page, f"band-interval-{width}")
    wall = open_page(1024, 768)
    log_in(wall, demo.url, "demo")
    wall.goto(demo.url + "/wall")
    expect(wall.locator("#band-date")).to_contain_text("Next eligible date: ", timeout=LIVE_MS)
    shot(wall, f"wall-interval-{width}")
    box = wall.locator("#band-date").bounding_box()
    assert box and box["y"] + box["height"] <= 768, "the wall's date is off the screen"
    name(demo, "C-0000")


def test_not_answering_fits_its_band_on_a_phone(open_page, demo):
    page = open_page(360)
    log_in(page, demo.url, "demo")
    # The band as live.js draws it when the dock does not answer (downState), at 360 px.
    page.evaluate("""() => { const band = document.getElementById('band');
        band.className = 'band band-down'; document.getElementById('band-word').textContent = 'NOT ANSWERING'; }""")
    word = page.locator("#band-word").bounding_box()
    box = band(page).bounding_box()
    assert word and box and word["x"] + word["width"] <= box["x"] + box["width"], "NOT ANSWERING overflows its band"
    no_sideways_scroll(page, 360)
    shot(page, "state-down-360")
