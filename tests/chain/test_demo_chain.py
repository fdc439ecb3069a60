"""`make demo-chain` as a newcomer runs it: one command, a session on one clinic's dock in
the chain's report and on the owner's page, and Ctrl-C stops every process it started."""
from __future__ import annotations

import http.cookiejar
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from tests.support import chain as chain_support
from tests.support.demo import REPO, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(chain_support.skip_reason() is not None,
                                reason=chain_support.skip_reason() or "")


def test_demo_chain_runs_the_chain_and_ctrl_c_stops_all_of_it(tmp_path):
    port = free_port()
    out = tmp_path / "out.txt"
    demo = subprocess.Popen([sys.executable, "-m", "appliance.demo_chain", "--port", str(port),
                             "--folder", str(tmp_path / "chain")], cwd=REPO, stdout=open(out, "w"),
                            stderr=subprocess.STDOUT)
    try:
        assert wait_for(lambda: "Ctrl-C stops the chain." in out.read_text() or demo.poll() is not None,
                        timeout=90, every=0.5), out.read_text()
        text = out.read_text()
        assert demo.poll() is None, text
        database = re.search(r"--database '([^']+)'", text).group(1)
        owner = re.search(r"The owner's page: (http://127\.0\.0\.1:\d+/)", text).group(1)
        data = tmp_path / "chain" / "north" / "n-1"
        env = dict(os.environ, PENDOCK_DATA=str(data), XDG_RUNTIME_DIR=str(data.parent / "n-1-run"))

        def pendock(*args):
            return subprocess.run([sys.executable, "-m", "appliance", *args], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=60)
        for args in (("sim", "cartridge"), ("next-client", "BK-5", "--area", "face", "--checklist",
                                             "screened,test-area"), ("sim", "undock"),
                     ("sim", "needle", "--minutes", "5"), ("sim", "dock")):
            done = pendock(*args)
            assert done.returncode == 0, (args, done.stdout, done.stderr)

        def sessions():
            done = pendock("chain", "report", "--database", database, "--json")
            assert done.returncode == 0, (done.stderr, out.read_text()[-3000:])
            return json.loads(done.stdout)["sessions"]
        assert wait_for(lambda: sessions() == 1, timeout=30, every=1), sessions()
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = opener.open(owner + "login", timeout=10).read().decode()
        csrf = re.search(r'name="csrf" value="([^"]+)"', form).group(1)
        page = opener.open(owner + "login", urllib.parse.urlencode(
            {"name": "owner", "password": "pendock-demo", "csrf": csrf}).encode(), timeout=10).read().decode()
        assert "n-1" in page and "s-2" in page and "<svg" in page
    finally:
        demo.send_signal(signal.SIGINT)
        code = demo.wait(60)
    assert code == 0, out.read_text()[-2000:]
    time.sleep(1)
    left = subprocess.run(["pgrep", "-f", str(tmp_path / "chain")], capture_output=True, text=True).stdout.split()
    assert left == [], left
