"""`pendock tls init` (the dock's own CA and the page's certificate) and `pendock tls
nginx` (the HTTPS front's configuration): run by hw/tls-setup.sh at install, by hand when
the dock gets a new name or address. Neither talks to the daemon."""
from __future__ import annotations

import json
import sys
from pathlib import Path


def add_parser(sub, common) -> None:
    tls = sub.add_parser("tls", parents=[common], help="the page over HTTPS: the dock's CA, its certificate, the front")
    tls.add_argument("action", choices=["init", "nginx"],
                     help="init: the CA (kept if there) and a new certificate; nginx: the front's configuration")
    tls.add_argument("--dir", default="/etc/pendock/tls", help="where the CA and certificate live")
    tls.add_argument("--name", action="append", default=[],
                     help="init: a host name or address tablets use for the dock (repeat; its own are added)")
    tls.add_argument("--out", help="nginx: the file to write (default: DIR/nginx.conf)")
    tls.add_argument("--upstream", type=int, default=8080, help="nginx: the page's port on 127.0.0.1 ([web] port)")
    tls.add_argument("--port", type=int, default=443, help="nginx: the HTTPS port")
    tls.add_argument("--http-port", type=int, default=80, help="nginx: the HTTP port (redirects)")
    tls.add_argument("--include", action="store_true",
                     help="nginx: only what goes in Debian's nginx's http block (/etc/nginx/conf.d/)")


def run(args) -> int:
    try:
        return _run(args)
    except OSError as error:
        print(f"pendock: tls {args.action}: {error.filename or args.dir}: {error.strerror or error}; "
              f"run it as root for /etc/pendock/tls, or give --dir a folder you may write", file=sys.stderr)
        return 1


def _run(args) -> int:
    from appliance import front

    folder = Path(args.dir)
    if args.action == "init":
        result = front.init(folder, front.dock_names(args.name))
        if args.json:
            print(json.dumps(result, indent=2))
        else:
            print(f"The dock's CA is {folder / 'ca.crt'}; the page's certificate names "
                  f"{', '.join(result['names'])}.")
            print(f"CA SHA-256 fingerprint (a tablet must show exactly this at /ca): {result['ca_sha256']}")
        return 0
    target = Path(args.out) if args.out else folder / "nginx.conf"
    target.write_text(front.nginx_conf(folder, upstream=args.upstream, https_port=args.port,
                                       http_port=args.http_port, include=args.include), encoding="ascii")
    print(json.dumps({"path": str(target)}) if args.json else f"Wrote {target}.")
    return 0
