"""Pens: their registration, the counters a rollback is measured against, service and
re-baseline (a technician's acts, each audited).

A mixin of `Store` (store.py): it uses the store's connection, `transaction` and `_audit`.
"""
from __future__ import annotations

from datetime import datetime

from appliance.core.model import PenReading, PenRecord
from appliance.record.errors import StoreError
from appliance.record.values import iso


class PensMixin:
    def pen(self, serial: int) -> PenRecord | None:
        rows = self._read("SELECT serial, last_strokes, last_motor_seconds, "
                          "service_motor_seconds FROM pens WHERE serial = ?", (serial,))
        return PenRecord(*rows[0]) if rows else None

    def register_pen(self, reading: PenReading, at: datetime, actor: str,
                     clock_synced: bool) -> PenRecord:
        """First sight of a pen: its counters now are its baseline and its last service."""
        with self.transaction(f"pen {reading.pen_serial}"):
            if self.pen(reading.pen_serial) is not None:
                raise StoreError(f"pen {reading.pen_serial} is already registered")
            self._conn.execute(
                "INSERT INTO pens (serial, firmware, first_seen, last_strokes, "
                "last_motor_seconds, service_motor_seconds) VALUES (?, ?, ?, ?, ?, ?)",
                (reading.pen_serial, reading.firmware, iso(at), reading.strokes,
                 reading.motor_seconds, reading.motor_seconds))
            self._audit(actor, "pen_registered",
                        {"serial": reading.pen_serial, "firmware": reading.firmware,
                         "strokes": reading.strokes, "motor_seconds": reading.motor_seconds},
                        at, clock_synced)
        return PenRecord(reading.pen_serial, reading.strokes, reading.motor_seconds,
                         reading.motor_seconds)

    def _known_pen(self, serial: int) -> PenRecord:
        record = self.pen(serial)
        if record is None:
            raise StoreError(f"pen {serial} is not registered: dock it once so the dock "
                             f"records it")
        return record

    def record_pen_counters(self, serial: int, strokes: int, motor_seconds: int) -> None:
        """The counters of the latest valid reading: what a rollback is measured against."""
        with self.transaction(f"the counters of pen {serial}"):
            cursor = self._conn.execute(
                "UPDATE pens SET last_strokes = ?, last_motor_seconds = ? WHERE serial = ?",
                (strokes, motor_seconds, serial))
            if cursor.rowcount == 0:
                self._known_pen(serial)
            if self.journal is not None:  # shared with the clinic's docks (appliance/fleet)
                self.journal(self._conn, "pen_counters",
                             {"serial": serial, "strokes": strokes, "motor_seconds": motor_seconds},
                             None, None)

    def service_reset(self, serial: int, motor_seconds: int, actor: str, reason: str,
                      at: datetime, clock_synced: bool) -> None:
        """A technician serviced the pen: motor time since service counts from here."""
        with self.transaction(f"the service reset of pen {serial}"):
            before = self._known_pen(serial)
            self._conn.execute("UPDATE pens SET service_motor_seconds = ? WHERE serial = ?",
                               (motor_seconds, serial))
            self._audit(actor, "service_reset",
                        {"serial": serial, "motor_seconds": motor_seconds, "reason": reason,
                         "previous_service_motor_seconds": before.service_motor_seconds},
                        at, clock_synced)

    def rebaseline(self, serial: int, strokes: int, motor_seconds: int, actor: str,
                   reason: str, at: datetime, clock_synced: bool) -> None:
        """A technician accepts lower counters (a swapped board) as the pen's new baseline.

        The service baseline never stays above the motor counter, or a board swap would
        push the next service out by the old board's hours.
        """
        with self.transaction(f"the re-baseline of pen {serial}"):
            before = self._known_pen(serial)
            service = min(before.service_motor_seconds, motor_seconds)
            self._conn.execute(
                "UPDATE pens SET last_strokes = ?, last_motor_seconds = ?, "
                "service_motor_seconds = ? WHERE serial = ?",
                (strokes, motor_seconds, service, serial))
            self._audit(actor, "rebaseline",
                        {"serial": serial, "strokes": strokes, "motor_seconds": motor_seconds,
                         "service_motor_seconds": service, "reason": reason,
                         "previous_strokes": before.last_strokes,
                         "previous_motor_seconds": before.last_motor_seconds},
                        at, clock_synced)
