"""`restore` keeps the named next client (judged again on the merged history) and drops
any override given for it (it was given on the history before the restore)."""
from __future__ import annotations

from tests.support.inprocess import CHECKLIST, SimDock


def test_restore_keeps_the_named_next_client_and_judges_it_again(tmp_path):
    dock = SimDock(tmp_path / "data", tmp_path / "control.sock", loop=False)
    try:
        backup = tmp_path / "backup.db"
        dock.call("backup", path=str(backup))
        dock.call("sim.cartridge")
        dock.call("next_client", ref="BK-1042", area="face", checklist=CHECKLIST)
        status = dock.call("restore", path=str(backup))
        assert status["restored"] == str(backup)
        after = dock.status()
        assert after["next_client"] and after["next_client"]["ref"] == "BK-1042"
        assert after["overridden"] == []
    finally:
        dock.close()
