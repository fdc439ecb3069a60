"""Who may use technician commands: root, the daemon's own user, or the pendock-tech group;
the daemon's own group (the page) gets the clinic's commands; any other user is not admitted
at all (S6), whatever the socket file's mode (README: exit 2, nothing done).

The check under test is the daemon's own (SO_PEERCRED on the control socket), so the test
opens a simulated dock's socket to everyone (test only: 0711 on its folder, 0666 on the
socket) and runs the CLI as a throwaway system user made for the test and removed after it.
The CLI side is standard library only, so when that user cannot execute the project's
interpreter (a venv whose Python lives under /root) the system's python3 runs it instead.
Needs root (useradd, groupadd, runuser).
"""
from __future__ import annotations

import grp
import json
import os
import secrets
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.scenario.conftest import REPO, Demo

TECHNICIANS = "pendock-tech"  # the README's group name, spelled out so a rename shows up here
TOOLS = {name: shutil.which(name) for name in ("runuser", "useradd", "userdel", "groupadd", "groupdel", "gpasswd")}
STATUS_KEYS = {"docked", "held", "locks", "warnings", "pen", "cartridge", "next_client", "session", "clock_synced"}
PLAIN_ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="makes a throwaway OS user and group: run as root"),
    pytest.mark.skipif(not all(TOOLS.values()),
                       reason="needs " + ", ".join(n for n, p in TOOLS.items() if not p) + " (apt install passwd util-linux)"),
]


def _as_user(user: str, argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    assignments = [f"{k}={v}" for k, v in env.items()]
    return subprocess.run([TOOLS["runuser"], "-u", user, "--", "env", "-i", *assignments, *argv],
                          env=PLAIN_ENV, capture_output=True, text=True, timeout=30, cwd="/")


@pytest.fixture
def outsider():
    """A system user who is neither root nor a technician; deleted afterwards."""
    name = f"pdtest-{secrets.token_hex(3)}"
    subprocess.run([TOOLS["useradd"], "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name],
                   check=True, capture_output=True, timeout=30)
    try:
        yield name
    finally:
        subprocess.run([TOOLS["userdel"], name], capture_output=True, timeout=30)


@pytest.fixture
def technicians_group():
    """`join(user)` adds the user to pendock-tech, creating the group if need be (and removing
    only a group this test created)."""
    created = False
    joined: list[str] = []

    def join(user: str) -> None:
        nonlocal created
        try:
            grp.getgrnam(TECHNICIANS)
        except KeyError:
            subprocess.run([TOOLS["groupadd"], "--system", TECHNICIANS], check=True, capture_output=True, timeout=30)
            created = True
        subprocess.run([TOOLS["gpasswd"], "-a", user, TECHNICIANS], check=True, capture_output=True, timeout=30)
        joined.append(user)

    yield join
    if created:
        subprocess.run([TOOLS["groupdel"], TECHNICIANS], capture_output=True, timeout=30)
    else:
        for user in joined:
            subprocess.run([TOOLS["gpasswd"], "-d", user, TECHNICIANS], capture_output=True, timeout=30)


@pytest.fixture
def open_demo():
    """A simulated dock whose control socket any local user can connect to."""
    shared = Path(tempfile.mkdtemp(prefix="pendock-access-"))  # pytest's tmp_path is root-only
    dock = Demo(shared / "data")
    try:
        dock.start()
        for folder in (shared, dock.data):
            folder.chmod(0o711)
        (dock.data / "control.sock").chmod(0o666)
        yield dock
    finally:
        dock.stop()
        shutil.rmtree(shared, ignore_errors=True)


def client_python(user: str) -> str:
    """An interpreter that user can run the CLI with: ours if they may execute it, else python3."""
    tried = []
    for candidate in dict.fromkeys([sys.executable, shutil.which("python3", path=PLAIN_ENV["PATH"])]):
        if not candidate:
            continue
        probe = _as_user(user, [candidate, "-c", "import appliance.cli"], {"PYTHONPATH": str(REPO)})
        if probe.returncode == 0:
            return candidate
        tried.append(f"{candidate}: {(probe.stderr.strip().splitlines() or ['exit %d' % probe.returncode])[-1]}")
    pytest.skip(f"user {user} cannot run the CLI from {REPO} with any interpreter ({'; '.join(tried)})")


def audit_entries(data: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(f"file:{data / 'pendock.db'}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT actor, action, detail FROM audit ORDER BY id").fetchall()


def actions_since(data: Path, mark: int) -> list[tuple[str, str]]:
    return [(actor, action) for actor, action, _ in audit_entries(data)[mark:]]


def test_only_technicians_may_use_technician_commands(outsider, technicians_group, open_demo):
    python = client_python(outsider)
    env = {"PENDOCK_DATA": str(open_demo.data), "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"}

    def pendock(*args: str) -> subprocess.CompletedProcess:
        return _as_user(outsider, [python, "-m", "appliance", *args], env)

    groups = subprocess.run(["id", "-Gn", outsider], capture_output=True, text=True, check=True).stdout.split()
    assert TECHNICIANS not in groups and outsider != "root"

    # not a technician, not the daemon's group: the daemon admits nothing (S6), the socket's
    # file mode notwithstanding, and the record itself is not readable
    before = audit_entries(open_demo.data)
    for args in (("selftest",), ("rebaseline", "--reason", "not mine to do"), ("status",),
                 ("next-client", "BK-7001", "--area", "face")):
        denied = pendock(*args)
        assert denied.returncode == 2, denied.stdout + denied.stderr
        assert TECHNICIANS in denied.stderr and outsider in denied.stderr, denied.stderr
        assert "Traceback" not in denied.stderr
    assert audit_entries(open_demo.data) == before, "a refused command left a trace of being done"
    peek = _as_user(outsider, ["cat", str(open_demo.data / "pendock.db")], {})
    assert peek.returncode != 0 and "Permission denied" in peek.stderr, "another user can read the hashes"

    # in the technicians' group: the clinic's verbs work, recorded in that user's name
    technicians_group(outsider)
    status = pendock("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert STATUS_KEYS <= json.loads(status.stdout).keys()
    open_demo.ok("sim", "cartridge")
    mark = len(audit_entries(open_demo.data))
    named = pendock("next-client", "BK-7001", "--area", "face", "--checklist", "screened,test-area")
    assert named.returncode == 0, named.stdout + named.stderr
    assert (outsider, "next_client") in actions_since(open_demo.data, mark)

    # ... and the technician verbs go through, in that user's name
    reason = "access test: pen board swapped"
    mark = len(audit_entries(open_demo.data))
    allowed = pendock("rebaseline", "--reason", reason)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    rebaselines = [d for a, act, d in audit_entries(open_demo.data)[mark:] if (a, act) == (outsider, "rebaseline")]
    assert rebaselines and reason in rebaselines[0], audit_entries(open_demo.data)[mark:]
    open_demo.ok("sim", "undock")  # the pen is free: lift it, so selftest may pulse the latch
    allowed = pendock("selftest")
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "PASS  latch" in allowed.stdout
