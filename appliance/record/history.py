"""What the rules need to know of the past for one decision: the pen's record, whether
the cartridge was used before, the client's recent treatments.

A mixin of `Store` (store.py); reads only.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from appliance.core.model import History, PenReading, Treatment
from appliance.core.rules import canonical_client_ref, ref_likeness
from appliance.record.values import iso


class HistoryMixin:
    def cartridge_used(self, serial: int) -> bool:
        """Whether this cartridge serial was on any earlier session (even a purged one)."""
        if serial == 0:
            return False
        rows = self._read(
            "SELECT EXISTS (SELECT 1 FROM spent_cartridges WHERE serial = ?) "
            "OR EXISTS (SELECT 1 FROM sessions WHERE cartridge_serial = ?)", (serial, serial))
        return bool(rows[0][0])

    def treatments(self, client_ref: str, since: datetime) -> tuple[Treatment, ...]:
        """The client's finished sessions (every area) started at or after `since`, newest
        first, with the sessions the clinic's other docks shared (appliance/fleet; open ones
        too: the client may be on a couch in the next room). The SQL bound is widened by
        two days because ISO texts with different UTC offsets do not sort as instants; the
        exact cut is made on parsed times. A session of this dock counts from the vouched
        time it started at (record/clocked.py), not the date shown."""
        iso(since)
        client_ref = canonical_client_ref(client_ref)  # the record keeps only this spelling
        rough = (since - timedelta(days=2)).isoformat()
        rows = self._read(
            "SELECT client_ref, area, coalesce(vouched_at, started_at) FROM sessions "
            "WHERE client_ref = ? AND coalesce(vouched_at, started_at) >= ? AND outcome != 'open' "
            "UNION ALL SELECT client_ref, area, started_at FROM fleet_sessions "
            "WHERE client_ref = ? AND started_at >= ?",
            (client_ref, rough, client_ref, rough))
        found = [Treatment(ref, area, datetime.fromisoformat(started))
                 for ref, area, started in rows]
        return tuple(sorted((t for t in found if t.started_at >= since),
                            key=lambda t: t.started_at, reverse=True))

    def similar_treatments(self, client_ref: str, since: datetime) -> tuple[Treatment, ...]:
        """The latest session (per reference and area) of every OTHER reference that looks
        like this one (rules.ref_likeness) treated since `since`, here and on the clinic's
        other docks. It reads the course window's sessions through the day index: asked once
        when a client is named, not at every decision."""
        ref = canonical_client_ref(client_ref)
        likeness = ref_likeness(ref)
        first_day = (since - timedelta(days=1)).date().isoformat()
        rows = self._read(
            "SELECT client_ref, area, max(started_at) FROM sessions WHERE day >= ? "
            "AND outcome != 'open' AND client_ref != '' AND client_ref != ? GROUP BY client_ref, area "
            "UNION ALL SELECT client_ref, area, max(started_at) FROM fleet_sessions WHERE day >= ? "
            "AND client_ref != '' AND client_ref != ? GROUP BY client_ref, area",
            (first_day, ref, first_day, ref))
        return tuple(Treatment(other, area, datetime.fromisoformat(started))
                     for other, area, started in rows
                     if ref_likeness(other) == likeness and datetime.fromisoformat(started) >= since)

    def history(self, reading: PenReading | None, client_ref: str | None, now: datetime,
                window_days: int) -> History:
        """What the rules need for one decision: the pen, the cartridge, the client."""
        pen = self.pen(reading.pen_serial) if reading else None
        used = self.cartridge_used(reading.cartridge_serial) if reading else False
        treatments = (self.treatments(client_ref, now - timedelta(days=window_days))
                      if client_ref else ())
        return History(pen=pen, cartridge_used_before=used, treatments=treatments)
