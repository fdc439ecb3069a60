"""`pendock clock [--json]` and `pendock clock set YYYY-MM-DDTHH:MM --reason TEXT`.

The Pi has no real-time clock; this is how a person sees whether the dock trusts its
clock and why, and confirms the date and time where there is no NTP (audited).
"""
from __future__ import annotations

import json
import re

MINUTE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


def add_parser(sub, common) -> None:
    ck = sub.add_parser("clock", parents=[common],
                        help="the wall clock, whether it is known right and why; `clock set` confirms it")
    ck.add_argument("action", nargs="?", choices=["set"], help="set: a person confirms the time")
    ck.add_argument("at", nargs="?", metavar="YYYY-MM-DDTHH:MM", help="the dock's local date and time")
    ck.add_argument("--reason", help="why (at least 5 characters), recorded in the audit trail")


def check_set_args(args, usage_error) -> None:
    """Bad input is exit 2 with one plain line, before anything is asked of the daemon."""
    from datetime import datetime

    if args.action != "set":
        if args.at is not None or args.reason is not None:
            raise usage_error("`pendock clock` shows the clock; to set it: pendock clock set "
                              "YYYY-MM-DDTHH:MM --reason TEXT")
        return
    if args.at is None or not MINUTE.fullmatch(args.at):
        raise usage_error(f"clock set needs the dock's local date and time as YYYY-MM-DDTHH:MM "
                          f"(got {args.at!r}), e.g. 2026-03-14T09:30")
    try:
        datetime.strptime(args.at, "%Y-%m-%dT%H:%M")
    except ValueError:
        raise usage_error(f"{args.at} is not a real date and time: use YYYY-MM-DDTHH:MM") from None
    if args.reason is None or len(args.reason.strip()) < 5:
        raise usage_error("clock set needs --reason TEXT (at least 5 characters), e.g. "
                          "--reason \"checked against the clinic's phone\"")


def format_clock(result: dict) -> str:
    lines = [f"Clock: {result['now'][:16].replace('T', ' ')} {result['timezone']}, {result['words']}"]
    if result.get("last_known_right"):
        lines.append(f"Last known right: {result['last_known_right'][:16].replace('T', ' ')}")
    else:
        lines.append("Last known right: not since this boot")
    if result.get("record_latest"):
        lines.append(f"Latest time on the record: {result['record_latest'][:16].replace('T', ' ')}")
    if result.get("vouched_until"):
        how = "exact: an authenticated source this boot" if result.get("vouched_exact") else (
            f"a lower bound, from {result.get('vouched_by') or 'what was kept'}")
        lines.append(f"Vouched for up to: {result['vouched_until'][:16].replace('T', ' ')} ({how}); "
                     f"the interval rules count from this")
    for source in result.get("sources") or ():
        state = "has a time" if source.get("has_time") else "no time now"
        trust = "authenticated" if source.get("authenticated") else "not authenticated"
        moves = "moves vouched time" if source.get("moves_vouched_time") else "sets the date shown only"
        lines.append(f"  {source['name']:<7} {trust}, {state}, {moves}: {source.get('detail', '')}")
    return "\n".join(lines)


def run(args, client, usage_error) -> int:
    check_set_args(args, usage_error)
    if args.action == "set":
        result = client.call("clock_set", at=args.at, reason=args.reason)
    else:
        result = client.call("clock")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(format_clock(result))
    return 0
