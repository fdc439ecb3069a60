"""`pendock`: the therapist's and technician's command line.

One verb per row of the README's verb table (a stable contract). Most verbs ask the
running daemon over its control socket (it owns the pins and the record). Plain text for
a person, `--json` for a script. Exit status: 0 done, 1 refused by a rule (reason printed), 2 bad usage or input.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from typing import Callable

from appliance import cli_clock
from appliance import cli_chain, cli_fleet
from appliance import cli_release
from appliance import cli_tls
from appliance.core import inputs, paths
from appliance.core.dates import long_date
from appliance.core.inputs import ROLES
from appliance.daemon.control import BadRequest, ControlClient, ControlError, DaemonUnavailable, Refused
from appliance.record.export import sessions_csv

EXIT_OK, EXIT_REFUSED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input on the command line (exit 2)."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse's own exit code is 2 too; keep its message short
        self.print_usage(sys.stderr)
        raise UsageError(f"{self.prog}: {message}")


def _time_of_day(text: str):
    """HH:MM, 00:00-23:59, for `demo --start-at`."""
    from datetime import time

    try:
        hours, minutes = text.split(":")
        return time(int(hours), int(minutes))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time of day HH:MM (00:00-23:59)") from None


# The options every verb takes. No defaults while parsing (`parse_command_line` fills them
# in after), so they may stand before the verb, after it, or after a sim verb, and one
# given anywhere is kept: `pendock --data D status`, `pendock status --data D`,
# `pendock sim --data D dock`, `pendock sim dock --data D`.
COMMON_DEFAULTS = {"config": None, "data": None, "json": False}


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False, argument_default=argparse.SUPPRESS)
    common.add_argument("--config", help="config file (default: PENDOCK_CONFIG or /etc/pendock/pendock.toml)")
    common.add_argument("--data", help="data folder (default: PENDOCK_DATA or /var/lib/pendock)")
    common.add_argument("--json", action="store_true", help="print JSON for scripts")
    return common


def parse_command_line(argv: list[str]) -> argparse.Namespace:
    args = build_parser().parse_args(_joined_negative_values(argv))
    for name, default in COMMON_DEFAULTS.items():
        if not hasattr(args, name):
            setattr(args, name, default)
    return args


def build_parser() -> argparse.ArgumentParser:
    common = _common_options()
    parser = _Parser(prog="pendock", parents=[common],
                     description="Pen dock: the pen stays held until it is safe to use.")
    sub = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)
    sub.required = True

    demo = sub.add_parser("demo", parents=[common], help="simulated dock with its page, on 127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--start-at", metavar="HH:MM", type=_time_of_day,
                      help="a new demo's simulated clock starts at this time of today (a saved clock wins)")
    demo.add_argument("--broker", help="share one history with the clinic's docks: mqtt://HOST:PORT")
    demo.add_argument("--dock-id", help="this dock's id in the clinic (with --broker), e.g. room-1")
    demo.add_argument("--tls", action="store_true",
                      help="the page over HTTPS on --port (nginx in front; HTTP on --port + 1 redirects)")
    demo.add_argument("--clinic", help="this dock's clinic in a chain (with --broker), e.g. north")
    sub.add_parser("daemon", parents=[common], help="the dock daemon (systemd runs it)")
    web = sub.add_parser("web", parents=[common], help="the page, behind waitress (systemd runs it)")
    web.add_argument("--port", type=int)
    web.add_argument("--host")

    sim = sub.add_parser("sim", parents=[common], help="drive the simulated pen of a running demo")
    simsub = sim.add_subparsers(dest="sim_verb", metavar="SIM_VERB", parser_class=_Parser)
    simsub.required = True
    d = simsub.add_parser("dock", parents=[common], help="seat the pen")
    d.add_argument("--bounce", action="store_true", help="with switch chatter")
    u = simsub.add_parser("undock", parents=[common], help="lift the pen (refused while held)")
    u.add_argument("--force", action="store_true", help="the technician's key: recorded as a forced removal")
    c = simsub.add_parser("cartridge", parents=[common], help="fit (or --remove) a cartridge")
    c.add_argument("--serial")
    c.add_argument("--strokes")
    c.add_argument("--remove", action="store_true")
    c.add_argument("--forged", action="store_true", help="a certificate no trusted maker signed")
    c.add_argument("--clone-of", metavar="SERIAL", help="genuine cartridge SERIAL's certificate on another chip")
    c.add_argument("--reset-counter", action="store_true",
                   help="the fitted cartridge's chip counter back to new, as a remanufacturer would")
    n = simsub.add_parser("needle", parents=[common], help="use the lifted pen")
    n.add_argument("--minutes", required=True)
    n.add_argument("--depth")
    n.add_argument("--strokes")
    f = simsub.add_parser("fault", parents=[common], help="crc, stall, overtemp, battery-low, chip, or clear")
    f.add_argument("name")
    k = simsub.add_parser("clock", parents=[common], help="move the simulated wall clock")
    k.add_argument("--advance", help="e.g. 90m, 21d")
    k.add_argument("--jump", help="wall clock only, e.g. -1d, 365d")
    k.add_argument("--unsync", action="store_true")
    k.add_argument("--sync", action="store_true", help="an NTP synchronisation the dock cannot authenticate")
    k.add_argument("--authenticated", action="store_true",
                   help="with --sync: an authenticated one (NTS, or a battery-backed RTC)")

    sub.add_parser("status", parents=[common], help="live state: held or free, and why")
    nc = sub.add_parser("next-client", parents=[common], help="name the next client")
    nc.add_argument("ref", help="booking reference (never a name)")
    nc.add_argument("--area")
    nc.add_argument("--checklist", default="", help="screened,test-area")
    sub.add_parser("clear-client", parents=[common], help="forget a wrongly named next client (the pen is held)")
    ov = sub.add_parser("override", parents=[common], help="manager override of an overridable lock")
    ov.add_argument("code")
    ov.add_argument("--reason", required=True)
    ov.add_argument("--manager", help="the manager giving it (else asked); the password is asked on stdin")
    lg = sub.add_parser("log", parents=[common], help="a day's sessions (today by default)")
    lg.add_argument("--date")
    lg.add_argument("--csv", action="store_true")
    lg.add_argument("--all-docks", action="store_true", help="the clinic's sessions, every dock's")
    cli_fleet.add_parser(sub, common)
    cli_tls.add_parser(sub, common)
    cli_chain.add_parser(sub, common)
    for verb, text in (("selftest", "cycle light, buzzer, latch; read seat and pen"),
                       ("readout", "raw pen frame, decoded, CRC verdict"),
                       ("pins", "every pin of the map with its level")):
        sub.add_parser(verb, parents=[common], help=text)
    for verb in ("service-reset", "rebaseline"):
        p = sub.add_parser(verb, parents=[common], help="technician-only clear")
        p.add_argument("--reason", required=True)
    au = sub.add_parser("audit", parents=[common], help="audit trail")
    au.add_argument("action", choices=["verify"])
    us = sub.add_parser("user", parents=[common], help="page users: add, remove, passwd (password on stdin)")
    us.add_argument("action", choices=["add", "remove", "passwd"])
    us.add_argument("name")
    us.add_argument("--role", choices=ROLES, help="for add")
    us.add_argument("--manager", help="a manager who allows a new manager or a manager's new password "
                                      "(their password is asked on stdin after the new one)")
    tk = sub.add_parser("token", parents=[common], help="read-only API tokens: create, list, revoke ID|NAME")
    tk.add_argument("action", choices=["create", "list", "revoke"])
    tk.add_argument("ref", nargs="?", help="for revoke: the token's id or name")
    tk.add_argument("--name", default="api", help="for create")
    bk = sub.add_parser("backup", parents=[common], help="online copy of the record")
    bk.add_argument("path")
    rs = sub.add_parser("restore", parents=[common], help="merge a checked backup into the record (no session open)")
    rs.add_argument("path")
    pg = sub.add_parser("purge", parents=[common], help="delete sessions past the retention period")
    pg.add_argument("--before", help="YYYY-MM-DD (default: today minus store.retention_days)")
    cli_clock.add_parser(sub, common)
    sub.add_parser("setup-code", parents=[common],
                   help="the one-time code of the page's first-run form (until a manager exists)")
    cli_release.add_parser(sub, common)
    return parser


# -- talking to the daemon ----------------------------------------------------------------

def _via() -> str:
    ssh = os.environ.get("SSH_CONNECTION") or os.environ.get("SSH_CLIENT")
    return f"ssh from {ssh.split()[0]}" if ssh else ""


def client_for(args) -> ControlClient:
    return ControlClient(paths.socket_path(args.data), via=_via())


def _emit(args, result, text: str) -> None:
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(text)


# -- plain words ----------------------------------------------------------------------------

def format_status(status: dict) -> str:
    lines = []
    held = status["held"]
    if not status["docked"]:
        head = "No pen in the cradle"
        if status.get("session"):
            s = status["session"]
            head += (f" - session {s['id']} in progress for {s['client_ref'] or 'no client'} ({s['area']}),"
                     f" out {s['out_seconds'] // 60} min")
    else:
        head = "Pen HELD" if held else "Pen FREE to lift"
    lines.append(head)
    for reason in status.get("reasons", []):
        mark = "x" if reason["kind"] == "lock" else "!"
        lines.append(f"  [{mark}] {reason['words']} {reason['action']}  ({reason['code']})")
        found = (reason.get("detail") or {}).get("next_eligible_date")
        if reason["code"] == "client_interval" and found:
            lines.append(f"      Next eligible date: {long_date(found)}")
    for code in status.get("overridden", []):
        lines.append(f"  [o] {code} overridden by a manager for this session")
    pen = status.get("pen")
    if pen:
        lines.append(
            f"Pen: serial {pen['serial']}, firmware {pen['firmware']}, {pen['strokes']} strokes, "
            f"{pen['motor_seconds'] / 3600:.1f} motor hours, battery {pen['battery_mv']} mV, "
            f"{pen['temperature_c']:.1f} C" + (f", faults: {', '.join(pen['faults'])}" if pen['faults'] else "")
        )
    cartridge = status.get("cartridge")
    lines.append(f"Cartridge: {cartridge['serial']} ({cartridge['strokes']} strokes, "
                 f"{'authenticated' if cartridge.get('authenticated') else 'NOT authenticated'})"
                 if cartridge else "Cartridge: none")
    nc = status.get("next_client")
    if nc:
        checklist = ", ".join(nc.get("checklist") or []) or "checklist not ticked"
        lines.append(f"Next client: {nc['ref']}, {nc['area']} ({checklist})")
    else:
        lines.append("Next client: none named (pendock next-client REF)")
    lines.append(
        f"Clock: {status['now'][:16].replace('T', ' ')} {status.get('timezone', '')}"
        + ("" if status["clock_synced"] else " - NOT known to be right")
    )
    return "\n".join(lines)


def _depth(depth_mm: float | None) -> str:
    """Null: the pen could not show the depth belongs to the session (depth_unmeasured)."""
    return "depth not measured" if depth_mm is None else f"{depth_mm:.2f} mm"


def format_log(sessions: list[dict], day: str, rooms: bool = False) -> str:
    if not sessions:
        return f"No sessions on {day}."
    lines = [f"Sessions on {day}, newest first:"]
    for s in sessions:
        room = f"{s.get('dock_id') or 'this dock'}: " if rooms else ""
        start = (s.get("started_at") or "")[11:16]
        end = (s.get("ended_at") or "")[11:16] or "--:--"
        minutes = (s.get("needling_seconds") or 0) / 60
        extra = ", ".join(list(s.get("warnings") or []) + [f"overridden: {c}" for c in s.get("overrides") or []])
        lines.append(
            f"  {room}#{s['id']} {start}-{end} {s.get('client_ref') or '-'} {s.get('area')} "
            f"cartridge {s.get('cartridge_serial')} {minutes:.0f} min {s.get('strokes') or 0} strokes "
            f"{_depth(s.get('max_depth_mm'))} {s.get('outcome')}"
            + (f" [{extra}]" if extra else "")
            + f" next {s.get('next_eligible_date') or '-'} / rec. {s.get('recommended_date') or '-'}"
        )
    return "\n".join(lines)


# -- verbs ----------------------------------------------------------------------------------

def _sim_args(args) -> tuple[str, dict]:
    verb = args.sim_verb
    if verb == "dock":
        return "sim.dock", {"bounce": args.bounce}
    if verb == "undock":
        return "sim.undock", {"force": args.force}
    if verb == "cartridge":
        return "sim.cartridge", {"serial": args.serial, "strokes": args.strokes, "remove": args.remove,
                                 "forged": args.forged, "clone_of": args.clone_of,
                                 "reset_counter": args.reset_counter}
    if verb == "needle":
        return "sim.needle", {"minutes": args.minutes, "depth": args.depth, "strokes": args.strokes}
    if verb == "fault":
        return "sim.fault", {"name": args.name}
    if args.authenticated and not args.sync:
        raise UsageError("--authenticated goes with --sync: pendock sim clock --sync --authenticated")
    if args.unsync or args.sync:
        return "sim.clock", {"synced": bool(args.sync), "authenticated": bool(args.authenticated)}
    return "sim.clock", {"advance": args.advance, "jump": args.jump}


def run_sim(args) -> int:
    cmd, payload = _sim_args(args)
    try:
        result = client_for(args).call(cmd, **payload)
    except BadRequest as error:
        if "unknown command" in str(error):
            raise UsageError("this dock is not simulated: `pendock sim` only drives the pen of `pendock demo`") from None
        raise
    _emit(args, result, result.get("done", "done") + "\n" + format_status(result["status"]))
    return EXIT_OK


def _status(args, client) -> int:
    status = client.call("status")
    _emit(args, status, format_status(status))
    return EXIT_OK


def _next_client(args, client) -> int:
    status = client.call("next_client", ref=args.ref, area=args.area, checklist=args.checklist)
    _emit(args, status, format_status(status))
    return EXIT_REFUSED if status["held"] and status["docked"] else EXIT_OK


def _clear_client(args, client) -> int:
    status = client.call("clear_client")
    _emit(args, status, "Next client cleared.\n" + format_status(status))
    return EXIT_OK


def _override(args, client) -> int:
    """A manager's act: the manager's name (--manager, or asked) and password, read from
    stdin (a line each when it is not a terminal) and checked by the daemon."""
    status = client.call("override", code=args.code, reason=args.reason, **_manager_words(args))
    _emit(args, status, f"{args.code} overridden for the next session.\n" + format_status(status))
    return EXIT_OK


def _log(args, client) -> int:
    if args.json and args.csv:
        raise UsageError("choose one of --json and --csv")
    sessions = client.call("sessions", date=args.date, all_docks=args.all_docks)
    if args.csv:
        sys.stdout.write(sessions_csv(sessions))
    else:
        day = args.date or client.call("status")["today"]
        _emit(args, sessions, format_log(sessions, day, rooms=args.all_docks))
    return EXIT_OK


def _fleet(args, client) -> int:
    return cli_fleet.run(args, client, _emit)


def _technician_reset(args, client) -> int:
    """service-reset and rebaseline: the same shape, the verb names the command."""
    status = client.call(args.verb.replace("-", "_"), reason=args.reason)
    _emit(args, status, f"{args.verb} recorded.\n" + format_status(status))
    return EXIT_OK


def _readout(args, client) -> int:
    result = client.call("readout")
    text = [f"Frame ({result['length']} bytes): {result['hex']}", f"CRC: {result['crc']}"]
    for fv in result["fields"]:
        text.append(f"  {fv['offset']:>3} {fv['name']:<20} {fv['raw_hex']:<12} {fv['value']} {fv['unit']}")
    _emit(args, result, "\n".join(text))
    return EXIT_OK


def _pins(args, client) -> int:
    rows = client.call("pins")
    text = [f"{'role':<13} {'BCM':>3}  {'dir':<6} {'active':<6} level  what"]
    for r in rows:
        level = "-" if r["level"] is None else str(r["level"])
        text.append(f"{r['role']:<13} {r['bcm']:>3}  {r['direction']:<6} {r['active']:<6} {level:<5}  {r['what']}")
    _emit(args, rows, "\n".join(text))
    return EXIT_OK


def _selftest(args, client) -> int:
    rows = client.call("selftest")
    text = [f"{'PASS' if r['ok'] else 'FAIL'}  {r['part']:<9} {r['seen']}" for r in rows]
    _emit(args, rows, "\n".join(text))
    return EXIT_OK if all(r["ok"] for r in rows) else EXIT_REFUSED


def _audit(args, client) -> int:
    result = client.call("audit_verify")
    if result["ok"]:
        _emit(args, result, f"Audit trail intact: {result['checked']} entries verified.")
        return EXIT_OK
    _emit(args, result, f"Audit trail BROKEN at entry {result['first_bad_id']}: {result['reason']}")
    return EXIT_REFUSED


def _user(args, client) -> int:
    try:
        name = inputs.check_user_name(args.name)  # the login form's rule, before any password
    except inputs.BadInput as error:
        raise UsageError(str(error)) from None
    if args.action == "remove":
        result = client.call("user_remove", name=name)
        _emit(args, result, f"User {name} removed; their logins on the page have ended.")
        return EXIT_OK
    if args.action == "add" and not args.role:
        raise UsageError("user add needs --role therapist or --role manager")
    password = _read_password()
    # hashlib (and its OpenSSL) only for the verbs that hash: `pendock daemon` runs this
    # module too, and the daemon's process keeps what it loads (bar P4, core/digest.py).
    from appliance.record.passwords import password_hash

    allowed = _manager_words(args) if args.manager else {}  # needed for a manager's powers
    if args.action == "passwd":
        result = client.call("user_passwd", name=name, password_hash=password_hash(password), **allowed)
        _emit(args, result, f"Password of {name} changed; their logins on the page have ended.")
        return EXIT_OK
    result = client.call("user_add", name=name, role=args.role, password_hash=password_hash(password),
                         **allowed)
    _emit(args, result, f"User {result['name']} ({result['role']}) added.")
    return EXIT_OK


def _token(args, client) -> int:
    if args.action == "list":
        tokens = client.call("token_list")
        text = [f"{t['id']:>4}  {t['name']:<24} created {t['created_at'][:16].replace('T', ' ')}" for t in tokens]
        _emit(args, tokens, "\n".join(text) or "No API tokens.")
        return EXIT_OK
    if args.action == "revoke":
        if not args.ref:
            raise UsageError("token revoke needs the token's id or name (see `pendock token list`)")
        result = client.call("token_revoke", ref=args.ref)
        _emit(args, result, f"API token {result['id']} ({result['name']}) revoked.")
        return EXIT_OK
    import hashlib  # as in _user: not loaded by `pendock daemon`
    import secrets

    token = "pdk_" + secrets.token_urlsafe(32)
    result = client.call("token_create", name=args.name, token_hash=hashlib.sha256(token.encode()).hexdigest())
    result["token"] = token
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"Read-only API token {result['id']} ({result['name']}); it is shown once, keep it safe:")
    print(token)
    return EXIT_OK


def _backup(args, client) -> int:
    result = client.call("backup", path=os.path.abspath(args.path))
    _emit(args, result, f"Backup written to {result['path']} ({result['bytes']} bytes), integrity {result['integrity']}.")
    return EXIT_OK


def _restore(args, client) -> int:
    result = client.call("restore", path=os.path.abspath(args.path))
    added = ", ".join(f"{count} {what.replace('_', ' ')}" for what, count in result["added"].items())
    _emit(args, result, f"Merged {result['restored']} into the record ({added} added); everything "
                        f"the record held was kept.")
    return EXIT_OK


def _purge(args, client) -> int:
    if args.before is not None and not args.before.strip():
        raise UsageError("--before needs a date, YYYY-MM-DD (it was empty); leave --before out "
                         "to purge by the retention period")
    result = client.call("purge", before=args.before)
    _emit(args, result, f"{result['purged']} sessions before {result['before']} purged (audit kept).")
    return EXIT_OK


def _setup_code(args, client) -> int:
    result = client.call("setup_code")
    _emit(args, result, f"Setup code: {result['code']}\nOpen the dock's page and choose \"First run\"; "
                        "the code works once, until a manager exists.")
    return EXIT_OK


# Each verb that talks to the daemon: its handler, (parsed args, control client) -> exit code.
VERBS: dict[str, Callable[..., int]] = {
    "status": _status,
    "next-client": _next_client,
    "clear-client": _clear_client,
    "override": _override,
    "log": _log,
    "service-reset": _technician_reset,
    "rebaseline": _technician_reset,
    "readout": _readout,
    "pins": _pins,
    "selftest": _selftest,
    "audit": _audit,
    "user": _user,
    "token": _token,
    "backup": _backup,
    "restore": _restore,
    "purge": _purge,
    "clock": lambda args, client: cli_clock.run(args, client, UsageError),
    "fleet": _fleet,
    "tls": lambda args, client: cli_tls.run(args),  # talks to no daemon
    "setup-code": _setup_code,
}


def run_verb(args) -> int:
    handler = VERBS.get(args.verb)
    if handler is None:
        raise UsageError(f"unknown verb {args.verb}")
    return handler(args, client_for(args))


def _manager_words(args) -> dict[str, str]:
    """The manager's name and password for the daemon to check: from the terminal, or a
    line each on stdin (the name only when --manager is not given). Missing ones are
    left out, and the daemon says what it needs."""
    words: dict[str, str] = {}
    tty = sys.stdin.isatty()
    name = args.manager or (input("Manager's name: ") if tty else sys.stdin.readline().rstrip("\n"))
    if name:
        words["manager"] = name
    password = getpass.getpass(f"Password of manager {name}: ") if tty else sys.stdin.readline().rstrip("\n")
    if password:
        words["manager_password"] = password
    return words


def _read_password() -> str:
    if sys.stdin.isatty():
        password = getpass.getpass("Password: ")
        if getpass.getpass("Again: ") != password:
            raise UsageError("the two passwords differ")
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise UsageError("a password needs at least 8 characters (give it on stdin)")
    return password


def _joined_negative_values(argv: list[str]) -> list[str]:
    """`sim clock --jump -30d` as `--jump=-30d`: argparse would take "-30d" for an option."""
    joined: list[str] = []
    for arg in argv:
        if joined and joined[-1] == "--jump" and arg.startswith("-") and arg[1:2].isdigit():
            joined[-1] = f"--jump={arg}"
        else:
            joined.append(arg)
    return joined


def main(argv: list[str] | None = None) -> int:
    try:
        code = _dispatch(argv)
        sys.stdout.flush()  # here, where a closed pipe is caught, not at exit
        return code
    except BrokenPipeError:
        # `pendock status | head -1`: the reader left; end quietly, and let nothing
        # try to flush into the closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_USAGE


def _dispatch(argv: list[str] | None) -> int:
    try:
        args = parse_command_line(sys.argv[1:] if argv is None else argv)
        if args.verb == "demo":
            from appliance.demo import run_demo

            return run_demo(args)
        if args.verb in ("daemon", "web"):
            from appliance import processes

            return processes.run(args)
        if args.verb == "sim":
            return run_sim(args)
        if args.verb == "chain":
            return cli_chain.run(args)
        if args.verb in cli_release.VERBS:
            return cli_release.run(args, UsageError, lambda: client_for(args))
        return run_verb(args)
    except (UsageError, cli_fleet.FleetUsage) as error:
        print(f"pendock: {error}", file=sys.stderr)
        return EXIT_USAGE
    except Refused as error:
        print(f"Refused: {error}", file=sys.stderr)
        return EXIT_REFUSED
    except DaemonUnavailable as error:
        print(f"pendock: {error}", file=sys.stderr)
        return EXIT_USAGE
    except ControlError as error:
        print(f"pendock: {error}", file=sys.stderr)
        return EXIT_USAGE
    except (paths.UntrustedSocket, paths.UnusableDataDir) as error:
        print(f"pendock: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
