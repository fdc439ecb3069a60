"""Poll until something holds, for tests that watch another thread or process catch up."""
from __future__ import annotations

import time


def wait_for(predicate, timeout: float = 3.0, every: float = 0.02):
    """The first truthy value of `predicate()` within `timeout` seconds, else its last value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    return predicate()
