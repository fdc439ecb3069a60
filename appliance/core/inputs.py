"""What a person or a client may type, checked once for every door (CLI, socket, page).

Pure functions, no I/O: a date, a yes/no flag, a user name. The CLI, the daemon's socket
and the page all call these, so one of them cannot accept what another refuses.
"""
from __future__ import annotations

import re
from datetime import date

FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)  # what a date may name
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
USER_NAME = re.compile(r"[A-Za-z0-9._-]{1,32}")
USER_NAME_RULE = "a user name is 1 to 32 ASCII letters, digits, '-', '_' or '.'"


class BadInput(ValueError):
    """Input that cannot be used; the message says what to send instead."""


def parse_day(text: object, today: date) -> date:
    """'YYYY-MM-DD' exactly -> date; None or empty -> today.

    Exactly that form: not the ISO week ('2026-W48-1') nor the compact ('20261129') forms
    Python's date.fromisoformat also takes, so the CLI and the page agree on every string."""
    if text is None or text == "":
        return today
    if not isinstance(text, str) or len(text) != 10 or not _DAY.fullmatch(text):
        raise BadInput(f"date {str(text)[:40]!r} is not a date: use YYYY-MM-DD, e.g. {today.isoformat()}")
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise BadInput(f"date {text!r} does not exist: use YYYY-MM-DD, e.g. {today.isoformat()}") from None
    if not FIRST_DAY <= day <= LAST_DAY:
        raise BadInput(f"date {text!r} is out of range: the record holds days from "
                       f"{FIRST_DAY.isoformat()} to {LAST_DAY.isoformat()}")
    return day


def flag(args: dict, name: str, default: bool = False) -> bool:
    """A yes/no argument of a request: only JSON true or false (the string "false" is not true)."""
    value = args.get(name)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise BadInput(f"{name} must be true or false, got {str(value)[:40]!r}")
    return value


def valid_user_name(name: object) -> bool:
    """The names the login form accepts; `pendock user add` takes the same (ASCII only)."""
    return isinstance(name, str) and bool(USER_NAME.fullmatch(name))


def check_user_name(name: object) -> str:
    if not valid_user_name(name):
        raise BadInput(f"{USER_NAME_RULE}, got {str(name)[:40]!r}")
    return name  # type: ignore[return-value]
