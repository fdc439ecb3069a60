"""This dock's own events, kept by reference rather than by copy.

WHY (P6): a shared fact is already in the record's audit entry (kind, time, detail), the
previous event's hash is the previous row's, and Ed25519 signatures are deterministic, so
this dock can sign its own event again, to the same bytes, whenever it serves it. What is
kept is the event's hash (the chain, and a check that what is rebuilt is what was signed)
and, only for a fact with no audit entry (pen counters), the signed body, deflated, with
`prev` left out. Events kept before schema 6 stay whole in `fleet_events` and are served
from there.
"""
from __future__ import annotations

import base64
import json
import sqlite3
from dataclasses import replace
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.core.digest import sha256_hex
from appliance.fleet.events import GENESIS, VERSION, Event
from appliance.fleet.shared import shared_payload
from appliance.record import fleet_codec


class OwnEventBroken(RuntimeError):
    """A kept own event no longer rebuilds to the bytes it was signed as."""


class OwnEvents:
    def __init__(self, conn: sqlite3.Connection, dock_id: str, key: Ed25519PrivateKey | None):
        self.conn, self.dock_id, self.key = conn, dock_id, key

    def last(self) -> tuple[int, str]:
        """(seq, hash) of this dock's newest event, (0, GENESIS) before the first."""
        row = self.conn.execute("SELECT seq, hash FROM fleet_own ORDER BY seq DESC LIMIT 1").fetchone()
        if row:
            return row[0], bytes(row[1]).hex()
        row = self.conn.execute("SELECT seq, body FROM fleet_events WHERE dock_id = ? "
                                "ORDER BY seq DESC LIMIT 1", (self.dock_id,)).fetchone()
        return (row[0], fleet_codec.body_hash(row[1])) if row else (0, GENESIS)

    def record(self, kind: str, payload: dict[str, Any], at: datetime,
               audit_id: int | None) -> Event:
        """The next event, hashed, not signed (caller's transaction: the decision's, so P1
        pays only for the hash; it is signed when served, below); keep a reference to
        `audit_id`'s entry when that entry rebuilds to exactly its bytes, else the body."""
        seq, prev = self.last()
        event = Event(self.dock_id, seq + 1, kind, at.isoformat(), payload, prev)
        body = event.body()
        event = replace(event, hash=sha256_hex(body))
        if audit_id is not None and self._from_audit(event.seq, audit_id, prev) == body:
            kept = None
        else:
            audit_id, kept = None, fleet_codec.deflate(replace(event, prev="").body())
        self.conn.execute("INSERT INTO fleet_own (seq, hash, audit_id, body) VALUES (?, ?, ?, ?)",
                          (event.seq, bytes.fromhex(event.hash), audit_id, kept))
        return event

    def after(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        """(seq, signed event as it travels) after `after`, in order."""
        out = [(seq, fleet_codec.unpack_wire(sig, body)) for seq, sig, body in self.conn.execute(
            "SELECT seq, sig, body FROM fleet_events WHERE dock_id = ? AND seq > ? ORDER BY seq "
            "LIMIT ?", (self.dock_id, after, limit))]
        rows = self.conn.execute(
            "SELECT seq, hash, audit_id, body FROM fleet_own WHERE seq > ? ORDER BY seq LIMIT ?",
            (after, limit - len(out))).fetchall() if len(out) < limit else []
        if rows:
            prev = self._hash_of(rows[0][0] - 1)
            for seq, digest, audit_id, kept in rows:
                out.append((seq, self._wire(seq, bytes(digest).hex(), audit_id, kept, prev)))
                prev = bytes(digest).hex()
        return out

    def max_seq(self) -> int:
        return self.last()[0]

    # -- rebuilding ----------------------------------------------------------------------------
    def _hash_of(self, seq: int) -> str:
        if seq < 1:
            return GENESIS
        row = self.conn.execute("SELECT hash FROM fleet_own WHERE seq = ?", (seq,)).fetchone()
        if row:
            return bytes(row[0]).hex()
        row = self.conn.execute("SELECT body FROM fleet_events WHERE dock_id = ? AND seq = ?",
                                (self.dock_id, seq)).fetchone()
        if row is None:
            raise OwnEventBroken(f"event {self.dock_id}#{seq} is missing from the record")
        return fleet_codec.body_hash(row[0])

    def _from_audit(self, seq: int, audit_id: int, prev: str) -> bytes | None:
        row = self.conn.execute("SELECT action, at, detail FROM audit WHERE id = ?",
                                (audit_id,)).fetchone()
        if row is None:
            return None
        kind, at, detail = row
        return fleet_codec.canonical({"v": VERSION, "dock": self.dock_id, "seq": seq,
                                      "kind": kind, "at": at, "prev": prev,
                                      "payload": shared_payload(kind, json.loads(detail))})

    def _wire(self, seq: int, digest: str, audit_id: int | None, kept: bytes | None,
              prev: str) -> bytes:
        if kept is not None:
            value = json.loads(fleet_codec.inflate(kept))
            value["prev"] = prev
            body = fleet_codec.canonical(value)
        else:
            body = self._from_audit(seq, audit_id or 0, prev) or b""
        if sha256_hex(body) != digest:
            raise OwnEventBroken(f"event {self.dock_id}#{seq} does not rebuild to what was signed")
        if self.key is None:
            raise OwnEventBroken("this dock's own events are signed when served: the dock's key "
                                 "is needed")
        value = json.loads(body)
        value["hash"] = digest
        value["sig"] = base64.b64encode(self.key.sign(body)).decode("ascii")
        return fleet_codec.canonical(value)
