"""S8 at the daemon: the page's once-a-minute login entry carries how many attempts from
that address were not written down, so the count is never lost."""
from __future__ import annotations

import pytest

from appliance.daemon.control import BadRequest


def test_the_unwritten_count_is_kept_in_the_login_entry(sim):
    sim.call("login", user="boss", ok=False, remote="10.0.0.66", unwritten=41, throttled=3)
    entry = sim.store.audit_entries(1)[0]
    assert entry.action == "login_failed"
    assert entry.detail == {"user": "boss", "remote": "10.0.0.66", "throttled": 3, "unwritten": 41}
    with pytest.raises(BadRequest, match="unwritten must be a whole number"):
        sim.call("login", user="boss", ok=False, remote="10.0.0.66", unwritten=-1)
