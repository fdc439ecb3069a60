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


SIMULATED_ENV = "PENDOCK_SIMULATED"


def simulated_hardware(environ) -> bool:
    """PENDOCK_SIMULATED=yes: the installed daemon runs on gpiozero's MockFactory with the
    simulated pen (a dock without its Pi: the system test's guest). Off unless exactly yes;
    anything but yes, no or unset is refused, so a typo never decides which pins drive the latch."""
    value = environ.get(SIMULATED_ENV)
    if value in (None, "", "no"):
        return False
    if value == "yes":
        return True
    raise ValueError(f"{SIMULATED_ENV}={value!r} is not a setting: use yes (mock pins and the simulated "
                     f"pen, never on a clinic's dock) or no, or leave it unset (the default: real pins)")


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
            simulated = simulated_hardware(os.environ)
            data = paths.usable_data_dir(data)
        except (ValueError, paths.UnusableDataDir) as error:
            return refusal(error)
        try:
            pinmap = load_pinmap(pinmap_path())
            source = resolve_config_path(args.config, os.environ)
            if simulated:
                return run_simulated_daemon(config, data, socket, pinmap, source)
            clock = SystemClock(config.tz, offset_file=data / paths.CLOCK_OFFSET_NAME)
            return run_daemon(config, data, socket, clock, pinmap=pinmap, config_source=source)
        except (PinMapError, StoreError) as error:
            return refusal(error)
        except BadPinFactory as error:
            print(
                f"pendock: no GPIO pin library works here ({error}). On a Raspberry Pi install "
                "pen-dock with its [pi] extra (lgpio, RPi.GPIO); off the Pi use `pendock demo`, "
                f"or for an installed dock without its Pi set {SIMULATED_ENV}=yes (README, "
                "\"Running the installed dock without its Pi\").",
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


def run_simulated_daemon(config, data: Path, socket: Path, pinmap, config_source: Path) -> int:
    """`pendock daemon` under PENDOCK_SIMULATED=yes: the very run_daemon, handed the mock pins
    with the simulated pen (its state kept in DATA/sim-pen.json, as `pendock demo` does)."""
    from appliance.daemon.loop import run_daemon
    from appliance.simdock import simulated_parts

    logging.getLogger("pendock").warning("%s=yes: mock pins and the simulated pen, not this machine's GPIO",
                                         SIMULATED_ENV)
    parts = simulated_parts(config, data, pen_file=data / "sim-pen.json", pinmap=pinmap)
    try:
        return run_daemon(parts.config, data, socket, parts.clock, pinmap=pinmap, config_source=config_source,
                          extensions=[parts.simulator.register], pin_factory=parts.factory)
    finally:
        parts.factory.close()


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
