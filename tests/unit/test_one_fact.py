"""One definition of each typed fact: names, roles, reasons, the override rule, the CSV
columns; the daemon, the page and the CLI refuse the same things, because they ask the
same validator (appliance/core/inputs.py, appliance/core/rules.py)."""
from __future__ import annotations

from datetime import date

import pytest

from appliance.core import inputs, rules
from appliance.daemon import commands
from appliance.page import auth
from appliance.record.export import CSV_COLUMNS
from appliance.record.sessions import LOG_KEYS

TODAY = date(2026, 11, 28)


@pytest.mark.parametrize("text", ["20261128", "2026-W48-6", "0001-01-01", "3000-01-01", "2026-02-30"])
def test_the_daemon_parses_dates_with_the_one_rule(text):
    with pytest.raises(ValueError):  # the control server answers a ValueError as bad usage (exit 2)
        commands.parse_day(text, TODAY)


def test_user_names_and_client_refs_follow_one_pattern():
    for name in ("ana.b", "R-1042", "x" * 32):
        assert auth.valid_user_name(name) and rules.validate_client_ref(name) == name.upper()
    for name in ("", "x" * 33, "Ana B", "Zoë", "a/b"):
        assert not auth.valid_user_name(name)
        with pytest.raises(ValueError):
            rules.validate_client_ref(name)
        with pytest.raises(ValueError):
            inputs.check_user_name(name)


def test_roles_and_reason_limits():
    assert inputs.validate_role("manager") == "manager"
    with pytest.raises(ValueError):
        inputs.validate_role("technician")
    assert inputs.reason_problem("x" * inputs.MIN_REASON) is None
    assert inputs.reason_problem("x" * inputs.MAX_REASON) is None
    assert "at least" in inputs.reason_problem("x" * (inputs.MIN_REASON - 1))
    assert "too long" in inputs.reason_problem("x" * (inputs.MAX_REASON + 1))


def test_the_override_rule_tells_a_refusal_from_a_typo():
    with pytest.raises(rules.NotOverridable):
        rules.validate_override("cartridge_reused")
    with pytest.raises(rules.NotOverridable):
        rules.validate_override("service_due")
    with pytest.raises(ValueError) as typo:
        rules.validate_override("no_such_code")
    assert not isinstance(typo.value, rules.NotOverridable)


def test_csv_columns_are_the_log_keys():
    assert tuple(CSV_COLUMNS) == tuple(LOG_KEYS)
