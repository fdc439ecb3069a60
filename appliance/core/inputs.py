"""What a person or a client may type, checked once for every door (CLI, socket, page).

Pure functions, no I/O: a date, a yes/no flag, a user name (and the booking reference,
which follows the same pattern), a role, a written reason. The CLI, the daemon's socket
and the page all call these, so one of them cannot accept what another refuses.
"""
from __future__ import annotations

import re
from datetime import date

FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(2999, 12, 31)  # what a date may name
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# A user name or a booking reference: short, no spaces, nothing that could hold a client's name.
NAME = re.compile(r"[A-Za-z0-9._-]{1,32}")
NAME_RULE = "1 to 32 ASCII letters, digits, '-', '_' or '.'"
USER_NAME, USER_NAME_RULE = NAME, f"a user name is {NAME_RULE}"
ROLES = ("therapist", "manager")  # who logs in to the page; technicians use the OS (root, pendock-tech)
# The one role table: what each role of the record may do. The daemon checks it itself
# (appliance/daemon/authority.py); the page only shows or hides its buttons by it.
ROLE_ACTS: dict[str, frozenset[str]] = {
    "therapist": frozenset({"name_client"}),
    "manager": frozenset({"name_client", "override", "add_manager", "set_clock"}),
}
MIN_REASON, MAX_REASON = 5, 500  # a written reason: long enough to say something, short enough to read


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


def flag(args: dict[str, object], name: str, default: bool = False) -> bool:
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


def role_may(role: object, act: str) -> bool:
    """Whether a user of this role may do `act` (ROLE_ACTS); an unknown role may nothing."""
    return isinstance(role, str) and act in ROLE_ACTS.get(role, frozenset())


def validate_role(role: object) -> str:
    if role not in ROLES:
        raise BadInput(f"role must be one of {', '.join(ROLES)}, got {str(role)[:40]!r}")
    return str(role)


def reason_problem(reason: str) -> str | None:
    """Why this written reason will not do, or None when it will."""
    if len(reason) < MIN_REASON:
        return f"a written reason is needed (at least {MIN_REASON} characters)"
    if len(reason) > MAX_REASON:
        return f"the reason is too long ({len(reason)} characters; at most {MAX_REASON})"
    return None
