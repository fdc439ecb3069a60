"""A chain on one machine: PostgreSQL, a central Mosquitto and the ingest worker in one
network namespace; each clinic in its own, with its Mosquitto bridged to the central one
(configured by `pendock chain provision`) and its docks (tests/support/chaindock.py).

  central ns  lo 10.77.0.1, veth 10.77.<i>.1/24  <---->  10.77.<i>.2/24 veth  clinic <i> ns
                                                          (its broker and docks on 127.0.0.1)

Cutting a clinic off is its real link going down. PostgreSQL listens on a Unix socket
only, in a folder of its own. Needs root (ip netns) and Debian's mosquitto and
postgresql; `skip_reason()` says why not, for a skip. Names start with `chain-`.
"""
from __future__ import annotations

import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from appliance.chain.provision import provision
from appliance.fleet import keys
from tests.support.clinic import ip, join_hub
from tests.support.demo import REPO
from tests.support.waiting import wait_for  # noqa: F401  (the bench uses it too)

CENTRAL = "10.77.0.1"
CENTRAL_PORT = 1884
CLINIC_PORT = 1883


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


def skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root for ip netns (CI runs the tests as root)"
    if not shutil.which("mosquitto"):
        return "needs Debian's mosquitto (make test installs it)"
    if pg_bin() is None:
        return "needs Debian's postgresql (make test installs it)"
    return None


class Postgres:
    """A throwaway cluster: initdb, pg_ctl start, trust on its own Unix socket only."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="chain-pg-"))
        self.data = self.home / "data"
        self.port = 5432
        os.chmod(self.home, 0o755)
        self.user = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.getuid()).pw_name
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")

    def _run(self, *argv: str) -> None:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        subprocess.run(prefix + list(argv), check=True, capture_output=True, timeout=120)

    def start(self) -> "Postgres":
        bin_dir = pg_bin()
        self._run(str(bin_dir / "initdb"), "-D", str(self.data), "-A", "trust", "-U", self.user,
                  "--no-sync", "-E", "UTF8")
        self._run(str(bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.home / "log"), "-w",
                  "-o", f"-c listen_addresses='' -k {self.home} -p {self.port} -c fsync=on", "start")
        self._run(str(bin_dir / "createdb"), "-h", str(self.home), "-p", str(self.port), "-U",
                  self.user, "pendock")
        return self

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@/pendock?host={self.home}&port={self.port}"

    def stop(self) -> None:
        bin_dir = pg_bin()
        try:
            self._run(str(bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.home, ignore_errors=True)


class Dock:
    def __init__(self, chain: "Chain", clinic: str, dock: str):
        self.chain, self.clinic, self.dock = chain, clinic, dock
        self.home = chain.root / "docks" / dock
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", self.chain.ns[self.clinic], sys.executable, "-m",
             "tests.support.chaindock", str(self.home / "pendock.db"), self.dock, self.clinic,
             f"mqtt://127.0.0.1:{CLINIC_PORT}", str(self.home / "fleet.key"),
             str(self.chain.clinic_keys(self.clinic))],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(self.home / "dock.log", "ab"), text=True)

    def ask(self, line: str) -> dict:
        assert self.proc is not None and self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def sessions(self, count: int) -> int:
        return self.ask(f"sessions {count}")["own_seq"]

    def status(self) -> dict:
        return self.ask("status")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.ask("quit")
            except (OSError, ValueError):
                pass
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self.proc = None


class Chain:
    def __init__(self, root: Path, clinics: dict[str, tuple[str, ...]] | None = None, *,
                 clinic_conf: str = ""):
        self.root = Path(root)
        self.clinics = clinics or {"north": ("n-1", "n-2"), "south": ("s-1", "s-2")}
        self.tag = secrets.token_hex(2)
        self.central_ns = f"chain-{self.tag}-c"
        self.ns = {c: f"chain-{self.tag}-{i}" for i, c in enumerate(self.clinics, start=1)}
        self.links = {c: f"chn{self.tag}{i}c" for i, c in enumerate(self.clinics, start=1)}
        self.clinic_conf = clinic_conf  # extra lines for every clinic broker (a small queue)
        self.files = self.root / "chain"
        self.pg = Postgres()
        self.central: subprocess.Popen | None = None
        self.brokers: dict[str, subprocess.Popen] = {}
        self.worker: subprocess.Popen | None = None
        self.docks = {d: Dock(self, c, d) for c, ds in self.clinics.items() for d in ds}

    # -- building ---------------------------------------------------------------------
    def build(self) -> "Chain":
        ip("netns", "add", self.central_ns)
        ip("-n", self.central_ns, "link", "set", "lo", "up")
        ip("-n", self.central_ns, "addr", "add", f"{CENTRAL}/32", "dev", "lo")
        for i, clinic in enumerate(self.clinics, start=1):
            ns, here = self.ns[clinic], f"chn{self.tag}{i}n"
            join_hub(ns, here, self.links[clinic], self.central_ns, f"10.77.{i}")
            ip("-n", ns, "route", "add", f"{CENTRAL}/32", "via", f"10.77.{i}.1")
        provision(self.files, f"mqtt://{CENTRAL}:{CENTRAL_PORT}",
                  [f"{c}=mqtt://127.0.0.1:{CLINIC_PORT}" for c in self.clinics], anonymous=True)
        chain_pub = (self.files / "chain.pub").read_text()
        for clinic, docks in self.clinics.items():
            ring = self.clinic_keys(clinic)
            ring.mkdir(parents=True, exist_ok=True)
            (ring / "chain.pub").write_text(chain_pub)
            for dock in docks:
                home = self.root / "docks" / dock
                home.mkdir(parents=True, exist_ok=True)
                key = keys.new_private_key(home / "fleet.key")
                keys.write_public(ring, dock, key)
                keys.write_public(self.files / "worker" / "keys" / clinic, dock, key)
            conf = self.files / "brokers" / clinic / "mosquitto.conf"
            conf.write_text(conf.read_text() + "user root\n" + self.clinic_conf)
        conf = self.files / "central" / "mosquitto.conf"
        conf.write_text(conf.read_text() + "user root\n")  # the test's files belong to root
        self.pg.start()
        return self

    def clinic_keys(self, clinic: str) -> Path:
        return self.root / "clinics" / clinic / "keys"

    # -- the engines ----------------------------------------------------------------------
    def _broker(self, ns: str, conf: Path, port: int, log: str) -> subprocess.Popen:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "mosquitto", "-c", str(conf)],
                                stdout=open(self.root / log, "ab"), stderr=subprocess.STDOUT)
        listening = wait_for(lambda: f":{port} " in ip("netns", "exec", ns, "ss", "-ltnH").stdout,
                             timeout=10, every=0.1)
        assert listening, f"mosquitto did not listen: see {self.root / log}"
        return proc

    def start_central(self) -> None:
        self.central = self._broker(self.central_ns, self.files / "central" / "mosquitto.conf",
                                    CENTRAL_PORT, "central.log")

    def start_clinic_broker(self, clinic: str) -> None:
        self.brokers[clinic] = self._broker(self.ns[clinic], self.files / "brokers" / clinic /
                                            "mosquitto.conf", CLINIC_PORT, f"{clinic}-broker.log")

    def start_worker(self) -> None:
        started = self.root / "worker.log"
        count = started.read_text().count("ingesting from") if started.exists() else 0
        self.worker = subprocess.Popen(
            ["ip", "netns", "exec", self.central_ns, sys.executable, "-m", "appliance", "chain",
             "ingest", "--broker", f"mqtt://127.0.0.1:{CENTRAL_PORT}", "--database", self.pg.url,
             "--keys-dir", str(self.files / "worker" / "keys")],
            cwd=REPO, stdout=open(self.root / "worker.log", "a"), stderr=subprocess.STDOUT)
        assert wait_for(lambda: started.read_text().count("ingesting from") > count or
                        self.worker.poll() is not None, timeout=20, every=0.1)
        assert self.worker.poll() is None, started.read_text()[-2000:]

    def start(self) -> "Chain":
        self.start_central()
        for clinic in self.clinics:
            self.start_clinic_broker(clinic)
        self.start_worker()
        for dock in self.docks.values():
            dock.start()
        return self

    @staticmethod
    def kill(proc: subprocess.Popen | None, sig: int = signal.SIGKILL) -> None:
        """`ip netns exec` execs its command, so the process is the engine itself."""
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(10)

    def cut(self, clinic: str) -> None:
        ip("-n", self.central_ns, "link", "set", self.links[clinic], "down")

    def heal(self, clinic: str) -> None:
        ip("-n", self.central_ns, "link", "set", self.links[clinic], "up")

    # -- what the store holds -------------------------------------------------------------
    def rows(self) -> dict[str, list[int]]:
        from appliance.chain import store

        with store.connect(self.pg.url) as conn:
            return store.rows_per_dock(conn)

    def report(self) -> dict:
        from appliance.chain import store

        with store.connect(self.pg.url) as conn:
            return store.report(conn)

    def exactly_once(self, own: dict[str, int]) -> bool:
        """Every dock's events 1..own[dock] in the store, each once, nothing else."""
        rows = self.rows()
        return all(rows.get(dock, []) == list(range(1, seq + 1)) for dock, seq in own.items())

    def close(self) -> None:
        for dock in self.docks.values():
            try:
                dock.stop()
            except Exception:
                pass
        self.kill(self.worker, signal.SIGTERM)
        for proc in [*self.brokers.values(), self.central]:
            self.kill(proc, signal.SIGTERM)
        self.pg.stop()
        for ns in [*self.ns.values(), self.central_ns]:
            ip("netns", "del", ns, check=False)
