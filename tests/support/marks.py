"""Shared pytest marks: the long variants run only with PENDOCK_SLOW=1."""
from __future__ import annotations

import os

import pytest

SLOW_ENABLED = os.environ.get("PENDOCK_SLOW") == "1"


def slow(test):
    """@pytest.mark.slow, and skipped unless PENDOCK_SLOW=1 (long loops, minutes)."""
    skip = pytest.mark.skipif(not SLOW_ENABLED, reason="long variant: set PENDOCK_SLOW=1 to run it")
    return pytest.mark.slow(skip(test))
