"""`pendock daemon` and `pendock web`: the two long-running processes systemd starts."""
from __future__ import annotations

import logging
import os
import socket
import sys
from pathlib import Path

from appliance.core import paths
from appliance.core.config import ConfigError, load_config, resolve_config_path


def load(args):
    """The config named by --config / PENDOCK_CONFIG / the default path; refuses a bad file."""
    return load_config(resolve_config_path(args.config, os.environ))


def with_first_run(config, args, data: Path):
    """The config with the setup form's choices where the config file is silent (core/first_run.py)."""
    from appliance.core import first_run

    path = resolve_config_path(args.config, os.environ)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        text = ""  # missing: the defaults (load_config has refused an unreadable file already)
    return first_run.layered(config, text, data)


def pinmap_path() -> Path | None:
    """PENDOCK_PINMAP names another pin map (a board variant); default: hw/pinmap.toml."""
    value = os.environ.get("PENDOCK_PINMAP")
    return Path(value) if value else None


def refusal(error: Exception | str) -> int:
    """A start-up refusal a technician can act on: say it, exit 2; nothing drove the latch."""
    print(f"pendock: {error}", file=sys.stderr)
    return 2


def run(args) -> int:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        config = load(args)
    except ConfigError as error:
        return refusal(error)
    data = paths.data_dir(args.data)
    try:
        config = with_first_run(config, args, data)
    except ConfigError as error:
        return refusal(error)
    socket = Path(os.environ.get("PENDOCK_SOCKET") or (data / paths.SOCKET_NAME))
    if args.verb == "daemon":
        from gpiozero.exc import BadPinFactory

        from appliance.hardware.clock import SystemClock
        from appliance.daemon.loop import run_daemon

        from appliance.hardware.pinmap import PinMapError, load_pinmap
        from appliance.record.store import StoreError

        try:
            data = paths.usable_data_dir(data)
        except paths.UnusableDataDir as error:
            return refusal(error)
        try:
            pinmap = load_pinmap(pinmap_path())
            clock = SystemClock(config.tz, offset_file=data / paths.CLOCK_OFFSET_NAME)
            return run_daemon(config, data, socket, clock, pinmap=pinmap,
                              config_source=resolve_config_path(args.config, os.environ))
        except (PinMapError, StoreError) as error:
            return refusal(error)
        except BadPinFactory as error:
            print(
                f"pendock: no GPIO pin library works here ({error}). On a Raspberry Pi install "
                "pen-dock with its [pi] extra (lgpio, RPi.GPIO); off the Pi use `pendock demo`.",
                file=sys.stderr,
            )
            return 2
    from appliance.page.app import serve

    host = args.host or config.web.host
    port = config.web.port if args.port is None else args.port
    try:
        check_listen_address(host, port)
    except ValueError as error:
        return refusal(error)
    try:
        return serve(config, data, socket, host, port)
    except OSError as error:  # the address is not this machine's, or the port is taken
        return refusal(f"the page cannot listen on {host} port {port}: {error.strerror or error}; "
                       f"choose another --host/--port (or web.host/web.port in the config)")


def check_listen_address(host: str, port: int) -> None:
    """A TCP port (waitress would quietly take 99999 as another port) and an address of
    this machine (a name that does not resolve would end in a traceback); ValueError says which."""
    if not isinstance(port, int) or not 1 <= port <= 65535:
        raise ValueError(f"--port {port} is not a TCP port: use 1 to 65535, e.g. --port 8080")
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise ValueError(f"--host {host!r} is not an address: use 127.0.0.1 (this dock only), "
                         f"0.0.0.0 (the clinic's network) or one of this dock's IP addresses") from None
