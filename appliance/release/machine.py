"""The real `Machine`: systemctl, the daemon's control socket and the page's /healthz."""
from __future__ import annotations

import subprocess
import time
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from appliance.core.paths import DB_NAME
from appliance.daemon.control import DaemonUnavailable
from appliance.release.slots import Layout
from appliance.release.upgrade import Machine, offline_venv


def systemctl(args: list[str]) -> None:
    subprocess.run(["systemctl", *args], check=True)


def health_probe(make_client: Callable[[], object], healthz_url: str, timeout_s: float = 90.0,
                 sleep: Callable[[float], None] = time.sleep,
                 monotonic: Callable[[], float] = time.monotonic) -> Callable[[], list[str]]:
    """Ready (status answers), self-test all PASS, /healthz 200, within timeout_s."""
    def check_once() -> list[str]:
        client = make_client()
        try:
            client.call("status")  # type: ignore[attr-defined]
        except Exception as error:
            return [f"daemon not ready: {error}"]
        try:
            rows = client.call("selftest")  # type: ignore[attr-defined]
        except Exception as error:
            return [f"self-test did not run: {error}"]
        failed = [f"self-test FAIL {r['part']}: {r['seen']}" for r in rows if not r["ok"]]
        if failed:
            return failed
        try:
            with urllib.request.urlopen(healthz_url, timeout=5) as answer:  # noqa: S310 (local URL)
                if answer.status != 200:
                    return [f"{healthz_url} answered {answer.status}"]
        except Exception as error:
            return [f"{healthz_url} did not answer: {error}"]
        return []

    def probe() -> list[str]:
        deadline = monotonic() + timeout_s
        while True:
            problems = check_once()
            if not problems or monotonic() >= deadline:
                return problems
            sleep(2.0)

    return probe


def real_machine(root: Path, data_dir: Path, make_client: Callable[[], object], healthz_url: str,
                 say: Callable[[str], None], health_timeout_s: float = 90.0) -> Machine:
    def backup_record(path: Path) -> None:
        result = make_client().call("backup", path=str(path))  # type: ignore[attr-defined]
        if result.get("integrity") != "ok":
            raise RuntimeError(f"backup integrity {result.get('integrity')}")

    def busy() -> str | None:
        try:
            status = make_client().call("status")  # type: ignore[attr-defined]
        except DaemonUnavailable:
            return None  # nothing to interrupt (and a rollback may be what brings it back)
        except Exception as error:
            return f"the daemon did not answer ({error})"
        if status.get("session"):
            return "a session is open (restarting the daemon would interrupt it)"
        return None

    return Machine(layout=Layout(root), record_file=data_dir / DB_NAME,
                   backup_dir=data_dir / "backups", systemctl=systemctl,
                   health=health_probe(make_client, healthz_url, health_timeout_s), backup_record=backup_record,
                   build_venv=offline_venv, busy=busy, now=lambda: datetime.now(timezone.utc), say=say)
