"""R2's last fault: the daemon restarts while the page is loaded.

The daemon (tests/support/dockd.py: the demo's daemon half, no page) and `pendock web` run
as two processes, as systemd runs them. While the daemon is down, /healthz says 503, the
log page still renders the record with a plain "Dock not answering" panel (never a 500)
and /api/status says so in JSON; once the daemon is back, all of it recovers by itself.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request

import pytest

from appliance.record.passwords import password_hash
from tests.bench.bench_page import _Browser
from tests.support.demo import end_process, free_port
from tests.support.dockdriver import DockProcess, REPO
from tests.support.waiting import wait_for

PASSWORD = "restart-test-pw"


def _healthz(port: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=3) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return 0


def _log_page(browser, words: str, *, shown: bool = True):
    """The log page as (status, html) if it shows `words` (or, shown=False, does not), else
    None: for wait_for, which waits out the page's status cache."""
    status, html = browser.get("/")
    return (status, html) if (words in html) == shown else None


@pytest.fixture
def dock_and_page(tmp_path):
    data, sock = tmp_path / "data", tmp_path / "control.sock"
    dock = DockProcess(data, sock, tmp_path / "pen.json")
    dock.start()
    dock.call("user_add", name="thera", role="therapist", password_hash=password_hash(PASSWORD, n=2**10))
    port = free_port()
    env = dict(os.environ, PENDOCK_SOCKET=str(sock), PENDOCK_DATA=str(data), PYTHONUNBUFFERED="1")
    page = subprocess.Popen([sys.executable, "-m", "appliance", "web", "--data", str(data), "--host", "127.0.0.1",
                             "--port", str(port)], cwd=REPO, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        assert wait_for(lambda: _healthz(port) == 200, 15, every=0.1), "the page did not come up"
        yield dock, page, port
    finally:
        end_process(page, signal.SIGTERM)
        dock.stop()


def test_a_daemon_restart_while_the_page_is_loaded(dock_and_page):
    dock, page, port = dock_and_page
    browser = _Browser(port, name="thera", password=PASSWORD)
    dock.call("sim.cartridge", serial=None, strokes=None, remove=False)
    dock.call("next_client", ref="RS-1", area="face", checklist="screened,test-area")
    dock.call("sim.undock", force=False)
    dock.call("sim.needle", minutes="5", depth="1.0", strokes=None)
    dock.call("sim.dock", bounce=False)

    status, html = browser.get("/")
    assert status == 200 and "RS-1" in html and "Dock not answering" not in html

    dock.kill()  # kill -9: the socket file stays, nobody answers
    assert wait_for(lambda: _healthz(port) == 503, 5, every=0.1), "/healthz did not go 503 with the daemon down"
    seen = wait_for(lambda: _log_page(browser, "Dock not answering"), 5, every=0.1)
    assert seen, f"the log page never said the dock is not answering: {browser.get('/')[0]}"
    status, html = seen  # (once the page's status cache has expired)
    assert status == 200, f"the log page answered {status} with the daemon down"
    assert "Dock not answering" in html and "RS-1" in html  # the record is still shown
    assert "Traceback" not in html
    status, body = browser.get("/api/status")
    assert status == 503 and "dock not answering" in json.loads(body)["error"]
    status, body = browser.get("/api/sessions")
    assert status == 200 and [s["client_ref"] for s in json.loads(body)] == ["RS-1"]
    assert page.poll() is None, "the page process died with the daemon"

    dock.start()
    assert wait_for(lambda: _healthz(port) == 200, 10, every=0.1), "/healthz did not recover"
    seen = wait_for(lambda: _log_page(browser, "Dock not answering", shown=False), 5, every=0.1)
    assert seen, "the log page still says the dock is not answering"
    status, html = seen  # the same login: the page never restarted
    assert status == 200 and "Dock not answering" not in html and "RS-1" in html
    status, body = browser.get("/api/status")
    assert status == 200 and json.loads(body)["docked"] is True and json.loads(body)["held"] is True
