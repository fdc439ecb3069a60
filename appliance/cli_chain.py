"""`pendock chain provision|ingest|report`: a chain's central side (README "A chain's
records in one place"). None of them talks to a dock's daemon."""
from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

from appliance.cli_fleet import FleetUsage


class ChainUsage(FleetUsage):
    """Bad input for a chain verb (exit 2)."""


def add_parser(sub, common) -> None:
    ch = sub.add_parser("chain", parents=[common],
                        help="a chain of clinics: bridges, the ingest worker, the owner's report")
    ch.add_argument("action", choices=["provision", "ingest", "report", "page", "user"])
    ch.add_argument("--out", help="provision: folder for the chain's files")
    ch.add_argument("--central", help="provision: the central broker, mqtt://HOST:PORT")
    ch.add_argument("--clinic", action="append", default=[], metavar="ID=mqtt://HOST:PORT",
                    help="provision: a clinic and its broker (repeat for each)")
    ch.add_argument("--anonymous", action="store_true", help="provision: a demo: no logins, no TLS")
    ch.add_argument("--broker", help="ingest: the central broker, mqtt://HOST:PORT or mqtts://")
    ch.add_argument("--database", help="ingest, report: PostgreSQL, e.g. postgresql:///pendock")
    ch.add_argument("--keys-dir", help="ingest: the key registry, <clinic>/<dock>.pub")
    ch.add_argument("--key", help="ingest: the worker's key (default: chain.key beside --keys-dir)")
    ch.add_argument("--username", default="chain-worker", help="ingest: the central broker login")
    ch.add_argument("--password-file", help="ingest: the login's password (default: broker-password "
                                            "beside --keys-dir, when there)")
    ch.add_argument("--tls-ca-file", default="", help="ingest: mqtts: the chain's CA")
    ch.add_argument("--since", help="report: sessions from this day on, YYYY-MM-DD")
    ch.add_argument("--name", help="user: the owner's page login to add (its password on stdin)")
    ch.add_argument("--host", default="127.0.0.1", help="page: the address to serve on (put TLS in front)")
    ch.add_argument("--port", type=int, default=8090, help="page: the port")


def run(args) -> int:
    if args.action == "provision":
        return provision(args)
    if args.action == "ingest":
        return ingest(args)
    if args.action == "page":
        return page(args)
    if args.action == "user":
        return user(args)
    return report(args)


def user(args) -> int:
    from appliance.chain.page import add_user

    import psycopg

    if not args.database or not args.name:
        raise ChainUsage("chain user needs --database URL and --name NAME (the password on stdin)")
    password = sys.stdin.readline().rstrip("\n")
    if len(password) < 8:
        raise ChainUsage("a password needs at least 8 characters (give it on stdin)")
    try:
        add_user(args.database, args.name, password)
    except ValueError as error:
        raise ChainUsage(str(error)) from None
    except psycopg.Error as error:
        raise ChainUsage(f"--database: {str(error).strip()}") from None
    _emit(args, {"user": args.name, "role": "chain"}, f"{args.name} may log in to the owner's page")
    return 0


def page(args) -> int:
    from waitress import serve

    from appliance.chain.page import create_chain_app

    if not args.database:
        raise ChainUsage("chain page needs --database URL")
    print(f"The owner's page: http://{args.host}:{args.port}/", flush=True)
    serve(create_chain_app(args.database), host=args.host, port=args.port, threads=4)
    return 0


def provision(args) -> int:
    from appliance.chain.provision import provision as write

    if not args.out or not args.central or not args.clinic:
        raise ChainUsage("chain provision needs --out DIR, --central mqtt://HOST:PORT and "
                         "--clinic ID=mqtt://HOST:PORT for each clinic")
    try:
        result = write(Path(args.out), args.central, list(args.clinic), anonymous=args.anonymous)
    except ValueError as error:
        raise ChainUsage(str(error)) from None
    _emit(args, result, "\n".join([
        f"Chain files in {result['out']}:",
        "  central/mosquitto.conf: the central broker" + ("" if args.anonymous else
                                                          " (with passwd, acl, ca.crt and its certificate)"),
        "  brokers/<clinic>/mosquitto.conf: each clinic broker's configuration and bridge",
        f"  worker/: the ingest worker's key; --keys-dir {result['keys_dir']}: copy each clinic's "
        "keys/*.pub into its folder there",
        "  chain.pub: copy it into every clinic's keys/ folder (every dock's keys_dir)",
    ]))
    return 0


def ingest(args) -> int:
    from appliance.chain.ingest import Worker, run_worker
    from appliance.fleet import keys
    from appliance.fleet.settings import parse_broker

    if not args.broker or not args.database or not args.keys_dir:
        raise ChainUsage("chain ingest needs --broker mqtt://HOST:PORT, --database URL and --keys-dir DIR")
    keys_dir = Path(args.keys_dir)
    key_file = Path(args.key) if args.key else keys_dir.resolve().parent / "chain.key"
    password_file = Path(args.password_file) if args.password_file else keys_dir.resolve().parent / "broker-password"
    try:
        broker = parse_broker(args.broker)
        key = keys.load_private_key(key_file)
        password = password_file.read_text(encoding="utf-8").strip() if (
            args.password_file or password_file.exists()) else ""
    except (ValueError, keys.KeyError_) as error:
        raise ChainUsage(str(error)) from None
    except OSError as error:
        raise ChainUsage(f"--password-file {password_file}: cannot read it ({error.strerror})") from None
    import logging

    import psycopg

    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        worker = Worker(broker=broker, database=args.database, keys_dir=keys_dir, key=key,
                        username=args.username, password=password, tls_ca_file=args.tls_ca_file)
    except keys.KeyError_ as error:
        raise ChainUsage(str(error)) from None
    except psycopg.Error as error:
        raise ChainUsage(f"--database: {str(error).strip()}") from None
    print(f"chain: ingesting from {broker} into PostgreSQL ({sum(map(len, worker.registry.values()))} "
          f"docks in {len(worker.registry)} clinics)", flush=True)
    return run_worker(worker)


def report(args) -> int:
    from appliance.chain import store

    import psycopg

    if not args.database:
        raise ChainUsage("chain report needs --database URL (e.g. postgresql:///pendock)")
    since = None
    if args.since:
        try:
            since = date.fromisoformat(args.since)
        except ValueError:
            raise ChainUsage(f"--since {args.since!r}: give a day as YYYY-MM-DD") from None
    try:
        with store.connect(args.database) as conn:
            shown = store.report(conn, since)
    except psycopg.Error as error:
        raise ChainUsage(f"--database: {str(error).strip()}") from None
    _emit(args, shown, format_report(shown))
    return 0


def format_report(shown: dict) -> str:
    lines = [f"Sessions in the chain: {shown['sessions']}"]
    for clinic in shown["clinics"]:
        lines.append(f"Clinic {clinic['clinic']}:")
        for d in clinic["docks"]:
            lag = "never heard" if d["lag_seconds"] is None else f"heard {d['lag_seconds']:.0f} s ago"
            lines.append(f"  {d['dock_id']:<12} {d['sessions']:>6} sessions  last event "
                         f"{d['last_event_at'] or '-'}  {lag}  missing {d['missing']}")
    dropped = {k: v for k, v in shown.get("dropped", {}).items() if v}
    if dropped:
        lines.append("Dropped by the worker: " + ", ".join(f"{k} {v}" for k, v in sorted(dropped.items())))
    return "\n".join(lines)


def _emit(args, value, text: str) -> None:
    print(json.dumps(value, indent=2) if getattr(args, "json", False) else text)
    sys.stdout.flush()
