"""A real `pendock demo` (daemon, simulated pen, page under waitress) and Debian's Chromium."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.demo import REPO, DemoProcess

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DEMO_PASSWORD = "pendock-demo"


def pytest_collection_modifyitems(config, items):
    reason = None
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing: apt-get install -y chromium"
    else:
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            reason = "the playwright Python package is missing: pip install playwright (no browser download needed)"
    if reason:
        for item in items:
            if "browser" in item.keywords:
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    dock = DemoProcess(tmp_path_factory.mktemp("demo"), runtime=tmp_path_factory.mktemp("run"), data_flag=True)
    dock.start(timeout=30)
    try:
        yield dock
    finally:
        dock.stop()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def log_in(page, base: str, name: str = "demo") -> None:
    page.goto(base + "/")
    page.fill("#name", name)
    page.fill("#password", DEMO_PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_selector("#live")
