"""The installer sets up the sources that may vouch for the time (README "The clock"):
chrony with NTS servers only, and the daemon's leave to ask chronyd on localhost; the
uninstaller takes both away again. Into a scratch root, as tests/system/test_install.py."""
from __future__ import annotations

from pathlib import Path

from appliance.hardware.clock import chrony_requires_authentication
from tests.system import test_install as base

pytestmark = base.pytestmark
install = base.install
root, source = base.root, base.source  # the installer's fixtures: a scratch root, the sources

CHRONY = Path("etc/chrony/conf.d/pendock-nts.conf")
DROPIN = Path("etc/systemd/system/pendock.service.d/chronyc.conf")


def test_install_sets_up_nts_and_the_daemons_leave_to_ask_chrony(source: Path, root: Path) -> None:
    output = install(source, root, "--no-venv")
    assert chrony_requires_authentication(root / CHRONY)  # a synchronised chrony is an NTS one
    servers = [line for line in (root / CHRONY).read_text().splitlines() if line.startswith("server ")]
    assert len(servers) >= 2 and all(line.split()[-1] == "nts" for line in servers)
    dropin = (root / DROPIN).read_text()
    assert "IPAddressAllow=localhost" in dropin and "AF_INET" in dropin and "PrivateNetwork=no" in dropin
    assert "IPAddressAllow=localhost\n" in dropin  # localhost alone: the unit keeps IPAddressDeny=any
    assert "NTS" in output
    install(source, root, "--uninstall")
    assert not (root / CHRONY).exists() and not (root / DROPIN).exists()
