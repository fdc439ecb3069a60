"""Issue 9 item 7: bad input on the command line gives exit 2 and one plain line, no
traceback, nothing applied. Each case was seen to give a traceback or a wrong answer."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*args, env=None, timeout=30):
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})), timeout=timeout, cwd=REPO)


def plain_refusal(result, *words):
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for word in words:
        assert word in lines[0], lines[0]


@pytest.mark.parametrize("args, words", [
    (("--host", "not a host"), ("--host", "not an address")),
    (("--port", "99999"), ("--port 99999", "1 to 65535")),
    (("--port", "0"), ("--port 0",)),
    (("--host", "192.0.2.77"), ("cannot listen", "192.0.2.77")),
])
def test_web_refuses_an_address_it_cannot_listen_on(tmp_path, args, words):
    plain_refusal(run("web", "--data", str(tmp_path), *args, timeout=20), *words)


def test_web_refuses_a_port_in_use(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        plain_refusal(run("web", "--data", str(tmp_path), "--port", str(port), timeout=20), "cannot listen", str(port))
