"""The fleet's tables in the dock's own record: this dock's events and outbox, the peers'
events, and what the peers' events mean for the rules (sessions, spent cartridges, pen
counters) applied to the local record.

Every function runs on the caller's SQLite connection inside the caller's transaction:
this dock's events are written in the same commit as the record they describe (the
store's journal hook), and a peer's events with whatever they change. Peers' events are
applied strictly in each dock's sequence order, so a gap waits for catch-up and a session
is never closed before it was opened.
"""
from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any, Iterable

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.core import rules
from appliance.fleet.events import GENESIS, MAX_SEQ, Event
from appliance.fleet.own import OwnEvents
from appliance.fleet.shared import SHARED_ACTIONS, TECHNICIAN_PEN_ACTS, shared_payload
from appliance.record import fleet_codec

__all__ = ["SHARED_ACTIONS", "Ledger", "Ingested", "shared_payload"]


@dataclass
class Ingested:
    new: int = 0
    duplicates: int = 0
    equivocations: int = 0  # same (dock, seq), another hash, or a chain that does not join
    own: int = 0  # this dock's own events coming back
    conflicts: list[dict[str, Any]] = field(default_factory=list)  # found by this merge
    # The alarms: {"dock_id", "seq", "why"}; what both tellings said was merged anyway.
    equivocated: list[dict[str, Any]] = field(default_factory=list)
    # A peer's technician act on a pen, not applied here: {"dock_id", "seq", "kind", "serial"}.
    not_applied: list[dict[str, Any]] = field(default_factory=list)


class Ledger:
    def __init__(self, conn: sqlite3.Connection, dock_id: str,
                 key: Ed25519PrivateKey | None = None):
        """`key`, this dock's, is needed to serve its own events (signed when served)."""
        self.conn = conn
        self.dock_id = dock_id
        self.own = OwnEvents(conn, dock_id, key)

    # -- this dock's events ----------------------------------------------------------------
    def record_own(self, kind: str, payload: dict[str, Any], at: datetime,
                   audit_id: int | None = None) -> Event:
        """The next event of this dock into the outbox (caller's transaction); it is signed
        when it leaves (`outbox`, `events_after`), with the key this Ledger was given."""
        event = self.own.record(kind, payload, at, audit_id)
        self.conn.execute("INSERT INTO fleet_outbox (seq) VALUES (?)", (event.seq,))
        return event

    def _store(self, event: Event) -> None:
        """One peer's signed event, kept compact (appliance/record/fleet_codec.py)."""
        self.conn.execute(
            "INSERT INTO fleet_events (dock_id, seq, sig, body) VALUES (?, ?, ?, ?)",
            (event.dock, event.seq, *fleet_codec.pack_wire(event.wire())))

    def stored(self, dock: str) -> list[dict[str, Any]]:
        """Every event held of `dock`, as it travels (decoded), in order: for tests and tools."""
        return [json.loads(body) for _, body in self.events_after(dock, 0, MAX_SEQ)]

    def own_seq(self) -> int:
        return self.own.max_seq()

    def outbox(self, after: int = 0, limit: int = 200) -> list[tuple[int, bytes]]:
        seqs = [seq for (seq,) in self.conn.execute(
            "SELECT seq FROM fleet_outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit))]
        if not seqs:
            return []
        wanted = set(seqs)
        return [(seq, body) for seq, body in self.own.after(seqs[0] - 1, seqs[-1] - seqs[0] + 1)
                if seq in wanted]

    def outbox_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM fleet_outbox").fetchone()[0]

    def acknowledged(self, seqs: Iterable[int]) -> None:
        self.conn.executemany("DELETE FROM fleet_outbox WHERE seq = ?", [(s,) for s in seqs])

    # -- what this dock holds ---------------------------------------------------------------
    def high_water(self) -> dict[str, int]:
        """{dock: last sequence held without a gap}, this dock's own included."""
        marks = {dock: seq for dock, seq in self.conn.execute(
            "SELECT dock_id, applied_seq FROM fleet_docks")}
        marks[self.dock_id] = self.own_seq()
        return marks

    def held_max(self, dock: str) -> int:
        if dock == self.dock_id:
            return self.own.max_seq()
        row = self.conn.execute("SELECT max(seq) FROM fleet_events WHERE dock_id = ?",
                                (dock,)).fetchone()
        return row[0] or 0

    def events_after(self, dock: str, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(seq, signed event) of `dock` after `after`, in order, as they travel (catch-up)."""
        if dock == self.dock_id:
            return self.own.after(after, limit)
        return [(seq, fleet_codec.unpack_wire(sig, body)) for seq, sig, body in self.conn.execute(
            "SELECT seq, sig, body FROM fleet_events WHERE dock_id = ? AND seq > ? "
            "ORDER BY seq LIMIT ?", (dock, after, limit))]

    # -- peers' events ------------------------------------------------------------------------
    def ingest(self, events: Iterable[Event], *, min_interval_days: int, tz: tzinfo,
               now: datetime) -> Ingested:
        """Insert verified events idempotently, then apply each dock's in order."""
        result = Ingested()
        touched: set[str] = set()
        for event in events:
            if event.dock == self.dock_id:
                result.own += 1
                continue
            found = self.conn.execute("SELECT body FROM fleet_events WHERE dock_id = ? AND seq = ?",
                                      (event.dock, event.seq)).fetchone()
            if found is not None:
                if fleet_codec.body_hash(found[0]) == event.hash:
                    result.duplicates += 1
                else:
                    # Two events signed by one dock's key for one place in its chain: its key
                    # lied (or was stolen). An alarm; what the second telling says is merged
                    # too, so a forged event cannot hide a genuine session (S9).
                    result.equivocations += 1
                    result.equivocated.append({"dock_id": event.dock, "seq": event.seq,
                                               "why": "two events for one sequence number"})
                    self._apply(event.dock, event.seq, event.kind, event.at, dict(event.payload), result,
                                min_interval_days, tz, now)
                continue
            self._store(event)
            result.new += 1
            touched.add(event.dock)
        for dock in sorted(touched):
            self._apply_in_order(dock, result, min_interval_days, tz, now)
        return result

    def _apply_in_order(self, dock: str, result: Ingested, min_interval_days: int, tz: tzinfo,
                        now: datetime) -> None:
        row = self.conn.execute("SELECT applied_seq FROM fleet_docks WHERE dock_id = ?",
                                (dock,)).fetchone()
        applied = row[0] if row else 0
        prev_hash = GENESIS
        if applied:
            prev_hash = fleet_codec.body_hash(self.conn.execute(
                "SELECT body FROM fleet_events WHERE dock_id = ? AND seq = ?",
                (dock, applied)).fetchone()[0])
        rows = self.conn.execute(
            "SELECT seq, body FROM fleet_events WHERE dock_id = ? AND seq > ? ORDER BY seq",
            (dock, applied)).fetchall()
        for seq, body in rows:
            if seq != applied + 1:
                break  # a gap: wait for catch-up
            signed = fleet_codec.signed_fields(body)
            if signed["prev"] != prev_hash:
                # The chain does not join: this dock's key told two stories. An alarm, and
                # its events keep being merged (each is still signed by its key).
                result.equivocations += 1
                result.equivocated.append({"dock_id": dock, "seq": seq, "why": "its chain does not join"})
            self._apply(dock, seq, signed["kind"], signed["at"], signed["payload"], result,
                        min_interval_days, tz, now)
            applied, prev_hash = seq, fleet_codec.body_hash(body)
        self.conn.execute(
            "INSERT INTO fleet_docks (dock_id, applied_seq) VALUES (?, ?) "
            "ON CONFLICT(dock_id) DO UPDATE SET applied_seq = excluded.applied_seq", (dock, applied))

    def _apply(self, dock: str, seq: int, kind: str, at: str, p: dict[str, Any], result: Ingested,
               min_interval_days: int, tz: tzinfo, now: datetime) -> None:
        """A peer's key speaks for its own dock's sessions and for counters seen (which
        only ever rise): never for a technician's act on a pen. A service reset or a
        re-baseline is applied on the dock where the technician did it, and on each other
        dock only by a technician there (a stolen dock key frees no pen elsewhere, S9)."""
        if kind in TECHNICIAN_PEN_ACTS:
            result.not_applied.append({"dock_id": dock, "seq": seq, "kind": kind,
                                       "serial": _int(p.get("serial"))})
            kind = "pen_counters"  # the counters it read still count (they only rise)
        moment = datetime.fromisoformat(at)
        if kind == "session_opened":
            self.conn.execute(
                "INSERT OR IGNORE INTO fleet_sessions (dock_id, session, day, started_at, "
                "client_ref, area, pen_serial, cartridge_serial, outcome, warnings, overrides, "
                "forced) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'open', ?, ?, ?)",
                (dock, p["session"], moment.astimezone(tz).date().isoformat(), at,
                 rules.canonical_client_ref(p.get("client_ref") or ""), p.get("area") or "", p["pen_serial"],
                 p["cartridge_serial"], json.dumps(_codes(p.get("warnings"))),
                 json.dumps(_codes(p.get("overrides"))), int(bool(p.get("forced")))))
            if p["cartridge_serial"]:
                self.conn.execute("INSERT OR IGNORE INTO spent_cartridges (serial, first_used) "
                                  "VALUES (?, ?)", (p["cartridge_serial"], at))
            result.conflicts.extend(self._conflicts(dock, p, moment, min_interval_days, now, tz))
        elif kind == "session_closed":
            self.conn.execute(
                "UPDATE fleet_sessions SET ended_at = ?, outcome = ?, needling_seconds = ?, "
                "strokes = ?, max_depth_mm = ?, warnings = ? WHERE dock_id = ? AND session = ?",
                (at, p["outcome"], _int(p.get("needling_seconds")), _int(p.get("strokes")),
                 _float(p.get("max_depth_mm")), json.dumps(_codes(p.get("warnings"))), dock,
                 p["session"]))
        elif kind == "session_interrupted":
            self.conn.execute("UPDATE fleet_sessions SET ended_at = ?, outcome = 'interrupted' "
                              "WHERE dock_id = ? AND session = ?", (at, dock, p["session"]))
        elif kind in ("pen_registered", "pen_counters"):
            self._apply_pen(kind, at, p)

    def _apply_pen(self, kind: str, at: str, p: dict[str, Any]) -> None:
        """Counters only ever rise across docks (a peer's re-baseline is not applied here,
        `_apply`); counters older than a re-baseline recorded before that rule are ignored."""
        serial = p["serial"]
        baseline = self.conn.execute("SELECT at FROM fleet_pen_baselines WHERE serial = ?",
                                     (serial,)).fetchone()
        if baseline and datetime.fromisoformat(at) < datetime.fromisoformat(baseline[0]):
            return
        motor = p["motor_seconds"]
        strokes = p.get("strokes", 0)
        self.conn.execute(
            "INSERT OR IGNORE INTO pens (serial, firmware, first_seen, last_strokes, "
            "last_motor_seconds, service_motor_seconds) VALUES (?, ?, ?, ?, ?, ?)",
            (serial, str(p.get("firmware") or ""), at, strokes, motor, motor))
        self.conn.execute(
            "UPDATE pens SET last_strokes = max(last_strokes, ?), "
            "last_motor_seconds = max(last_motor_seconds, ?) WHERE serial = ?",
            (strokes, motor, serial))

    def _conflicts(self, dock: str, p: dict[str, Any], moment: datetime, min_days: int,
                   now: datetime, tz: tzinfo) -> list[dict[str, Any]]:
        """Sessions of the same client and area on ANOTHER dock, closer than the minimum
        interval (in calendar days of the clinic's zone, as the rules count it), where the
        later one was not a manager's override: both docks were blind to each other (a
        partition). Found once per pair. A peer's reference in any letter case is one client."""
        ref, area = rules.canonical_client_ref(p.get("client_ref") or ""), p.get("area") or ""
        if not ref:
            return []
        window = timedelta(days=min_days)
        low = (moment - window - timedelta(days=2)).isoformat()
        high = (moment + window + timedelta(days=2)).isoformat()
        others = [(self.dock_id, sid, started, overrides) for sid, started, overrides in self.conn.execute(
            "SELECT id, started_at, overrides FROM sessions WHERE client_ref = ? AND area = ? "
            "AND started_at BETWEEN ? AND ?", (ref, area, low, high))]
        others += list(self.conn.execute(
            "SELECT dock_id, session, started_at, overrides FROM fleet_sessions WHERE client_ref = ? "
            "AND area = ? AND dock_id != ? AND started_at BETWEEN ? AND ?",
            (ref, area, dock, low, high)))
        found = []
        for other_dock, other_session, other_at, other_overrides in others:
            other_moment = datetime.fromisoformat(other_at)
            if not rules.within_min_interval(moment, other_moment, min_days, tz):
                continue
            first = (other_dock, other_session, other_moment, json.loads(other_overrides or "[]"))
            second = (dock, p["session"], moment, _codes(p.get("overrides")))
            if second[2] < first[2]:
                first, second = second, first
            if "client_interval" in second[3]:
                continue  # a manager knowingly overrode the interval: not a blind conflict
            cursor = self.conn.execute(
                "INSERT OR IGNORE INTO fleet_conflicts (detected_at, client_ref, area, first_dock, "
                "first_session, first_at, second_dock, second_session, second_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (now.isoformat(), ref, area, first[0], first[1], first[2].isoformat(),
                 second[0], second[1], second[2].isoformat()))
            if cursor.rowcount:
                found.append({"client_ref": ref, "area": area,
                              "first": {"dock_id": first[0], "session": first[1],
                                        "started_at": first[2].isoformat()},
                              "second": {"dock_id": second[0], "session": second[1],
                                         "started_at": second[2].isoformat()}})
        return found

    # -- reading --------------------------------------------------------------------------
    def conflicts(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.conn.execute(
            "SELECT detected_at, client_ref, area, first_dock, first_session, first_at, "
            "second_dock, second_session, second_at FROM fleet_conflicts ORDER BY id DESC LIMIT ?",
            (limit,)).fetchall()
        return [{"detected_at": r[0], "client_ref": r[1], "area": r[2],
                 "first": {"dock_id": r[3], "session": r[4], "started_at": r[5]},
                 "second": {"dock_id": r[6], "session": r[7], "started_at": r[8]}} for r in rows]

    def conflict_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM fleet_conflicts").fetchone()[0]

    def equivocations(self, limit: int = 5) -> list[dict[str, Any]]:
        """The newest equivocation alarms (the link writes each once to the audit trail)."""
        rows = self.conn.execute("SELECT detail FROM audit WHERE action = 'fleet_equivocation' "
                                 "ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        found = []
        for (detail,) in reversed(rows):
            try:
                found.append(json.loads(detail))
            except (TypeError, ValueError):
                continue
        return found

    def equivocation_count(self) -> int:
        return self.conn.execute("SELECT count(*) FROM audit WHERE action = 'fleet_equivocation'").fetchone()[0]

    def peer_session_keys(self) -> list[tuple[str, int, str]]:
        """(dock, session, outcome) of every peer session: what convergence tests compare."""
        return [tuple(row) for row in self.conn.execute(
            "SELECT dock_id, session, outcome FROM fleet_sessions ORDER BY dock_id, session")]


def _codes(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [str(code)[:40] for code in value[:32] if isinstance(code, str)]


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
