"""The CLI's verb table: every verb the parser accepts has exactly one place to go."""
from __future__ import annotations

import argparse

from appliance import cli, cli_release

# main() runs these itself (version and upgrade: appliance/cli_release.py)
OWN_ENTRY = {"demo", "daemon", "web", "sim", "chain", *cli_release.VERBS}


def test_every_parsed_verb_has_a_handler_and_no_handler_is_unreachable():
    parser = cli.build_parser()
    [verbs] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert set(verbs.choices) - OWN_ENTRY == set(cli.VERBS)


def test_the_common_options_stand_before_or_after_the_verb_and_keep_their_defaults():
    for argv in (["--data", "D", "status"], ["status", "--data", "D"],
                 ["sim", "--data", "D", "dock"], ["sim", "dock", "--data", "D"],
                 ["--data", "D", "sim", "dock"]):
        assert cli.parse_command_line(argv).data == "D", argv
    assert cli.parse_command_line(["--json", "log"]).json is True
    plain = cli.parse_command_line(["status"])
    assert (plain.data, plain.config, plain.json) == (None, None, False)
