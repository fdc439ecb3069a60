"""The installed daemon off a Pi (README, "Running the installed dock without its Pi"):
PENDOCK_SIMULATED=yes in the unit's environment starts `pendock daemon` on gpiozero's
MockFactory with the simulated pen, the same daemon otherwise. Off by default: unset, the
daemon off a Pi refuses to start and names the setting; any value but yes/no is refused."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def daemon_env(tmp_path, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("GPIOZERO_PIN_FACTORY", "PENDOCK_SIMULATED")}
    env.update(PYTHONPATH=str(REPO), PENDOCK_SOCKET=str(tmp_path / "control.sock"), **extra)
    return env


def start_daemon(tmp_path, env) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "appliance", "daemon", "--data", str(tmp_path / "data"),
                             "--config", str(tmp_path / "none.toml")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def test_off_a_pi_without_the_setting_the_daemon_refuses_and_names_it(tmp_path):
    daemon = start_daemon(tmp_path, daemon_env(tmp_path))
    out, _ = daemon.communicate(timeout=30)
    assert daemon.returncode == 2
    assert "PENDOCK_SIMULATED=yes" in out


def test_a_setting_other_than_yes_or_no_is_refused(tmp_path):
    daemon = start_daemon(tmp_path, daemon_env(tmp_path, PENDOCK_SIMULATED="true"))
    out, _ = daemon.communicate(timeout=30)
    assert daemon.returncode == 2
    assert "PENDOCK_SIMULATED" in out and "'true'" in out and "yes" in out
    assert not (tmp_path / "data" / "pendock.db").exists()  # refused before anything started


def test_simulated_yes_runs_the_daemon_on_mock_pins_with_the_simulated_pen(tmp_path):
    notify_path = tmp_path / "notify.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(notify_path))
    listener.settimeout(20)
    env = daemon_env(tmp_path, PENDOCK_SIMULATED="yes", NOTIFY_SOCKET=str(notify_path))
    daemon = start_daemon(tmp_path, env)
    try:
        ready = listener.recv(4096).decode()
        assert ready.startswith("READY=1") and "pen held" in ready and "SimFactory" in ready

        def cli(*args):
            return subprocess.run([sys.executable, "-m", "appliance", *args], env=env,
                                  capture_output=True, text=True, timeout=30)

        assert json.loads(cli("status", "--json").stdout)["pin_factory"] == "SimFactory"  # MockFactory + the pen
        docked = cli("sim", "dock")
        assert docked.returncode == 0, docked.stderr
        assert "no_pen" not in json.loads(cli("status", "--json").stdout)["locks"]
    finally:
        daemon.send_signal(signal.SIGTERM)
        out, _ = daemon.communicate(timeout=15)
        listener.close()
    assert daemon.returncode == 0, out
