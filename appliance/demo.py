"""`pendock demo`: the daemon on gpiozero's mock pins with the simulated pen, and the page.

It starts the simulated dock (appliance/simdock.py: a MockFactory and the simulated pen
under the very same daemon code a Pi runs), starts the page as its own process (as systemd
would), and prints where to look.
"""
from __future__ import annotations

import json
import logging
import os
from dataclasses import replace
import socket as sockets
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

from appliance.children import python_command, python_env
from appliance.core import paths
from appliance.core.config import ConfigError, parse_config, resolve_config_path
from appliance.daemon.loop import install_signal_handlers, prepare_process, run_loop
from appliance.hardware.pinmap import PinMapError, load_pinmap
from appliance.processes import load, pinmap_path, refusal
from appliance.record.store import StoreError
from appliance.simdock import build_sim_dock

DEMO_USERS = (("demo", "therapist"), ("manager", "manager"))
DEMO_PASSWORD = "pendock-demo"


def _die_with_parent() -> None:
    """In the page process: end when the demo ends, even by kill -9 (Linux prctl); and
    yield the CPU to the dock (SCHED_IDLE and nice 10, as pendock-web.service has it):
    the page is the less important process."""
    try:
        os.nice(10)
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except OSError:
        pass
    try:
        import ctypes
        import signal

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _port_free(port: int) -> bool:
    with sockets.socket() as probe:
        probe.setsockopt(sockets.SOL_SOCKET, sockets.SO_REUSEADDR, 1)  # as waitress does
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _page_answers(port: int, path: str = "/healthz", timeout: float = 1.0) -> bool:
    """One plain HTTP/1.0 GET on a socket: a 200 status line. Not urllib: that loads
    http.client, email and ssl (about 4 MB), which the demo process, the daemon's own,
    would keep all day for a probe made once at start (quality bar P4)."""
    with sockets.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode("ascii"))
        with conn.makefile("rb") as reply:
            status_line = reply.readline(256)
    return status_line.split()[1:2] == [b"200"]


def _wait_healthy(port: int, page: subprocess.Popen, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and page.poll() is None:
        try:
            if _page_answers(port):
                return True
        except OSError:
            pass
        time.sleep(0.1)
    return False


def with_fleet_flags(config, args):
    """--broker, --dock-id and --clinic over the config's [fleet] table (checked like the file)."""
    broker, dock_id = getattr(args, "broker", None), getattr(args, "dock_id", None)
    clinic = getattr(args, "clinic", None)
    if clinic:
        config = replace(config, fleet=replace(config.fleet, clinic=parse_config(
            f"[fleet]\nclinic = {json.dumps(clinic)}\n", source="--clinic").fleet.clinic))
    if not broker and not dock_id:
        return config
    lines = ["[fleet]"] + [f"{key} = {json.dumps(value)}" for key, value in
                           (("broker", broker or config.fleet.broker),
                            ("dock_id", dock_id or config.fleet.dock_id)) if value]
    flags = parse_config("\n".join(lines) + "\n", source="--broker/--dock-id").fleet
    if not flags.dock_id:
        raise ConfigError("--broker needs --dock-id ID too (this dock's name in the clinic)")
    return replace(config, fleet=replace(config.fleet, broker=flags.broker, dock_id=flags.dock_id))


def demo_pen_serial(dock_id: str) -> int:
    """A clinic's demo docks each hold a pen of their own: a serial made from the dock id
    (1..2**32-1), so a second dock never mistakes the first one's pen for its own
    (counter_rollback). The same id gives the same pen, run after run."""
    return zlib.crc32(f"pendock-demo-pen/{dock_id}".encode()) or 1


def give_the_pen_its_own_serial(pen_file: Path, dock_id: str) -> None:
    """A new demo dock with a dock id starts with its own pen; a saved pen (sim-pen.json,
    e.g. one `make demo-clinic` wrote with a serial of its own) is kept as it is."""
    if not dock_id or pen_file.exists():
        return
    pen_file.write_text(json.dumps({"pen_serial": demo_pen_serial(dock_id)}), encoding="utf-8")


def run_demo(args) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = with_fleet_flags(load(args), args)
    except ConfigError as error:
        print(f"pendock: {error}", file=sys.stderr)
        return 2
    if not 1 <= args.port <= 65535:
        print(f"pendock: --port {args.port} is not a TCP port (1-65535)", file=sys.stderr)
        return 2
    if not _port_free(args.port):
        print(f"pendock: port {args.port} on 127.0.0.1 is in use: stop what uses it or pass --port N", file=sys.stderr)
        return 2
    try:  # a file, a kernel folder or an unwritable one: one plain line, exit 2
        data = paths.usable_data_dir(Path(args.data or os.environ.get("PENDOCK_DATA") or paths.demo_data_dir()))
    except paths.UnusableDataDir as error:
        return refusal(error)
    socket = data / paths.SOCKET_NAME

    try:
        pinmap = load_pinmap(pinmap_path())
    except PinMapError as error:
        return refusal(error)
    prepare_process(data)
    give_the_pen_its_own_serial(data / "sim-pen.json", config.fleet.dock_id)
    try:
        simulated = build_sim_dock(config, data, socket, pen_file=data / "sim-pen.json", pinmap=pinmap,
                                   config_source=resolve_config_path(args.config, os.environ),
                                   start_at=args.start_at)
    except StoreError as error:
        return refusal(error)
    running, clock = simulated.running, simulated.clock
    missing = [(name, role) for name, role in DEMO_USERS if running.store.user(name) is None]
    if missing:
        # Loaded here only: the dock's process never hashes a password again (hashlib's
        # OpenSSL, appliance/core/digest.py).
        from appliance.record.passwords import password_hash

        demo_hash = password_hash(DEMO_PASSWORD)  # one slow hash for both demo users
        for name, role in missing:
            running.store.add_user(name, role, demo_hash, clock.now())

    # Only the demo in the default folder is the one `pendock` finds without --data.
    link = paths.demo_socket_link() if not (args.data or os.environ.get("PENDOCK_DATA")) else None
    if link is not None:
        try:
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(socket)
        except OSError:
            link = None

    stop = threading.Event()
    install_signal_handlers(stop)
    env = python_env(dict(os.environ, PENDOCK_SOCKET=str(socket)))
    page_port, front, url = args.port, None, f"http://127.0.0.1:{args.port}/"
    if getattr(args, "tls", False):
        from appliance import demo_tls

        try:
            extra, page_port, conf = demo_tls.prepare(data, args.port)
        except (demo_tls.TlsUnavailable, subprocess.SubprocessError, OSError) as error:
            simulated.close()
            print(f"pendock: {error}", file=sys.stderr)
            return 2
        env.update(extra)
        front = demo_tls.start_front(conf, _die_with_parent)
        url = f"https://127.0.0.1:{args.port}/ (http://127.0.0.1:{args.port + 1}/ redirects; the CA: /ca)"
    page = subprocess.Popen(
        python_command("appliance", "web", "--data", str(data), "--host", "127.0.0.1",
                       "--port", str(page_port), *(["--config", args.config] if args.config else [])),
        env=env,
        preexec_fn=_die_with_parent,
    )
    loop = threading.Thread(target=run_loop, args=(running, stop), name="dock", daemon=True)
    loop.start()
    try:
        if not _wait_healthy(page_port, page) or (front is not None and not _wait_healthy(args.port + 1, front)):
            print("pendock: the page did not come up; see the messages above", file=sys.stderr)
            return 2
        if running.fleet is not None:
            print(f"Dock {running.fleet.dock_id} shares its history through {running.fleet.broker}"
                  f" (pendock fleet).")
        print(f"Simulated pen dock running. Page: {url}", flush=True)
        print(f"Log in as demo / {DEMO_PASSWORD} (therapist) or manager / {DEMO_PASSWORD} (manager).")
        print(f"Record: {data}. Drive the pen from another shell: pendock sim dock | undock | cartridge | needle ...")
        print("Stop with Ctrl-C.", flush=True)
        while not stop.is_set():
            if page.poll() is not None:
                print("pendock: the page process stopped; stopping the demo", file=sys.stderr)
                return 2
            stop.wait(0.5)
        return 0
    finally:
        stop.set()
        if front is not None:
            front.terminate()
        page.terminate()
        try:
            page.wait(5)
        except subprocess.TimeoutExpired:
            page.kill()
        loop.join(2)
        simulated.close()
        if link is not None and link.is_symlink() and os.readlink(link) == str(socket):
            link.unlink()
