"""Shared pytest marks: the long variants run only with PENDOCK_SLOW=1."""
from __future__ import annotations

import os

import pytest

SLOW_ENABLED = os.environ.get("PENDOCK_SLOW") == "1"
FAST = os.environ.get("PENDOCK_FAST") == "1"  # set by `make test-fast`


def examples(count: int) -> int:
    """A fuzz test's generated examples: all of them under `make test`, a tenth (at least
    50) under `make test-fast`, which is for a quick answer while working."""
    return max(50, count // 10) if FAST else count


def slow(test):
    """@pytest.mark.slow, and skipped unless PENDOCK_SLOW=1 (long loops, minutes)."""
    skip = pytest.mark.skipif(not SLOW_ENABLED, reason="long variant: set PENDOCK_SLOW=1 to run it")
    return pytest.mark.slow(skip(test))
