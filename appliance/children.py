"""How the dock starts its own Python processes (the demo's page and docks, the fleet's
link, the record's upgrade): `python -P -m MODULE`, so nothing in the working directory
(a stray `flask.py`, a checkout's `appliance/`) shadows the installed code, with this very
code's root first on PYTHONPATH, wherever it runs from (a checkout, a wheel, the demo)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import appliance


def python_command(module: str, *args: str) -> list[str]:
    return [sys.executable, "-P", "-m", module, *args]


def python_env(env: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if env is None else env)
    root = str(Path(appliance.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    return env
