"""The page in the clinic's language: gettext catalogues (Flask-Babel) in
web/translations/<lang>/LC_MESSAGES/messages.po, English being the source language.

`[clinic] locale` chooses the language for every page (one clinic, one language); the CLI,
the logs and the JSON API stay English. Pure view code (view.py, events.py) takes the
translator as an argument `tr` (identity by default), so it stays testable without Flask.

`make translations` (python -m appliance.page.i18n) extracts every message (templates,
the `tr(...)`/`N_(...)` strings of the page's code, the rules' words and actions) into
messages.pot, merges it into each catalogue and compiles the .mo files, which are
committed; tests/web/test_i18n.py fails when a shown string has no German translation or
a .mo is older than its .po.
"""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Callable, Iterable

from appliance.core.resources import web_folder

LANGUAGES = ("en", "de")  # the catalogues shipped; any other locale falls back to English
DOMAIN = "messages"
KEYWORDS = {"_": None, "gettext": None, "tr": None, "N_": None}
Translator = Callable[[str], str]


def N_(text: str) -> str:
    """Marks a string for the catalogue where it is defined; translated where it is shown."""
    return text


def language_of(locale: str) -> str:
    """'de-DE' -> 'de'; a language without a catalogue -> 'en'."""
    lang = (locale or "en").split("-")[0].lower()
    return lang if lang in LANGUAGES else "en"


def translations_folder() -> Path:
    return web_folder() / "translations"


def install(app, locale_of: Callable[[], str]) -> None:
    """Flask-Babel on `app`, its language the clinic's (`locale_of()` at each request)."""
    from flask_babel import Babel

    Babel(app, locale_selector=lambda: language_of(locale_of()),
          default_translation_directories=str(translations_folder()), default_domain=DOMAIN)
    # `{{ text|tr }}`: a message made elsewhere (a variable), translated as it is, never
    # %-formatted as Jinja's newstyle `_()` would (a refusal may contain "%").
    app.jinja_env.filters["tr"] = lambda text: translator()(str(text)) if text else text
    # <html lang> says the language shown (a locale without a catalogue is shown in English).
    app.context_processor(lambda: {"page_lang": language_of(locale_of())})


def translator() -> Translator:
    """The current request's translator (for the pure view code)."""
    from flask_babel import gettext

    return gettext


def rule_texts() -> tuple[str, ...]:
    """The reasons' words and actions, as the daemon sends them (English: the msgids)."""
    from appliance.core import rules

    found: list[str] = []
    for code in rules.CODES:
        text = rules.describe(code)
        found += [m for m in (text.words, text.action) if m]
    return tuple(found)


def area_names() -> tuple[str, ...]:
    """The shipped treatment areas (config keys, shown translated when the catalogue knows them)."""
    from appliance.core.config import DEFAULT_MAX_DEPTH_MM

    return tuple(DEFAULT_MAX_DEPTH_MM)


def js_words(tr: Translator) -> str:
    """The live page's words (static/live.js `t()`), English -> this language, as JSON;
    "{}" in English, where live.js's own words are the page's."""
    texts = JS_MESSAGES + rule_texts() + area_names() + (N_("Contraindications screened"), N_("Test area done"))
    found = {text: tr(text) for text in texts if tr(text) != text}
    return json.dumps(found, ensure_ascii=False) if found else "{}"


# live.js draws these itself; they are extracted from here (keep in step with live.js).
JS_MESSAGES = (
    N_("; knocked off the broker {times} times lately (is another device using its login?)"),
    N_("Clinic alarm"),
    N_("ALARM: a clinic dock's key signed two different events for one place in its record "
       "({count} seen): its key may be stolen. Both were merged; see `pendock fleet` and "
       "ask the technician to provision that dock again."),
    N_("FREE"), N_("WAITING for you"), N_("STOP"), N_("IN USE"), N_("NOT ANSWERING"),
    N_("Free"), N_("Waiting"), N_("In use"), N_("No answer"),
    N_("Holds the pen"), N_("Overridden"), N_("Note"), N_("What to do: "),
    N_("Overridden by a manager for this session."),
    N_("Session in progress"), N_("No client named"), N_("no client named"),
    N_("{ref}, {area}: out {out}. Put the pen back in the cradle when done."),
    N_("No pen in the cradle"), N_("Put the pen in the cradle."),
    N_("Pen held: {words}"), N_("Pen held until you: {action}"), N_("see below"),
    N_("The pen stays in the cradle until every lock below is cleared."),
    N_("Pen free to lift"), N_("All checks passed: lift the pen to start the session."),
    N_("Next client"), N_("none named"), N_("checklist not ticked"), N_("{ref}, {area} ({ticked})"),
    N_("Cartridge"), N_("none fitted"), N_("{serial} ({strokes} strokes)"), N_(", genuine"),
    N_(", NOT authenticated"), N_("Pen battery"), N_("{percent}% ({volts}), {left} sessions left"),
    N_("Service"), N_("due in {hours} motor hours"), N_("due now"), N_("Dock clock"),
    N_(" (NOT known to be right)"), N_("Clinic docks"), N_("{online} of {total} others online"),
    N_("sharing history"), N_("; not connected"), N_("; history may be out of date"),
    N_("for {ref}, {area}"), N_("{who}, out {minutes} min"), N_("Next eligible date: {date}"),
    N_("{minutes} min {seconds} s"),
    N_("out longer than the {limit}-minute needling limit: the needling is checked when the pen is back"),
    N_("the needling is measured when the pen is back (the {limit}-minute needling limit)"),
    N_("Logged out"),
    N_("Your login has ended (logged out, or the page restarted). Reload the page to log in again."),
    N_("Dock not answering"),
    N_("The page cannot reach the dock, so the pen's state is unknown. The log below is still the record. "
       "If this lasts, restart the dock or call the technician."),
    N_("Page not answering"),
    N_("This tablet cannot reach the dock's page. Check the network; the page retries by itself."),
    N_("Updated {time} (dock clock)"),
    N_("Session ended: {ref}, {area}, {minutes} min needling ({outcome})."), N_("Completed"), N_("Interrupted"),
    # the reasons' facts (view.py facts_sentence, live.js factsOf)
    N_("Last treated on {last} ({days} days ago); next eligible date {next}."),
    N_("Last treated on {last} ({days} days ago); recommended date was {date}."),
    N_("{count} treatments of this area in the last {days} days (a course is {course})."),
    N_("Battery {percent}% ({volts} V), charging in the cradle: about {minutes} minutes to go to the "
       "{minimum} V minimum; the dock frees the pen by itself then."),
    N_("{hours} motor hours since the last service (service every {every} hours)."),
    N_("The pen reports: {faults} (at {celsius} °C)."), N_("Cartridge {serial} has {strokes} strokes on it."),
    N_("It was on session {session} on {date}."), N_("Not ticked: {items}."),
    N_("Out {minutes} minutes (a session should take under {limit})."),
)


# The login roles, shown beside the user's name.
ROLE_WORDS = (N_("therapist"), N_("manager"), N_("token"), N_("wall"), N_("wall display"))

# Messages written by other modules (replies.py, login.py) and shown through `_(message)`
# in error.html and login.html: the API and the logs keep them in English.
SHOWN_MESSAGES = (
    N_("There is no such page here."), N_("That is not how this page is used."), N_("What was sent is too large."),
    N_("Something went wrong on the dock's page; it has been logged. "
       "Try again, and call the technician if it keeps happening."),
    N_("The dock is not answering, so nothing was changed. Try again in a moment."),
    N_("The login form was out of date; please try again."),
    N_("Enter your user name (letters, digits, '-', '_' or '.') and your password."),
    N_("That user name and password do not match."),
    N_("This form was out of date (it was opened before a login or a restart). "
       "It has been loaded again: please try once more."),
)


# -- building the catalogues -----------------------------------------------------------------

def _page_sources() -> Iterable[Path]:
    here = Path(__file__).parent
    yield from sorted(here.glob("*.py"))


def extract():
    """Every message the page shows, as a babel Catalog (the .pot)."""
    from babel.messages.catalog import Catalog
    from babel.messages.extract import extract_from_file

    from appliance.core import rules

    catalog = Catalog(project="pen-dock", domain=DOMAIN)
    web = web_folder()
    for path in sorted((web / "templates").glob("*.html")):
        for line, message, comments, _context in extract_from_file(
                "jinja2", str(path), keywords=KEYWORDS, options={"trimmed": "true"}):
            catalog.add(message, locations=[(path.relative_to(web.parent).as_posix(), line)],
                        auto_comments=comments)
    for path in _page_sources():
        for line, message, comments, _context in extract_from_file("python", str(path), keywords=KEYWORDS):
            catalog.add(message, locations=[(f"appliance/page/{path.name}", line)], auto_comments=comments)
    for code in rules.CODES:  # the reasons' words and actions, sent by the daemon in English
        text = rules.describe(code)
        for message in (text.words, text.action):
            if message:
                catalog.add(message, locations=[("appliance/core/rules.py", 0)], auto_comments=[code])
    for area in area_names():
        catalog.add(area, locations=[("appliance/core/config.py", 0)], auto_comments=["a treatment area"])
    return catalog


def read_po(path: Path):
    from babel.messages.pofile import read_po as babel_read_po

    with open(path, "rb") as handle:
        return babel_read_po(handle)


def compiled(catalog) -> bytes:
    from babel.messages.mofile import write_mo

    out = io.BytesIO()
    write_mo(out, catalog)
    return out.getvalue()


def update_catalogues() -> list[Path]:
    """Extract, merge into every language's .po, compile its .mo (`make translations`)."""
    from babel.messages.catalog import Catalog
    from babel.messages.pofile import write_po

    template = extract()
    written = []
    for lang in LANGUAGES:
        folder = translations_folder() / lang / "LC_MESSAGES"
        folder.mkdir(parents=True, exist_ok=True)
        po = folder / f"{DOMAIN}.po"
        catalog = read_po(po) if po.exists() else Catalog(locale=lang, domain=DOMAIN)
        catalog.update(template, no_fuzzy_matching=True)
        catalog.obsolete.clear()
        with open(po, "wb") as handle:
            write_po(handle, catalog, width=100, omit_header=False, sort_output=False, include_previous=False)
        (folder / f"{DOMAIN}.mo").write_bytes(compiled(read_po(po)))
        written += [po, folder / f"{DOMAIN}.mo"]
    return written


if __name__ == "__main__":
    for written_path in update_catalogues():
        print(written_path)
