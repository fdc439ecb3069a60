"""The page in the clinic's language: every string the page shows has a German translation,
the compiled catalogues match their sources, and a German clinic's pages show no English
(each text of the German page that is also on the English page is a string left out of the
catalogue), with `lang` saying what is shown."""
from __future__ import annotations

import copy
import re
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from babel.messages.mofile import read_mo

from appliance.core import rules
from appliance.core.config import Config
from appliance.page import i18n
from appliance.page.app import create_app
from appliance.record.store import Store
from tests.web.conftest import FakeDaemon, log_in
from tests.web.test_page2 import INTERVAL, WALL_TOKEN, busy_record  # noqa: F401 (a fixture)

# Text that is the same in both languages: references, codes, numbers, times, names.
SAME_IN_BOTH = re.compile(r"^([-–·:;,./()#%\d\s]*|C-\d+|BK-\d+|PEN-?\w*|[A-Z]{2,}-\w+|Pen dock|Needling|Dock|"
                          r"Token|\w+@\w+|sudo pendock setup-code|demo|thera|boss|Europe/\w+|UTC|[\w/]+_\w+|"
                          r"Hautpraxis Müller|room-\d)$")


def test_every_message_of_the_page_has_a_german_translation():
    german = i18n.read_po(i18n.translations_folder() / "de" / "LC_MESSAGES" / "messages.po")
    missing = [m.id for m in i18n.extract() if m.id and not (german.get(m.id) and german.get(m.id).string)]
    assert not missing, f"no German for {len(missing)} strings (run `make translations`, then translate): {missing[:10]}"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_the_compiled_catalogues_match_their_sources(lang):
    folder = i18n.translations_folder() / lang / "LC_MESSAGES"
    with open(folder / "messages.mo", "rb") as handle:
        shipped = {m.id: m.string for m in read_mo(handle) if m.id}
    source = {m.id: m.string for m in i18n.read_po(folder / "messages.po") if m.id and m.string}
    assert shipped == source, f"{folder}/messages.mo is older than its .po: run `make translations`"


class Texts(HTMLParser):
    """The text a person sees (and reads out): text nodes, alt/aria-label/title/placeholder."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self._skip += 1
        for name, value in attrs:
            if name in ("aria-label", "title", "placeholder", "alt", "data-label", "label") and value:
                self.found.append(value.strip())

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip and data.strip():
            self.found.append(" ".join(data.split()))


def texts(html: str) -> set[str]:
    parser = Texts()
    parser.feed(html)
    return {t for t in parser.found if re.search(r"[A-Za-z]{3,}", t) and not SAME_IN_BOTH.match(t)}


def app_in(record, daemon, locale: str):
    config = Config()
    config = replace(config, clinic=replace(config.clinic, locale=locale, name="Hautpraxis Müller", phone="030 123"),
                     fleet=replace(config.fleet, dock_id="room-1"))
    store = Store.open(record, readonly=True)
    return create_app(config, record, record / "control.sock", control=daemon.client, store=store,
                      secret_key="test-key", status_fresh_s=0), store


# The reason as the daemon sends it: the rules' own words (the catalogue's msgids).
INTERVAL_REASON = dict(INTERVAL, words=rules.describe("client_interval").words,
                       action=rules.describe("client_interval").action)
STATES = {
    "held by the interval": dict(light="red", held=True, locks=["client_interval"], reasons=[INTERVAL_REASON],
                                 next_client={"ref": "C-1", "area": "face", "checklist": ["screened"]}),
    "free": dict(light="green", held=False, locks=[], reasons=[],
                 next_client={"ref": "C-1", "area": "face", "checklist": ["screened", "test-area"]}),
    "in use": dict(light="blue", docked=False, held=False, locks=[], reasons=[],
                   session={"id": 9, "client_ref": "C-1", "area": "neck", "out_seconds": 754}),
}
PAGES = ("/", "/?date=2026-11-28&kind=hold", "/?date=2026-11-20", "/sessions/1/aftercare", "/nowhere")


def pages_in(record, locale: str) -> dict[str, str]:
    daemon = FakeDaemon()
    app, store = app_in(record, daemon, locale)
    shown = {}
    try:
        anonymous = app.test_client()
        shown["login"] = anonymous.get("/login").get_data(as_text=True)
        for name, values in STATES.items():
            daemon.status.update(copy.deepcopy(values))
            for who in ("thera", "boss"):
                client = app.test_client()
                assert log_in(client, who).status_code == 302
                for path in PAGES:
                    shown[f"{name} {who} {path}"] = client.get(path).get_data(as_text=True)
            wall = app.test_client()
            assert wall.get(f"/wall/login?token={WALL_TOKEN}").status_code == 302
            shown[f"{name} wall"] = wall.get("/wall").get_data(as_text=True)
    finally:
        store.close()
    return shown


def test_a_german_clinic_sees_no_english_and_lang_says_german(busy_record):  # noqa: F811
    english, german = pages_in(busy_record, "en-GB"), pages_in(busy_record, "de-DE")
    left_in_english = {}
    for name, html in german.items():
        assert '<html lang="de">' in html, name
        same = texts(html) & texts(english[name])
        if same:
            left_in_english[name] = sorted(same)
    assert not left_in_english, f"English left on German pages: {left_in_english}"
    assert "FREI" in german["free thera /"] and "für C-1, Gesicht" in german["free thera /"]
    assert "Rufen Sie Hautpraxis Müller unter 030 123 an, wenn" in german["free thera /sessions/1/aftercare"]


def test_a_german_clinics_export_has_german_headers_and_words(busy_record):  # noqa: F811
    app, store = app_in(busy_record, FakeDaemon(), "de-DE")
    try:
        client = app.test_client()
        assert log_in(client, "boss").status_code == 302
        text = client.get("/export.csv?from=2026-11-20&to=2026-11-28").get_data(as_text=True)
    finally:
        store.close()
    header = text.lstrip("\ufeff").splitlines()[0]
    assert header.startswith("Raum,Sitzung,Beginn,Ende,UTC-Versatz,Buchungsnummer,Bereich,Behandlerin,")
    assert "Die Nadel war tiefer eingestellt" in text  # a warning in words, in German
    assert "2026-11-20 08:00:00" in text  # times and numbers stay in the documented dialect


def test_a_german_clinic_reads_that_the_low_pen_is_charging_and_the_minutes_to_go():
    from datetime import datetime, timezone

    from appliance.core.model import PenReading
    from appliance.core.reason_facts import FactInputs, detail
    from appliance.page.view import facts_sentence

    german = i18n.read_po(i18n.translations_folder() / "de" / "LC_MESSAGES" / "messages.po")
    reading = PenReading(pen_serial=7, firmware="1.4", strokes=1, motor_seconds=1, cartridge_serial=4,
                         cartridge_strokes=0, max_depth_mm=0.0, battery_mv=3300, temperature_c=24.5)
    facts = detail("battery_low", FactInputs(config=Config(), now=datetime(2026, 12, 8, 9, tzinfo=timezone.utc),
                                                  reading=reading))
    words = facts_sentence("battery_low", facts, lambda text: german.get(text).string, "de-DE")
    assert f"lädt in der Halterung: noch etwa {facts['charge_minutes']} Minuten" in words
    assert "3,30 V" in words and "3,60 V" in words
    assert "in der Halterung laden" in german.get(rules.describe("battery_low").action).string
