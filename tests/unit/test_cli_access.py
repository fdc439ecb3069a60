"""The new verbs (`token list|revoke`, `user remove|passwd`) and the CLI's bad input of
issue 9 item 7: exit 2 with one plain line, no traceback, nothing applied."""
from __future__ import annotations

import hashlib
import io
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.cli import main
from appliance.record.passwords import check_password, password_hash
from tests.support.inprocess import SimDock
from tests.support.liar import liar_socket

REPO = Path(__file__).resolve().parents[2]


def run(*args, env=None, stdin=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True,
                          input=stdin, env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})),
                          timeout=timeout, cwd=REPO)


def plain_refusal(result, *words):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip() and not line.startswith("usage:")]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.fixture
def dock(tmp_path, monkeypatch):
    dock = SimDock(tmp_path / "data", tmp_path / "control.sock", loop=False)
    dock.store.add_user("boss", "manager", password_hash("the boss password", n=2**10), dock.clock.now())
    dock.store.add_user("thera", "therapist", password_hash("the old password", n=2**10), dock.clock.now())
    monkeypatch.setenv("PENDOCK_SOCKET", str(tmp_path / "control.sock"))
    yield dock
    dock.close()


def test_token_list_and_revoke_by_id_and_by_name(dock, capsys):
    for name in ("robot", "sheet"):
        dock.call("token_create", name=name, token_hash=hashlib.sha256(name.encode()).hexdigest())
    assert main(["token", "list"]) == 0
    listed = capsys.readouterr().out
    assert "robot" in listed and "sheet" in listed and hashlib.sha256(b"robot").hexdigest() not in listed
    assert main(["token", "revoke", "1"]) == 0 and main(["token", "revoke", "sheet"]) == 0
    assert dock.call("token_list") == []
    assert main(["token", "revoke", "sheet"]) == 1  # refused: no such token
    assert main(["token", "revoke"]) == 2


def test_user_remove_and_passwd(dock, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("a brand new password\n"))
    assert main(["user", "passwd", "thera"]) == 0
    assert check_password("a brand new password", dock.store.user("thera")["password_hash"])
    assert main(["user", "remove", "thera"]) == 0
    assert dock.store.user("thera") is None
    assert main(["user", "remove", "boss"]) == 1  # the last manager stays
    assert [a for a in dock.audit_actions()[-2:]] == ["user_password_changed", "user_removed"]


def test_user_add_still_needs_a_role(dock, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough password\n"))
    assert main(["user", "add", "newbie"]) == 2
    assert "--role" in capsys.readouterr().err and dock.store.user("newbie") is None


def test_a_user_name_the_form_refuses_is_refused_before_anything(dock, capsys, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.StringIO("long enough password\n"))
    assert main(["user", "add", "José", "--role", "therapist"]) == 2
    assert "ASCII" in capsys.readouterr().err and dock.store.user("José") is None


def test_an_iso_week_date_is_refused_as_the_page_refuses_it(dock, capsys):
    assert main(["log", "--date", "2026-W48-1"]) == 2
    assert "YYYY-MM-DD" in capsys.readouterr().err


def test_data_before_a_sim_verb_is_kept(tmp_path):
    sock = tmp_path / "elsewhere" / "control.sock"
    result = run("sim", "--data", str(tmp_path / "elsewhere"), "dock", env={"PENDOCK_SOCKET": ""})
    assert result.returncode == 2 and str(sock) in result.stderr, result.stderr


def test_a_broken_pipe_ends_quietly(dock):
    script = (f"{sys.executable} -m appliance status | true; "
              f"{sys.executable} -m appliance log --json | head -c1 >/dev/null")
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, cwd=REPO,
                          env=dict(os.environ, PYTHONPATH=str(REPO)))
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
    assert done.stderr.strip() == ""


def test_a_socket_answering_something_else_is_a_plain_error(tmp_path):
    with liar_socket(tmp_path / "liar.sock", b"220 smtp.example ESMTP\r\n") as path:
        plain_refusal(run("status", env={"PENDOCK_SOCKET": str(path)}), "not a pen-dock daemon")


def test_a_planted_demo_link_is_refused_in_one_line(tmp_path):
    runtime = tmp_path / "run"
    runtime.mkdir()
    link = runtime / f"pendock-demo-{os.getuid()}.sock"
    link.symlink_to(tmp_path / "fake.sock")
    os.lchown(link, 54321, 54321)
    result = run("status", env={"XDG_RUNTIME_DIR": str(runtime), "PENDOCK_SOCKET": "", "PENDOCK_DATA": ""})
    if Path("/run/pendock/control.sock").exists():
        pytest.skip("an installed dock's socket is preferred here")
    plain_refusal(result, "not a link made by your demo")


@pytest.mark.parametrize("data, words", [("/etc/passwd", ("is a file",)), ("/proc/x", ("kernel",)),
                                         ("/proc", ("kernel",))])
def test_demo_refuses_a_data_folder_it_cannot_use(tmp_path, data, words):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plain_refusal(run("demo", "--data", data, "--port", str(port), timeout=30), *words)
    assert not Path(data, "pendock.db").exists()
