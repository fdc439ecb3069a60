"""Where the dock keeps its record and its control socket.

The contract: data in /var/lib/pendock or PENDOCK_DATA (or --data); config from
--config, PENDOCK_CONFIG or /etc/pendock/pendock.toml. A simulated dock started without
--data keeps its record in the user's state folder and leaves a link to its socket where
`pendock sim` and `pendock status` look, so the README's two commands need no flags.
"""
from __future__ import annotations

import os
from pathlib import Path

SYSTEM_DATA = Path("/var/lib/pendock")
SYSTEM_SOCKET = Path("/run/pendock/control.sock")
DB_NAME = "pendock.db"
SOCKET_NAME = "control.sock"


def demo_data_dir(environ=os.environ) -> Path:
    state_home = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "pendock-demo"


def demo_socket_link(environ=os.environ) -> Path:
    """A per-user link to the running demo's socket (in the runtime folder, or /tmp)."""
    runtime = environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path("/tmp")
    return base / f"pendock-demo-{os.getuid()}.sock"


def data_dir(cli_value: str | None, environ=os.environ) -> Path:
    """--data, else PENDOCK_DATA, else /var/lib/pendock."""
    if cli_value:
        return Path(cli_value)
    if environ.get("PENDOCK_DATA"):
        return Path(environ["PENDOCK_DATA"])
    return SYSTEM_DATA


def socket_path(cli_data: str | None, environ=os.environ) -> Path:
    """The control socket a client should use.

    PENDOCK_SOCKET wins; an explicit data folder (flag or env) means its control.sock;
    otherwise the installed dock's socket, else a running demo's link.
    """
    if environ.get("PENDOCK_SOCKET"):
        return Path(environ["PENDOCK_SOCKET"])
    if cli_data or environ.get("PENDOCK_DATA"):
        return data_dir(cli_data, environ) / SOCKET_NAME
    if SYSTEM_SOCKET.exists():
        return SYSTEM_SOCKET
    link = demo_socket_link(environ)
    if link.exists():
        return link
    return SYSTEM_SOCKET
