"""pendock-chain.service: clean under `systemd-analyze verify`, and as confined as the
page's unit (its exposure no higher)."""
from __future__ import annotations

from pathlib import Path

import pytest

from tests.system import test_units as units
from tests.system.test_units import verify_root  # noqa: F401  (the fixture)

UNIT = "pendock-chain.service"
pytestmark = pytest.mark.skipif(units.SYSTEMD_ANALYZE is None, reason="needs systemd-analyze (apt install systemd)")


def test_the_chain_unit_verifies_clean(verify_root: Path) -> None:  # noqa: F811
    output = units.verify(verify_root, (units.UNIT_SOURCE / UNIT).read_text(), UNIT)
    assert output == "", output


def test_the_chain_unit_is_confined_and_never_runs_as_root() -> None:
    d = units.directives(UNIT)
    assert units.one(d, "Service.User") == "pendock-chain"
    assert units.one(d, "Service.NoNewPrivileges") == "yes"
    assert units.exposure(UNIT) <= 1.5
