"""Shared test set-up: slow tests run only with PENDOCK_SLOW=1."""
import os

import pytest


def pytest_collection_modifyitems(config, items):
    if os.environ.get("PENDOCK_SLOW") == "1":
        return
    skip = pytest.mark.skip(reason="long variant: set PENDOCK_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
