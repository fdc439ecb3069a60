"""`make demo-clinic`: one command, a local Mosquitto and two docks with their pages, sharing
one history; stopping it stops all three."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import urllib.request

import pytest

from tests.support.demo import REPO, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None,
                                reason="needs Debian's mosquitto (make test installs it)")


def test_demo_clinic_runs_two_docks_sharing_a_history_and_stops_cleanly(tmp_path):
    port = free_port()
    clinic = subprocess.Popen(
        [sys.executable, "-m", "appliance.demo_clinic", "--port", str(port), "--folder", str(tmp_path)],
        cwd=REPO, env=dict(os.environ, PYTHONUNBUFFERED="1"), stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True, start_new_session=True)
    printed: list[str] = []
    threading.Thread(target=lambda: printed.extend(clinic.stdout), daemon=True).start()
    try:
        assert wait_for(lambda: sum("Page:" in line for line in printed) == 2, timeout=60, every=0.2), \
            "".join(printed)
        text = "".join(printed)
        assert f"room-1: http://127.0.0.1:{port}/" in text and f"room-2: http://127.0.0.1:{port + 1}/" in text
        for page in (port, port + 1):
            with urllib.request.urlopen(f"http://127.0.0.1:{page}/healthz", timeout=5) as answer:
                assert answer.status == 200
        env = dict(os.environ, PENDOCK_DATA=str(tmp_path / "room-2"))

        def fleet():
            done = subprocess.run([sys.executable, "-m", "appliance", "fleet", "--json"], cwd=REPO,
                                  env=env, capture_output=True, text=True, timeout=30)
            return json.loads(done.stdout) if done.returncode == 0 else None
        shown = wait_for(lambda: (f := fleet()) and f["connected"] and
                         [p["online"] for p in f["peers"]] == [True] and f, timeout=30, every=0.5)
        assert shown and shown["dock_id"] == "room-2" and shown["peers"][0]["dock_id"] == "room-1"
    finally:
        clinic.send_signal(signal.SIGINT)
        code = clinic.wait(30)
    assert code == 0
    leftover = subprocess.run(["pgrep", "-s", str(clinic.pid)], capture_output=True, text=True)
    assert leftover.stdout == "", f"processes left running: {leftover.stdout}"
