"""Creating or upgrading the record in a short-lived child process, before the daemon opens it.

The migrations build the schema with sqlite-utils, which brings click, dateutil and
pluggy (about 4 MB resident). A daemon runs for months: had it created or upgraded the
record itself, it would hold them all that time (quality bar P4, README). So the
daemon's start (`pendock daemon`, `pendock demo`) lets a child process do it: the child
opens the record as the daemon's Store would, migrates it and exits; the daemon then
finds the record current and never loads sqlite-utils (migrations.upgrade).

The child only does early what the daemon's own Store does anyway: if it fails, or
cannot start, the daemon opens the record itself and says what is wrong, as before.

    python -m appliance.record.upgrade PATH-OF-THE-RECORD
"""
from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from pathlib import Path

from appliance.record import migrations

log = logging.getLogger("pendock.record")
TIMEOUT_S = 300.0  # a large record's upgrade on a Pi Zero; the daemon's own try follows anyway


def needs_upgrade(path: Path) -> bool:
    """The record is missing, or older than this software's schema."""
    if not Path(path).is_file():
        return True
    try:
        conn = sqlite3.connect(f"{Path(path).resolve().as_uri()}?mode=ro", uri=True)
        try:
            return migrations.schema_version(conn) < migrations.CURRENT_VERSION
        finally:
            conn.close()
    except sqlite3.Error:
        return False  # unreadable: the daemon's own opening says why


def upgrade_apart(path: Path, timeout: float = TIMEOUT_S) -> bool:
    """Create or upgrade the record at `path` in a child process if it needs it; True if
    a child did. Never raises: on any failure the daemon's Store does the work itself."""
    if not needs_upgrade(path):
        return False
    try:
        # -P: nothing from the working directory shadows the installed code.
        done = subprocess.run([sys.executable, "-P", "-m", "appliance.record.upgrade", str(path)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError) as error:
        log.warning("could not prepare the record %s in a child process (%s); the daemon "
                    "prepares it itself", path, error)
        return False
    if done.returncode != 0:
        said = done.stderr.decode("utf-8", "replace").strip().splitlines()
        log.warning("preparing the record %s in a child process failed (%s); the daemon "
                    "prepares it itself", path, said[-1] if said else f"exit {done.returncode}")
        return False
    return True


def main(argv: list[str]) -> int:
    from appliance.record.store import Store, StoreError

    if len(argv) != 1:
        print("usage: python -m appliance.record.upgrade PATH-OF-THE-RECORD", file=sys.stderr)
        return 2
    try:
        Store(Path(argv[0])).close()
    except StoreError as error:
        print(f"pendock: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
