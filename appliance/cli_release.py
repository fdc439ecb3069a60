"""`pendock version` and `pendock upgrade` (README, Updates): kept apart from the verb table
because they work on the installed releases, not through the daemon alone."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from appliance import __version__

VERBS = ("version", "upgrade")


def add_parser(sub, common) -> None:
    root_help = "filesystem root holding opt/pendock and etc/pendock/release-keys (default /)"
    ve = sub.add_parser("version", parents=[common], help="the running release and the one kept for rollback")
    ve.add_argument("--root", default="/", help=root_help)
    up = sub.add_parser("upgrade", parents=[common],
                        help="install a signed release bundle, check it, roll back if it fails")
    up.add_argument("bundle", nargs="?", help="the release bundle (make bundle)")
    up.add_argument("--rollback", action="store_true", help="go back to the previous release")
    up.add_argument("--finish", action="store_true",
                    help="at boot: check (and keep or roll back) an upgrade a power cut interrupted")
    up.add_argument("--allow-downgrade", action="store_true", help="accept a bundle older than the running release")
    up.add_argument("--root", default="/", help=root_help)


def run(args, usage_error, make_client) -> int:
    from appliance.release.bundle import BundleRefused
    from appliance.release.slots import Layout

    root = Path(args.root)
    if args.verb == "version":
        from appliance.release.upgrade import version_info

        info = version_info(Layout(root), __version__)
        previous = info["previous"] or "none"
        _emit(args, info, f"Running release {info['running']}; kept for rollback: {previous}.")
        return 0
    if [bool(args.bundle), args.rollback, args.finish].count(True) != 1:
        raise usage_error("upgrade needs one of: a BUNDLE file, --rollback, --finish")
    if root == Path("/") and os.geteuid() != 0:
        raise usage_error("upgrade changes /opt/pendock and restarts the units: run it as root "
                          "(sudo pendock upgrade ...)")
    try:
        outcome = _upgrade(args, root, make_client)
    except BundleRefused as error:
        print(f"Refused: {error}", file=sys.stderr)
        return 1
    if outcome is None:
        _emit(args, {"ok": True, "pending": False}, "No upgrade was pending.")
        return 0
    if outcome.ok:
        _emit(args, outcome.as_dict(), f"Running release {outcome.running} (previous {outcome.previous}), healthy.")
        return 0
    what = f"rolled back to {outcome.running}" if outcome.rolled_back else f"running {outcome.running}"
    _emit(args, outcome.as_dict(), f"Release {outcome.attempted} failed its health check, {what}: "
                                   + "; ".join(outcome.problems))
    return 1


def _upgrade(args, root: Path, make_client):
    from appliance.core import paths
    from appliance.core.config import load_config, resolve_config_path
    from appliance.release.machine import real_machine
    from appliance.release.upgrade import finish, rollback, upgrade

    data = Path(args.data) if args.data else (
        paths.data_dir(None) if root == Path("/") else root / "var/lib/pendock")
    config_path = resolve_config_path(args.config, os.environ)
    web = load_config(config_path if config_path.exists() else None).web
    say = (lambda text: None) if args.json else (lambda text: print(text, flush=True))
    machine = real_machine(root, data, make_client, f"http://{web.host}:{web.port}/healthz", say)
    if args.rollback:
        return rollback(machine)
    if args.finish:
        return finish(machine)
    return upgrade(Path(args.bundle), machine, allow_downgrade=args.allow_downgrade)


def _emit(args, result, text: str) -> None:
    print(json.dumps(result, indent=2) if args.json else text)
