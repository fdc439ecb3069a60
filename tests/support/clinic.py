"""A clinic on one machine: a real Mosquitto and several `pendock demo` docks, each in its
own network namespace, joined to the broker's namespace by a veth pair.

  broker ns  veth 10.88.<i>.1/24  <---->  10.88.<i>.2/24 veth  dock <i> ns

A partition is a real link going down (`ip link set ... down`), not a mocked client. The
broker runs with `persistence false`, so nothing the docks promise depends on its disk.
Needs root (ip netns) and Debian's mosquitto; `skip_reason()` says why not, for a skip.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from appliance.fleet.provision import provision
from tests.support.demo import DemoProcess
from tests.support.waiting import wait_for

BROKER_PORT = 1883


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns (CI runs the tests as root)"
    if not shutil.which("mosquitto"):
        return "needs Debian's mosquitto (make test installs it)"
    if not shutil.which("ip"):
        return "needs iproute2's ip"
    return None


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], check=check, capture_output=True, text=True, timeout=20)


def join_hub(ns: str, here: str, there: str, hub_ns: str, net: str) -> None:
    """A new namespace `ns` on a veth pair to `hub_ns`: `net`.2 on its side, `net`.1 on the hub's."""
    ip("netns", "add", ns)
    ip("-n", ns, "link", "set", "lo", "up")
    ip("link", "add", here, "type", "veth", "peer", "name", there)
    ip("link", "set", here, "netns", ns)
    ip("link", "set", there, "netns", hub_ns)
    ip("-n", ns, "addr", "add", f"{net}.2/24", "dev", here)
    ip("-n", ns, "link", "set", here, "up")
    ip("-n", hub_ns, "addr", "add", f"{net}.1/24", "dev", there)
    ip("-n", hub_ns, "link", "set", there, "up")


class Clinic:
    def __init__(self, root: Path, docks: tuple[str, ...] = ("room-1", "room-2", "room-3"), *,
                 stale_after_minutes: float = 0.05, extra_config: str = ""):
        self.root = Path(root)
        self.docks = docks
        self.tag = "pk" + secrets.token_hex(3)  # namespaces and links unique to this clinic
        self.broker_ns = f"{self.tag}-br"
        self.ns = {dock: f"{self.tag}-{i}" for i, dock in enumerate(docks, start=1)}
        self.links = {dock: f"{self.tag}{i}b" for i, dock in enumerate(docks, start=1)}
        self.address = {dock: f"10.88.{i}.1" for i, dock in enumerate(docks, start=1)}
        self.stale_after_minutes = stale_after_minutes
        self.extra_config = extra_config
        self.broker: subprocess.Popen | None = None
        self.demos: dict[str, DemoProcess] = {}
        self.files = self.root / "clinic"

    # -- the network ------------------------------------------------------------------
    def build(self) -> "Clinic":
        ip("netns", "add", self.broker_ns)
        ip("-n", self.broker_ns, "link", "set", "lo", "up")
        for i, dock in enumerate(self.docks, start=1):
            join_hub(self.ns[dock], f"{self.tag}{i}a", self.links[dock], self.broker_ns, f"10.88.{i}")
        provision(self.files, list(self.docks), "mqtt://broker", port=BROKER_PORT, persistence=False)
        conf = self.files / "broker" / "mosquitto.conf"
        conf.write_text(conf.read_text() + "user root\n")  # the test's files belong to root
        return self

    def partition(self, dock: str) -> None:
        ip("-n", self.broker_ns, "link", "set", self.links[dock], "down")

    def heal(self, dock: str) -> None:
        ip("-n", self.broker_ns, "link", "set", self.links[dock], "up")

    # -- the broker ---------------------------------------------------------------------
    def start_broker(self) -> None:
        log = open(self.root / "mosquitto.log", "ab")
        self.broker = subprocess.Popen(
            ["ip", "netns", "exec", self.broker_ns, "mosquitto", "-c",
             str(self.files / "broker" / "mosquitto.conf")], stdout=log, stderr=subprocess.STDOUT)
        listening = wait_for(lambda: f":{BROKER_PORT} " in ip(
            "netns", "exec", self.broker_ns, "ss", "-ltnH").stdout, timeout=10, every=0.1)
        assert listening, "mosquitto did not listen: see " + str(self.root / "mosquitto.log")

    def stop_broker(self, sig: str = "TERM") -> None:
        if self.broker is not None and self.broker.poll() is None:
            self.broker.send_signal(getattr(__import__("signal"), f"SIG{sig}"))
            self.broker.wait(10)
        self.broker = None

    # -- the docks --------------------------------------------------------------------------
    def config_for(self, dock: str) -> Path:
        toml = (self.files / "docks" / dock / "fleet.toml").read_text()
        toml = toml.replace("mqtt://broker", f"mqtt://{self.address[dock]}:{BROKER_PORT}")
        toml = toml.replace("stale_after_minutes = 10", f"stale_after_minutes = {self.stale_after_minutes}")
        path = self.root / f"{dock}.toml"
        path.write_text(toml + self.extra_config)
        return path

    def demo(self, dock: str) -> DemoProcess:
        if dock not in self.demos:
            data = self.root / dock
            data.mkdir(exist_ok=True)
            # Each room has its own pen (a distinct serial), as a clinic would.
            (data / "sim-pen.json").write_text(json.dumps(
                {"pen_serial": 0x5EED0100 + self.docks.index(dock)}))
            demo = DemoProcess(data, program=["ip", "netns", "exec", self.ns[dock], sys.executable,
                                              "-m", "appliance"])
            demo.env["PENDOCK_CONFIG"] = str(self.config_for(dock))
            self.demos[dock] = demo
        return self.demos[dock]

    def start(self, *docks: str) -> None:
        for dock in docks or self.docks:
            self.demo(dock).spawn()
        for dock in docks or self.docks:
            self.demo(dock).wait_for_page(40)

    def fleet(self, dock: str) -> dict:
        return self.demo(dock).json("fleet")

    def db(self, dock: str) -> Path:
        return self.root / dock / "pendock.db"

    def close(self) -> None:
        for demo in self.demos.values():
            try:
                demo.stop()
            except Exception:
                pass
        self.stop_broker()
        for ns in [*self.ns.values(), self.broker_ns]:
            ip("netns", "del", ns, check=False)

