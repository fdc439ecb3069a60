"""Item 7 of issue 9: one date rule (YYYY-MM-DD exactly) for the CLI, the daemon and the page;
yes/no flags that take only true or false; one user-name rule for `user add` and the form."""
from __future__ import annotations

from datetime import date

import pytest

from appliance.core import inputs

TODAY = date(2026, 11, 29)


@pytest.mark.parametrize("text", ["2026-W48-1", "2026W481", "20261129", "2026-11-29T00:00", "2026-333",
                                  " 2026-11-29", "2026-11-29 ", "２０２６-11-29", "2026-13-01", "1999-12-31"])
def test_only_yyyy_mm_dd_is_a_date(text):
    with pytest.raises(inputs.BadInput, match="YYYY-MM-DD|out of range"):
        inputs.parse_day(text, TODAY)


def test_a_plain_date_and_an_empty_one():
    assert inputs.parse_day("2026-11-28", TODAY) == date(2026, 11, 28)
    assert inputs.parse_day("", TODAY) == inputs.parse_day(None, TODAY) == TODAY


def test_the_cli_the_daemon_and_the_page_share_one_parse_day():
    from appliance.daemon import commands
    from appliance.page import view

    assert commands.parse_day is inputs.parse_day and view.parse_day is inputs.parse_day


@pytest.mark.parametrize("name, ok", [("thera", True), ("a.b-c_d", True), ("José", False), ("ǅ", False),
                                      ("x" * 33, False), ("", False), ("a b", False), ("١٢", False)])
def test_one_user_name_rule(name, ok):
    from appliance.page import auth

    assert inputs.valid_user_name(name) is ok and auth.valid_user_name(name) is ok
