"""Shared test set-up: slow tests run only with PENDOCK_SLOW=1; tests that start real
processes are marked `process`, so `make test-fast` can leave them to `make test`."""
import os
from pathlib import Path

import pytest

# Folders and modules whose tests start real processes: demos and daemons (scenario,
# reliability), installers, systemd units, sshd and wheels (system).
PROCESS_TESTS = ("scenario", "system", "chain", "reliability/test_kill_loop.py", "reliability/test_power_cut.py",
                 "reliability/test_soak.py", "reliability/test_page_restart.py")
_HERE = Path(__file__).parent


def _starts_processes(item) -> bool:
    where = Path(item.path).relative_to(_HERE).as_posix()
    return any(where == entry or where.startswith(entry + "/") for entry in PROCESS_TESTS)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if _starts_processes(item):
            item.add_marker(pytest.mark.process)
    if os.environ.get("PENDOCK_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="long variant: set PENDOCK_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def sim(tmp_path):
    """The daemon's dock in this process, on mock pins with the simulated pen, driven
    through its control socket (tests/support/inprocess.py)."""
    from tests.support.inprocess import SimDock

    dock = SimDock(tmp_path / "data", tmp_path / "control.sock")
    yield dock
    dock.close()
