"""A simulated dock for scenario tests: `pendock demo` as a real process, driven by the CLI."""
from __future__ import annotations

import pytest

from tests.support.demo import REPO, DemoProcess as Demo, free_port  # noqa: F401  (tests import them from here)


@pytest.fixture
def demo(tmp_path):
    dock = Demo(tmp_path / "data").start()
    yield dock
    dock.stop()
