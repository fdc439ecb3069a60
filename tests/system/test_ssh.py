"""Technician service over a real SSH login (README: the technician CLI works over SSH
and records who did what, the SSH user, in the audit trail).

A throwaway OpenSSH server on 127.0.0.1 (its own host key, client key and config in a temp
folder) lets root log in with a key; the remote command runs `python -m appliance` against a
simulated dock (`pendock demo`). sshd sets SSH_CONNECTION for that command, the CLI passes
"ssh from ADDRESS" to the daemon, and the daemon names the kernel's user (root) beside it.
Needs root (sshd only runs as root) and Debian's openssh-server / openssh-client.
"""
from __future__ import annotations

import json
import os
import shlex
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.scenario.conftest import REPO, Demo, free_port

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)
SSH = shutil.which("ssh")
SSH_KEYGEN = shutil.which("ssh-keygen")
STATUS_KEYS = {"docked", "held", "locks", "warnings", "pen", "cartridge", "next_client", "session", "clock_synced"}

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="a real sshd needs root: run as root (e.g. in the build container)"),
    pytest.mark.skipif(not (SSHD and SSH and SSH_KEYGEN),
                       reason="needs sshd, ssh and ssh-keygen (apt install openssh-server openssh-client)"),
]


def _keygen(path: Path) -> None:
    subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-C", "pendock-test", "-f", str(path)],
                   check=True, capture_output=True, timeout=10)


def _wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"sshd exited with {proc.returncode}:\n{proc.stderr.read()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {timeout} s")


class Sshd:
    """A loopback sshd that lets root in with one generated key."""

    def __init__(self, folder: Path):
        folder.mkdir()
        self.folder = folder
        self.port = free_port()
        self.client_key = folder / "client_ed25519"
        host_key = folder / "host_ed25519"
        _keygen(host_key)
        _keygen(self.client_key)
        authorized = folder / "authorized_keys"
        shutil.copy(self.client_key.with_suffix(".pub"), authorized)
        self.config = folder / "sshd_config"
        self.config.write_text("\n".join([
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "StrictModes no",
            "UsePAM no",
            f"PidFile {folder / 'sshd.pid'}",
            "",
        ]))
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Sshd":
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # its privilege-separation folder
        self.proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(self.config)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        _wait_for_port(self.port, self.proc)
        return self

    def run(self, remote_command: str) -> subprocess.CompletedProcess:
        """The remote command as root over SSH (no config, no known hosts, no prompts)."""
        return subprocess.run(
            [SSH, "-F", "/dev/null", "-i", str(self.client_key), "-p", str(self.port),
             "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", "-o", "StrictHostKeyChecking=no",
             "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=5",
             "root@127.0.0.1", remote_command],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
        )

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def sshd(tmp_path):
    server = Sshd(tmp_path / "ssh").start()
    yield server
    server.stop()


@pytest.fixture
def demo(tmp_path):
    dock = Demo(tmp_path / "data").start()
    yield dock
    dock.stop()


def pendock_over_ssh(sshd: Sshd, data: Path, *args: str) -> subprocess.CompletedProcess:
    """`pendock ARGS` as the technician types it after `ssh root@dock`."""
    command = (f"cd {shlex.quote(str(REPO))} && PENDOCK_DATA={shlex.quote(str(data))} "
               f"PYTHONPATH={shlex.quote(str(REPO))} {shlex.quote(sys.executable)} -m appliance "
               + " ".join(shlex.quote(a) for a in args))
    return sshd.run(command)


def audit_entries(data: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{data / 'pendock.db'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT actor, action, detail FROM audit ORDER BY id").fetchall()


def test_a_technician_over_ssh_reads_status_and_is_named_in_the_audit_trail(sshd, demo):
    status_run = pendock_over_ssh(sshd, demo.data, "status", "--json")
    assert status_run.returncode == 0, status_run.stdout + status_run.stderr
    status = json.loads(status_run.stdout)
    assert STATUS_KEYS <= status.keys()
    assert status["docked"] is True and isinstance(status["locks"], list)
    assert status["pen"]["serial"] == demo.status()["pen"]["serial"]  # the same dock, seen over SSH

    demo.ok("sim", "cartridge", "--serial", "7001")
    before = audit_entries(demo.data)
    reason = "ssh test: new board fitted"
    run = pendock_over_ssh(sshd, demo.data, "rebaseline", "--reason", reason)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "rebaseline recorded" in run.stdout

    added = audit_entries(demo.data)[len(before):]
    rebaselines = [(actor, detail) for actor, action, detail in added if action == "rebaseline"]
    assert rebaselines, f"no rebaseline entry in the audit trail; new entries: {added}"
    actor, detail = rebaselines[-1]
    assert actor.split()[0] == "root", f"the audit entry does not name the SSH user: {actor!r}"
    assert "ssh from 127.0.0.1" in actor, f"the audit entry does not name the SSH client: {actor!r}"
    assert reason in detail

    # the same verb run locally (no SSH) is not credited to an SSH client
    for name in ("SSH_CONNECTION", "SSH_CLIENT"):
        demo.env.pop(name, None)
    local = demo.run("rebaseline", "--reason", "local console check")
    assert local.returncode == 0, local.stdout + local.stderr
    last_actor, last_action, _ = audit_entries(demo.data)[-1]
    assert last_action == "rebaseline" and "ssh" not in last_actor
