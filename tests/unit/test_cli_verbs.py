"""The CLI's verb table: every verb the parser accepts has exactly one place to go."""
from __future__ import annotations

import argparse

from appliance import cli

OWN_ENTRY = {"demo", "daemon", "web", "sim"}  # main() runs these itself


def test_every_parsed_verb_has_a_handler_and_no_handler_is_unreachable():
    parser = cli.build_parser()
    [verbs] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(verbs.choices) - OWN_ENTRY == set(cli.VERBS)
