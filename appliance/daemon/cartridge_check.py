"""The dock's side of cartridge authentication: challenge the fitted cartridge's chip once
per fitting, keep the verdict for the rules, record the counter.

Once per fitting, because every answer costs the chip one of its uses: the dock asks when
it first reads a cartridge (a new serial, or the pen docked again), not on every poll.
The nonce is fresh randomness from the OS every time (os.urandom, what secrets.token_bytes
returns, without the hmac and OpenSSL that `secrets` loads: appliance/core/digest.py);
the dock id is the record's own.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from appliance.core.model import CartridgeAuth, PenReading
from appliance.hardware import chipauth
from appliance.hardware.makers import load_makers

log = logging.getLogger("pendock.cartridge")


@dataclass(frozen=True)
class Checked:
    """The verdict on the chip of one fitted cartridge, and what the record knew before."""

    pen_serial: int
    cartridge_serial: int
    auth: CartridgeAuth
    floor: int | None  # the lowest counter recorded for this id BEFORE this answer
    recorded: bool = False  # the counter is in the record
    audited: bool = False  # the verdict is in an audit entry


class CartridgeCheck:
    def __init__(self, pen, store, makers_dir: str | Path | None,
                 nonce: Callable[[int], bytes] = os.urandom):
        self.pen = pen
        self.store = store
        self.trusted, self.problems = load_makers(Path(makers_dir) if makers_dir else None)
        for problem in self.problems:
            log.warning("cartridge makers: %s", problem)
        self._nonce = nonce
        self._dock_id: bytes | None = None
        self.checked: Checked | None = None

    def summary(self) -> dict:
        """For the audit entry at start: whom the dock trusts, and what it left out."""
        return {"trusted": sorted(m.name for m in self.trusted.values()), "left_out": self.problems}

    def forget(self) -> None:
        """The pen left the cradle: whatever comes back is asked again."""
        self.checked = None

    def check(self, reading: PenReading) -> None:
        """Ask the chip if this cartridge on this pen has not been asked since it was fitted.
        A StorageError (the record cannot be read) reaches the caller, which holds the pen."""
        if reading.cartridge_serial == 0:
            self.checked = None
            return
        key = (reading.pen_serial, reading.cartridge_serial)
        if self.checked is not None and (self.checked.pen_serial, self.checked.cartridge_serial) == key:
            return
        if self._dock_id is None:
            self._dock_id = self.store.chip_dock_id()
        nonce = self._nonce(chipauth.SPEC.nonce_length)
        try:
            answer = self.pen.challenge_chip(chipauth.encode_challenge(nonce, self._dock_id))
            auth = chipauth.verify(answer, nonce, self._dock_id, self.trusted)
        except Exception as error:  # noqa: BLE001 - a link that fails proves nothing: held
            auth = CartridgeAuth("unauthentic", reason=f"the chip exchange failed: {error}")
        floor = self.store.chip_counter_floor(auth.cartridge_id) if auth.authenticated else None
        self.checked = Checked(reading.pen_serial, reading.cartridge_serial, auth, floor)
        if auth.verdict == "unauthentic":
            log.warning("cartridge %s: %s (%s)", reading.cartridge_serial, auth.verdict, auth.reason)

    def auth_for(self, reading: PenReading | None) -> CartridgeAuth | None:
        """The verdict on the cartridge in this reading, if its chip was asked."""
        checked = self.checked
        if reading is None or checked is None:
            return None
        if (checked.pen_serial, checked.cartridge_serial) != (reading.pen_serial, reading.cartridge_serial):
            return None
        return checked.auth

    def floor_for(self, reading: PenReading | None) -> int | None:
        return self.checked.floor if self.auth_for(reading) is not None else None  # type: ignore[union-attr]

    def needs_recording(self) -> bool:
        checked = self.checked
        return checked is not None and checked.auth.authenticated and not checked.recorded

    def record(self) -> None:
        """Inside the dock's decision transaction: the authentic answer's counter. The
        caller calls `committed()` once that transaction has committed."""
        checked = self.checked
        if checked is not None and checked.auth.authenticated and not checked.recorded:
            self.store.record_chip_counter(checked.auth.cartridge_id, checked.auth.counter)

    def committed(self, *, counter: bool, audited: bool) -> None:
        """The decision's transaction committed: with the counter, with an audit entry."""
        checked = self.checked
        if checked is not None:
            self.checked = replace(checked, recorded=checked.recorded or (counter and checked.auth.authenticated),
                                   audited=checked.audited or audited)

    def audit_detail(self, reading: PenReading | None) -> dict:
        """The verdict's part of the first lock/release audit entry after each check (once:
        the entries are kept for years, P6)."""
        auth = self.auth_for(reading)
        if auth is None or self.checked is None or self.checked.audited:
            return {}
        detail = {"chip": auth.verdict, "chip_counter": auth.counter}
        if auth.verdict == "unauthentic":
            detail["chip_reason"] = auth.reason
        return {key: value for key, value in detail.items() if value is not None}
