"""Dates as the clinic writes them, with the weekday ("Saturday 28 November 2026").

The Pi's C library may have no locales installed, so the few the clinic may choose are
spelled out here; the page and the aftercare card use them, the record keeps ISO dates.
"""
from __future__ import annotations

from datetime import date

_EN_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
              "September", "October", "November", "December")

# locale -> (weekdays Monday first, months January first, pattern)
LOCALES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    "en-GB": (_EN_WEEKDAYS, _EN_MONTHS, "{wd} {d} {m} {y}"),
    "en-US": (_EN_WEEKDAYS, _EN_MONTHS, "{wd}, {m} {d}, {y}"),
    "de-DE": (("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag"),
              ("Januar", "Februar", "März", "April", "Mai", "Juni", "Juli", "August",
               "September", "Oktober", "November", "Dezember"), "{wd}, {d}. {m} {y}"),
    "fr-FR": (("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"),
              ("janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août",
               "septembre", "octobre", "novembre", "décembre"), "{wd} {d} {m} {y}"),
    "nl-NL": (("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"),
              ("januari", "februari", "maart", "april", "mei", "juni", "juli", "augustus",
               "september", "oktober", "november", "december"), "{wd} {d} {m} {y}"),
    "es-ES": (("lunes", "martes", "miércoles", "jueves", "viernes", "sábado", "domingo"),
              ("enero", "febrero", "marzo", "abril", "mayo", "junio", "julio", "agosto",
               "septiembre", "octubre", "noviembre", "diciembre"), "{wd}, {d} de {m} de {y}"),
    "it-IT": (("lunedì", "martedì", "mercoledì", "giovedì", "venerdì", "sabato", "domenica"),
              ("gennaio", "febbraio", "marzo", "aprile", "maggio", "giugno", "luglio", "agosto",
               "settembre", "ottobre", "novembre", "dicembre"), "{wd} {d} {m} {y}"),
}
DEFAULT_LOCALE = "en-GB"


def long_date(day: date | str | None, locale: str = DEFAULT_LOCALE) -> str:
    """'2026-11-28' -> 'Saturday 28 November 2026' (en-GB); '-' when there is no date."""
    if not day:
        return "-"
    if isinstance(day, str):
        try:
            day = date.fromisoformat(day)
        except ValueError:
            return str(day)
    weekdays, months, pattern = LOCALES.get(locale, LOCALES[DEFAULT_LOCALE])
    return pattern.format(wd=weekdays[day.weekday()], d=day.day, m=months[day.month - 1], y=day.year)


def html_lang(locale: str) -> str:
    """The page's lang attribute: the locale's language ('en-GB' -> 'en')."""
    return (locale or DEFAULT_LOCALE).split("-")[0]


def date_names(locale: str) -> dict[str, object]:
    """The locale's weekday and month names and pattern, for live.js to write dates as long_date does."""
    weekdays, months, pattern = LOCALES.get(locale, LOCALES[DEFAULT_LOCALE])
    return {"weekdays": list(weekdays), "months": list(months), "pattern": pattern}
