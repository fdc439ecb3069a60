"""`pip install .` as a plain wheel carries everything the program needs at run time:
the pin map and frame layout (hw/), the page's templates and static files (web/), and
the default config. Built, installed apart from the checkout, and run."""
from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from tests.support.demo import DemoProcess

REPO = Path(__file__).resolve().parents[2]


def test_the_wheel_runs_the_demo_away_from_the_checkout(tmp_path):
    dist, target = tmp_path / "dist", tmp_path / "site"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "-w", str(dist), str(REPO)],
                           capture_output=True, text=True, timeout=300)
    if build.returncode != 0 and "No matching distribution" in build.stderr:
        pytest.skip("no build backend to be had here (offline)")
    assert build.returncode == 0, build.stderr
    assert "would be ignored" not in build.stdout + build.stderr, "setuptools leaves a data folder out of `packages`"
    wheel = next(dist.glob("pen_dock-*.whl"))
    import zipfile

    names = zipfile.ZipFile(wheel).namelist()
    assert "appliance/web/translations/de/LC_MESSAGES/messages.mo" in names  # the page in German
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True, timeout=300)
    demo = DemoProcess(tmp_path / "data", cwd=tmp_path)  # away from the checkout
    demo.env["PYTHONPATH"] = str(target)  # the installed wheel, not the checkout
    where = subprocess.run([sys.executable, "-c", "import appliance; print(appliance.__file__)"], env=demo.env,
                           cwd=tmp_path, capture_output=True, text=True, check=True)
    assert where.stdout.startswith(str(target)), where.stdout  # not the checkout
    demo.start()
    try:
        status = demo.status()
        assert status["pen"] is not None  # the frame layout came from the wheel's hw/
        with urllib.request.urlopen(f"{demo.url}/login", timeout=5) as page:
            assert "password" in page.read().decode()  # the wheel's templates
        with urllib.request.urlopen(f"{demo.url}/static/style.css", timeout=5) as css:
            assert css.status == 200
    finally:
        demo.stop()
