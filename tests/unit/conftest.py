"""Fixtures shared by the unit tests that drive the in-process dock with the real page."""
from __future__ import annotations

import pytest

from appliance.core.config import Config
from appliance.page.app import create_app
from appliance.record.passwords import password_hash
from appliance.record.store import Store
from tests.web.conftest import log_in

PASSWORD = "correct horse battery"


@pytest.fixture
def page(sim, tmp_path):
    """The real page on the sim dock's record and socket, a manager logged in."""
    sim.store.add_user("boss", "manager", password_hash(PASSWORD, n=2**10), sim.clock.now())
    store = Store.open(tmp_path / "data", readonly=True)
    app = create_app(Config(), tmp_path / "data", sim.client.path, store=store,
                     secret_key="test-key", status_fresh_s=0)
    client = app.test_client()
    assert log_in(client, "boss", PASSWORD).status_code == 302
    yield client
    store.close()
