"""`pendock fleet` (this dock's place in the clinic) and `pendock fleet provision` (the
clinic's broker logins, ACL and dock keys), kept apart from the main verb table."""
from __future__ import annotations

from pathlib import Path


class FleetUsage(Exception):
    """Bad input for a fleet verb (exit 2)."""


def add_parser(sub, common) -> None:
    fl = sub.add_parser("fleet", parents=[common],
                        help="this dock in its clinic: peers, outbox, staleness, conflicts")
    fl.add_argument("action", nargs="?", choices=["provision"],
                    help="provision: write the broker's logins/ACL and each dock's key")
    fl.add_argument("--out", help="provision: folder for the clinic's files")
    fl.add_argument("--dock", action="append", default=[], help="provision: a dock id (repeat)")
    fl.add_argument("--broker", help="provision: the broker's address, mqtts://HOST:PORT (TLS, "
                                     "the default for a bare HOST) or, with --plain, mqtt://HOST:PORT")
    fl.add_argument("--port", type=int, default=None,
                    help="provision: the broker's listening port (default: the --broker URL's)")
    fl.add_argument("--plain", action="store_true",
                    help="provision: allow mqtt:// (no TLS: passwords cross the network in clear)")


def run(args, client, emit) -> int:
    if args.action == "provision":
        return provision(args, emit)
    shown = client.call("fleet")
    emit(args, shown, format_fleet(shown))
    return 0


def provision(args, emit) -> int:
    from appliance.fleet.provision import provision as write
    from appliance.fleet.settings import parse_broker

    if not args.out or not args.dock or not args.broker:
        raise FleetUsage("fleet provision needs --out DIR, --broker mqtt://HOST:PORT and "
                         "--dock ID for each dock (e.g. --dock room-1 --dock room-2)")
    url = args.broker if "://" in args.broker else f"mqtts://{args.broker}"
    try:
        broker = parse_broker(url)
        if not broker.tls and not args.plain:
            raise ValueError(f"--broker {args.broker}: mqtt:// sends the docks' broker passwords in "
                             f"clear over the clinic's network; use mqtts://{broker.host} (TLS with the "
                             f"clinic's own CA, the default), or add --plain for a demo on one machine")
        added = write(Path(args.out), list(args.dock), url, port=args.port or broker.port)
    except ValueError as error:
        raise FleetUsage(str(error)) from None
    out = Path(args.out).resolve()
    result = {"out": str(out), "added": added, "kept": [d for d in args.dock if d not in added]}
    emit(args, result, "\n".join([
        f"Clinic files in {out}:",
        f"  broker/: mosquitto.conf, passwd, acl (docks added: {', '.join(added) or 'none'})"
        + ("; ca.crt/ca.key, the clinic's CA, and broker.crt/broker.key for "
           f"{broker.host}" if broker.tls else "; NO TLS (--plain)"),
        "  keys/: every dock's public key: copy to each dock (keys_dir)",
        "  docks/<id>/: that dock's key, broker password and [fleet] table: copy to that dock only",
    ]))
    return 0


def format_fleet(shown: dict | None) -> str:
    if shown is None:
        return "This dock works alone: no [fleet] broker is configured."
    lines = [f"This dock: {shown['dock_id']} (broker {shown['broker']}, "
             f"{'connected' if shown['connected'] else 'NOT connected'})"]
    if shown.get("last_error"):
        lines.append(f"  {shown['last_error']}")
    if shown.get("equivocations"):
        told = ", ".join(f"{a.get('dock_id')} #{a.get('seq')} ({a.get('why')})"
                         for a in shown.get("recent_equivocations") or [])
        lines.append(f"  ALARM: {shown['equivocations']} equivocation(s): a dock's key signed two events "
                     f"for one place in its chain (stolen key?): {told or 'see the audit trail'}")
    lines.append("History: STALE - nothing heard from the broker for too long; sessions on other "
                 "docks may be missing" if shown["stale"] else "History: shared with the clinic")
    lines.append(f"Outbox: {shown['outbox']} event(s) of this dock not yet delivered")
    if shown.get("chain"):
        lines.append(f"Chain: clinic {shown['chain']['clinic']}; the chain has stored this dock's events "
                     f"up to {shown['chain']['acknowledged']} (they stay in the outbox until then)")
    lines.append("Peers:" if shown["peers"] else "Peers: none in the key ring")
    for peer in shown["peers"]:
        state = {True: "online", False: "offline", None: "never seen"}[peer["online"]]
        lines.append(f"  {peer['dock_id']:<12} {state:<10} last heard {peer['last_heard'] or '-'}")
    if shown["conflicts"]:
        lines.append(f"Conflicts found after a partition: {shown['conflicts']} (see the audit trail)")
        for c in shown.get("recent_conflicts", []):
            lines.append(f"  {c['client_ref']} {c['area']}: {c['first']['dock_id']} "
                         f"{c['first']['started_at'][:16]} and {c['second']['dock_id']} "
                         f"{c['second']['started_at'][:16]}")
    dropped = {k: v for k, v in shown.get("dropped", {}).items() if v}
    if dropped:
        lines.append("Dropped messages: " + ", ".join(f"{k} {v}" for k, v in dropped.items()))
    return "\n".join(lines)
