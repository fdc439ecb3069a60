"""`make demo-clinic`: a clinic on one machine, for a newcomer. A local Mosquitto with the
clinic's logins and ACL (`pendock fleet provision`), and two simulated docks, room-1 and
room-2, each a plain `pendock demo` with its own page, record and pen, sharing one history.
Ctrl-C stops all three. Run it again and the clinic's records and keys are still there.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from appliance.children import python_command, python_env
from appliance.core import paths
from appliance.fleet.provision import provision

DOCKS = ("room-1", "room-2")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_listening(port: int, broker: subprocess.Popen, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and broker.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.1)
    return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo-clinic")
    parser.add_argument("--port", type=int, default=8080, help="room-1's page; room-2 the next port")
    parser.add_argument("--folder", help="the clinic's files (default: beside the demo's record)")
    args = parser.parse_args(argv)
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(mosquitto).exists():
        print("pendock: Debian's mosquitto is not installed: sudo apt-get install mosquitto",
              file=sys.stderr)
        return 2
    folder = Path(args.folder or paths.demo_data_dir().parent / "pendock-clinic")
    broker_port = _free_port()
    url = f"mqtt://127.0.0.1:{broker_port}"
    provision(folder / "clinic", list(DOCKS), url, port=broker_port, persistence=False)
    conf = folder / "clinic" / "broker" / "mosquitto.conf"
    text = conf.read_text().replace(f"listener {broker_port}\n", f"listener {broker_port} 127.0.0.1\n")
    conf.write_text(text + f"user {getpass.getuser()}\n")  # it reads this user's 0600 files
    children: list[subprocess.Popen] = []
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        broker = subprocess.Popen([mosquitto, "-c", str(conf)], stdout=subprocess.DEVNULL,
                                  stderr=open(folder / "mosquitto.log", "ab"))
        children.append(broker)
        if not _wait_listening(broker_port, broker):
            print(f"pendock: mosquitto did not start; see {folder / 'mosquitto.log'}", file=sys.stderr)
            return 2
        print(f"Clinic broker: {url} (Mosquitto, logins and ACL in {folder / 'clinic' / 'broker'})")
        for i, dock in enumerate(DOCKS):
            data = folder / dock
            data.mkdir(parents=True, exist_ok=True)
            pen = data / "sim-pen.json"
            if not pen.exists():  # each room its own pen
                pen.write_text(json.dumps({"pen_serial": 0x5EED0101 + i}))
            toml = (folder / "clinic" / "docks" / dock / "fleet.toml").read_text()
            toml = re.sub(r"(?m)^broker = .*$", f'broker = "{url}"', toml)
            config = folder / f"{dock}.toml"
            config.write_text(toml)
            env = python_env(dict(os.environ, PENDOCK_DATA=str(data), PENDOCK_CONFIG=str(config),
                                  XDG_RUNTIME_DIR=str(folder / f"{dock}-run")))
            Path(env["XDG_RUNTIME_DIR"]).mkdir(exist_ok=True)
            port = args.port + i
            child = subprocess.Popen(python_command("appliance", "demo", "--port", str(port)), env=env)
            children.append(child)
            print(f"{dock}: http://127.0.0.1:{port}/   CLI: PENDOCK_DATA={data} pendock fleet",
                  flush=True)
        print("Treat a client in one room and name them in the other: the 21-day rule holds. "
              "Ctrl-C stops the clinic.", flush=True)
        while not stop["now"] and all(c.poll() is None for c in children):
            time.sleep(0.5)
        return 0 if stop["now"] else 1
    except KeyboardInterrupt:
        return 0
    finally:
        for child in reversed(children):
            if child.poll() is None:
                child.send_signal(signal.SIGINT if child is not children[0] else signal.SIGTERM)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()


if __name__ == "__main__":
    sys.exit(main())
