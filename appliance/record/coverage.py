"""What a restore may bring back: only rows the backup's own audit chain speaks for (R5).

A backup's audit chain verifies (restore.check_backup), but its other tables are not
chained: an edited backup could carry an invented session (a client treated in 2099), an
edited session, a user with a changed password hash, or a pen shown as just serviced.
So every row a restore would add is compared with the entries that recorded it:

- a session: its `session_opened` entry (start, client, area, pen, cartridge; a start
  moved by `clock_reanchored` counts), and for a finished one its `session_closed` (or
  `session_interrupted`) entry with the same outcome;
- a spent cartridge: a `session_opened` entry with that cartridge, or the backup's
  fleet sessions (another dock's signed events);
- a pen: its `pen_registered` entry, with no later service than its entries show (a pen
  the audit never registered, seen only through the fleet, comes in as never serviced);
- a user: the `hash_stamp` of its latest `user_added`/`user_password_changed` entry, and
  the role it was added with (entries from before stamps: the user is left out, named).

And a backup of this same dock must be a prefix of the live chain: entries appended to a
genuine backup, to cover invented rows, are not in the live chain and are refused.
Pure over the attached `backup` schema; raises Uncovered naming the first rows."""
from __future__ import annotations

import json
import sqlite3
from datetime import datetime
from typing import Any


class Uncovered(Exception):
    """Rows the backup's audit trail does not speak for; the message names them."""


def hash_stamp(password_hash: str) -> str:
    """What the audit keeps of a password hash: enough to tell it, nothing to attack."""
    import hashlib  # not at import: the daemon's footprint (P4) leaves hashlib out

    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def _entries(conn: sqlite3.Connection, actions: tuple[str, ...]) -> list[tuple[int, str, str, dict]]:
    marks = ",".join("?" for _ in actions)
    found = []
    for entry_id, at, action, detail in conn.execute(
            f"SELECT id, at, action, detail FROM backup.audit WHERE action IN ({marks}) ORDER BY id", actions):
        try:
            value = json.loads(detail)
        except (TypeError, ValueError):
            continue
        if isinstance(value, dict):
            found.append((entry_id, at, action, value))
    return found


def _same_moment(a: object, b: object) -> bool:
    try:
        return datetime.fromisoformat(str(a)) == datetime.fromisoformat(str(b))
    except ValueError:
        return False


def check_prefix(conn: sqlite3.Connection, head_id: int) -> None:
    """A backup of this dock: its chain head is an entry of the live chain, unchanged."""
    if not head_id:
        return
    live = conn.execute("SELECT hash FROM main.audit WHERE id = ?", (head_id,)).fetchone()
    held = conn.execute("SELECT hash FROM backup.audit WHERE id = ?", (head_id,)).fetchone()
    if live is None or held is None or live[0] != held[0]:
        raise Uncovered(f"its audit trail goes past this dock's own at entry {head_id}: entries were "
                        f"added to or changed in this backup of this dock")


def sessions(conn: sqlite3.Connection, candidates: list[dict[str, Any]]) -> None:
    opened: dict[int, tuple[str, dict]] = {}
    closed: dict[int, dict] = {}
    interrupted: set[int] = set()
    moved: dict[int, set[str]] = {}
    for _, at, action, detail in _entries(conn, ("session_opened", "session_closed", "session_interrupted",
                                                 "clock_reanchored")):
        if action == "clock_reanchored":
            for move in detail.get("sessions") or []:
                if isinstance(move, dict) and isinstance(move.get("session"), int):
                    moved.setdefault(move["session"], set()).add(str(move.get("to")))
            continue
        session = detail.get("session")
        if not isinstance(session, int):
            continue
        if action == "session_opened":
            opened[session] = (at, detail)
        elif action == "session_closed":
            closed[session] = detail
        else:
            interrupted.add(session)
    bad = []
    for row in candidates:
        why = _session_problem(row, opened.get(row["id"]), closed.get(row["id"]), row["id"] in interrupted,
                               moved.get(row["id"], set()))
        if why:
            bad.append(f"session {row['id']} of {str(row['started_at'])[:16]} ({why})")
    if bad:
        raise Uncovered(f"{len(bad)} session(s) the backup's audit trail does not record as they are: "
                        + "; ".join(bad[:3]))


def _session_problem(row: dict, opened: tuple[str, dict] | None, closed: dict | None, interrupted: bool,
                     moved: set[str]) -> str:
    if opened is None:
        return "no session_opened entry"
    at, detail = opened
    if not (_same_moment(at, row["started_at"]) or any(_same_moment(to, row["started_at"]) for to in moved)):
        return "its start differs from its entry"
    if (detail.get("client_ref") or "").upper() != (row.get("client_ref") or "").upper():
        return "its client_ref differs from its entry"  # one client whatever its letter case
    for key in ("area",):
        if (detail.get(key) or "") != (row.get(key) or ""):
            return f"its {key} differs from its entry"
    for key in ("pen_serial", "cartridge_serial"):
        if int(detail.get(key) or 0) != int(row.get(key) or 0):
            return f"its {key} differs from its entry"
    if sorted(detail.get("overrides") or []) != sorted(json.loads(row.get("overrides") or "[]")):
        return "its overrides differ from its entry"
    outcome = row.get("outcome")
    if outcome == "open":
        return ""
    if outcome == "interrupted" and (interrupted or (closed or {}).get("outcome") == "interrupted"):
        return ""
    if closed is None:
        return "no session_closed entry"
    if closed.get("outcome") != outcome:
        return "its outcome differs from its entry"
    if "needling_seconds" in closed and int(closed["needling_seconds"] or 0) != int(row.get("needling_seconds") or 0):
        return "its needling time differs from its entry"
    return ""


def spent_cartridges(conn: sqlite3.Connection, serials: list[int]) -> None:
    known = {int(d.get("cartridge_serial") or 0) for _, _, _, d in _entries(conn, ("session_opened",))}
    known |= {row[0] for row in conn.execute("SELECT cartridge_serial FROM backup.fleet_sessions")}
    bad = [serial for serial in serials if serial not in known]
    if bad:
        raise Uncovered(f"{len(bad)} spent cartridge(s) no session of the backup's audit trail used: "
                        + ", ".join(str(s) for s in bad[:5]))


def pens(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The new pens as they may come in: each registered one with a service no later than
    its entries show; one never registered (seen through the fleet) as never serviced."""
    registered: dict[int, int] = {}
    serviced: dict[int, int] = {}
    for _, _, action, d in _entries(conn, ("pen_registered", "service_reset", "rebaseline")):
        serial = d.get("serial")
        if not isinstance(serial, int):
            continue
        if action == "pen_registered":
            registered[serial] = int(d.get("motor_seconds") or 0)
        elif action == "service_reset":
            serviced[serial] = int(d.get("motor_seconds") or 0)
        else:
            serviced[serial] = int(d.get("service_motor_seconds", d.get("motor_seconds")) or 0)
    bad, kept = [], []
    for row in rows:
        serial = row["serial"]
        if serial not in registered:
            kept.append({**row, "service_motor_seconds": 0})
            continue
        allowed = serviced.get(serial, registered[serial])
        if int(row["service_motor_seconds"] or 0) > allowed:
            bad.append(f"pen {serial} (serviced at {row['service_motor_seconds']} s, its entries say {allowed} s)")
        kept.append(row)
    if bad:
        raise Uncovered(f"{len(bad)} pen(s) shown serviced later than the backup's audit trail says: "
                        + "; ".join(bad[:3]))
    return kept


def users(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[str]]:
    """(the users that may come in, the names left out: their entries predate stamps)."""
    role: dict[str, str] = {}
    stamp: dict[str, str | None] = {}
    for _, _, action, d in _entries(conn, ("user_added", "user_password_changed", "user_removed")):
        name = str(d.get("name"))
        if action == "user_removed":
            role.pop(name, None)
            stamp.pop(name, None)
            continue
        if action == "user_added":
            role[name] = str(d.get("role"))
        stamp[name] = d.get("hash_stamp")
    bad, kept, left_out = [], [], []
    for row in rows:
        name = row["name"]
        if name not in role or role[name] != row["role"]:
            bad.append(f"{name} (no user_added entry with role {row['role']})")
        elif stamp.get(name) is None:
            left_out.append(name)
        elif stamp[name] != hash_stamp(row["password_hash"]):
            bad.append(f"{name} (its password is not the one its entries recorded)")
        else:
            kept.append(row)
    if bad:
        raise Uncovered(f"{len(bad)} user(s) the backup's audit trail does not record as they are: "
                        + "; ".join(bad[:3]))
    return kept, left_out
