"""What the record remembers of cartridge chips: the lowest use counter each one showed,
and the dock's own id that its challenges carry (hw/cartridge_auth.toml).

A mixin of `Store` (store.py). A chip's counter only goes down, so the lowest counter a
cartridge id ever showed this dock is the one fact that unmasks a chip whose counter
was reset, or a second chip answering for the same id.
"""
from __future__ import annotations

import json

DOCK_ID_KEY = "cartridge_auth_dock_id"  # written once by migration 7 (cartridge_chips), random


class ChipsMixin:
    def chip_dock_id(self) -> bytes:
        """The 16 random bytes that name this dock in every challenge."""
        rows = self._read("SELECT value FROM state WHERE key = ?", (DOCK_ID_KEY,))
        return bytes.fromhex(json.loads(rows[0][0]))

    def chip_counter_floor(self, cartridge_id: int) -> int | None:
        """The lowest counter this cartridge id's chip showed this dock; None: never seen."""
        rows = self._read("SELECT lowest_counter FROM cartridge_chips WHERE cartridge_id = ?",
                          (cartridge_id,))
        return rows[0][0] if rows else None

    def record_chip_counter(self, cartridge_id: int, counter: int) -> None:
        """Remember an authentic answer's counter (the lowest one stays)."""
        with self.transaction(f"cartridge {cartridge_id}'s chip counter"):
            self._conn.execute(
                "INSERT INTO cartridge_chips (cartridge_id, lowest_counter) VALUES (?, ?) "
                "ON CONFLICT(cartridge_id) DO UPDATE SET "
                "lowest_counter = min(lowest_counter, excluded.lowest_counter)",
                (cartridge_id, counter))
