"""The page over HTTPS: the dock's own CA and certificate, and Debian's nginx in front of
waitress (`pendock tls init`, `pendock tls nginx`, `pendock demo --tls`).

Why a front and not a WSGI server that speaks TLS: the Python servers that do (cheroot,
gunicorn) give each connection that is still sending its request a worker thread, so 100
slow connections starve them (S8); nginx waits for requests without threads, closes a slow
header or body after 10 s, caps the body at 64 KiB in memory, and terminates TLS in C.
waitress stays behind it on 127.0.0.1, trusting nginx's X-Forwarded-For and -Proto only
(so the login throttle still sees each client's own address).

  TLS_DIR/ca.key, ca.crt      the dock's CA, made once at install (the key never leaves)
  TLS_DIR/dock.key, dock.crt  the page's certificate: the dock's host names and addresses
  TLS_DIR/nginx.conf          the front: HTTPS, and HTTP that redirects to it except
                              GET /healthz and GET /ca (to enrol a tablet with the CA)
"""
from __future__ import annotations

import argparse
import socket
import subprocess
import sys
from pathlib import Path

DEFAULT_TLS_DIR = Path("/etc/pendock/tls")
CA_NAME = "pen-dock {host} CA"


def dock_names(extra: list[str] | None = None) -> list[str]:
    """The names a tablet may use for the dock: its host name (and .local), its addresses."""
    host = socket.gethostname()
    names = [host, f"{host}.local", "localhost", "127.0.0.1", "::1"]
    try:
        names += [str(info[4][0]) for info in socket.getaddrinfo(host, None) if info[4][0] not in names]
    except OSError:
        pass
    try:  # the addresses on the clinic's network (getaddrinfo often knows only 127.0.1.1)
        shown = subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout
        names += shown.split()
    except (OSError, subprocess.SubprocessError):
        pass
    return list(dict.fromkeys([*(extra or []), *names]))


def init(folder: Path, names: list[str]) -> dict:
    """The CA (kept if there) and a new page certificate for `names`."""
    from appliance import certs

    folder.mkdir(mode=0o755, parents=True, exist_ok=True)
    certs.make_ca(folder, CA_NAME.format(host=socket.gethostname()))
    certs.issue(folder, folder / "dock.key", folder / "dock.crt", names)
    return {"dir": str(folder), "names": names, "ca_sha256": certs.fingerprint(folder / "ca.crt")}


def nginx_conf(folder: Path, *, upstream: int, https_port: int = 443, http_port: int = 80,
               listen: str = "", run_dir: Path | None = None, include: bool = False) -> str:
    """nginx's whole configuration for the front (`nginx -c FILE`), with `run_dir` for its
    pid, log and temporary files (the demo); or, `include`, only what goes in Debian's
    nginx's http block (/etc/nginx/conf.d/pendock.conf, hw/tls-setup.sh)."""
    run = run_dir or Path("/run/pendock-front")
    at = f"{listen}:" if listen else ""
    https_url = "https://$host$request_uri" if https_port == 443 else f"https://$host:{https_port}$request_uri"
    proxy = ("proxy_pass http://page; proxy_http_version 1.1; proxy_set_header Connection \"\"; "
             "proxy_set_header Host $http_host; proxy_set_header X-Forwarded-For $remote_addr;")
    head = f"""# pen-dock's HTTPS front (written by `pendock tls nginx`): see appliance/front.py
worker_processes 1;
pid {run / 'nginx.pid'};
error_log {run / 'error.log'} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {run / 'body'};
    proxy_temp_path {run / 'proxy'};
    fastcgi_temp_path {run / 'fastcgi'};
    uwsgi_temp_path {run / 'uwsgi'};
    scgi_temp_path {run / 'scgi'};
"""
    if include:
        head = "# pen-dock's HTTPS front (written by `pendock tls nginx --include`): see appliance/front.py\n"
    body = f"""    server_tokens off;
    # S8: a slow header or body is closed after 10 s; a body over 64 KiB is refused (413)
    # and one under it is kept in memory, never spooled.
    client_header_timeout 10s;
    client_body_timeout 10s;
    send_timeout 10s;
    keepalive_timeout 30s;
    client_max_body_size 64k;
    client_body_buffer_size 64k;
    large_client_header_buffers 4 16k;
    proxy_read_timeout 30s;  # the live page's long-poll answers within 20 s
    proxy_max_temp_file_size 0;  # a large answer (a day's CSV) streams: nothing on disk
    upstream page {{ server 127.0.0.1:{upstream}; keepalive 8; }}
    server {{
        listen {at}{https_port} ssl;
        ssl_certificate {folder / 'dock.crt'};
        ssl_certificate_key {folder / 'dock.key'};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_cache shared:pendock:1m;
        location / {{ {proxy} proxy_set_header X-Forwarded-Proto https; }}
    }}
    server {{
        listen {at}{http_port};
        location = /healthz {{ {proxy} proxy_set_header X-Forwarded-Proto http; }}
        location = /ca {{ {proxy} proxy_set_header X-Forwarded-Proto http; }}
        location = /ca.crt {{ {proxy} proxy_set_header X-Forwarded-Proto http; }}
        location / {{ return 301 {https_url}; }}
    }}
"""
    return head + body + ("" if include else "}\n")


def write_nginx_conf(folder: Path, target: Path, **options) -> Path:
    run = options.get("run_dir")
    if run is not None:
        for sub in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (Path(run) / sub).mkdir(parents=True, exist_ok=True)
    target.write_text(nginx_conf(folder, **options), encoding="ascii")
    return target


def main(argv: list[str] | None = None) -> int:
    """`python -P -m appliance.front init DIR [NAME ...]` (the demo's child, keeping
    `cryptography`'s X.509 out of the dock's own process)."""
    parser = argparse.ArgumentParser(prog="appliance.front")
    parser.add_argument("action", choices=["init"])
    parser.add_argument("dir")
    parser.add_argument("names", nargs="*")
    args = parser.parse_args(argv)
    result = init(Path(args.dir), args.names or dock_names())
    print(result["ca_sha256"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
