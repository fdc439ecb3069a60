"""`pendock demo --tls`: the page over HTTPS on loopback as a dock serves it (appliance/
front.py): a CA and certificate for localhost in DATA/tls (made once, by a child process,
so the dock's own process never loads X.509), Debian's nginx in front on --port (HTTPS)
and --port + 1 (HTTP, redirecting), waitress behind it on a free loopback port."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from appliance.children import python_command, python_env


class TlsUnavailable(Exception):
    """The demo cannot serve HTTPS here; the message says what to install."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def prepare(data: Path, https_port: int) -> tuple[dict[str, str], int, Path]:
    """(the page's extra environment, the page's own port, nginx's configuration)."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    if nginx is None:
        raise TlsUnavailable("--tls needs Debian's nginx in front of the page: sudo apt-get install nginx-light")
    tls = data / "tls"
    if not (tls / "ca.crt").exists():
        subprocess.run(python_command("appliance.front", "init", str(tls), "localhost", "127.0.0.1", "::1"),
                       env=python_env(), check=True, capture_output=True, timeout=60)
    from appliance.front import write_nginx_conf

    page_port = free_port()
    conf = write_nginx_conf(tls, tls / "run" / "nginx.conf", upstream=page_port, https_port=https_port,
                            http_port=https_port + 1, listen="127.0.0.1", run_dir=tls / "run")
    env = {"PENDOCK_TRUSTED_PROXY": "127.0.0.1", "PENDOCK_COOKIE_SECURE": "1", "PENDOCK_TLS_DIR": str(tls)}
    return env, page_port, conf


def start_front(conf: Path, preexec) -> subprocess.Popen:
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    return subprocess.Popen([nginx, "-c", str(conf), "-p", str(conf.parent), "-g", "daemon off;"],
                            preexec_fn=preexec)
