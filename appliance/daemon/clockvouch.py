"""Vouched time kept across restarts and reboots, in a small file beside the record.

Beside, not in, the record: a restored backup brings its own record but never its own
idea of how late it is, so it cannot raise vouched time (README "The clock"). The file
is written atomically and fsynced; a missing or unreadable one means a first start.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path

from appliance.core.paths import VOUCHED_NAME
from appliance.core.vouched import Vouch

log = logging.getLogger("pendock.clock")


def path_for(data_dir: Path) -> Path:
    return Path(data_dir) / VOUCHED_NAME


def load(path: Path) -> Vouch | None:
    try:
        return Vouch.from_dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as error:
        log.error("the kept vouched time %s is unreadable (%s): starting from the wall clock", path, error)
        return None


def save(path: Path, vouch: Vouch) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(vouch.to_dict(), out)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)
