"""Simulated cartridge chips, and the demo maker that signs the genuine ones.

Only the simulated pen (appliance/hardware/sim.py) uses this: a real chip keeps its key
inside; a simulated one keeps it in the simulated pen's state file. The demo maker's
private key is generated into the demo's data folder at first start (never a key in the
repository) and its public key is put in the demo's trusted maker folder, so the demo
dock trusts its own simulated cartridges and nothing else.
"""
from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.core.digest import sha256
from appliance.hardware import chipauth
from appliance.hardware.makers import public_pem

DEFAULT_USES = 16  # answers a new cartridge gives: docks and restarts before and after its session
DEMO_MAKER = "demo-maker"
MAKER_KEY_FILE = "sim-maker-key.pem"  # in the demo's data folder; the private half
MAKERS_FOLDER = "makers"  # in the demo's data folder; the trusted public keys


def _private_key(scalar: int) -> ec.EllipticCurvePrivateKey:
    return ec.derive_private_key(scalar % (chipauth.P256_ORDER - 1) + 1, ec.SECP256R1())


def _scalar_hex(key: ec.EllipticCurvePrivateKey) -> str:
    return f"{key.private_numbers().private_value:064x}"


def _load_maker_key(key_file: Path) -> ec.EllipticCurvePrivateKey | None:
    """The demo maker key, or None when there is none (or only a broken one: a new demo
    maker then signs the cartridges fitted from now on)."""
    try:
        key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    except FileNotFoundError:
        return None
    except ValueError:
        return None
    return key if isinstance(key, ec.EllipticCurvePrivateKey) else None


def _write_durably(path: Path, data: bytes) -> None:
    """Owner-only, whole or not at all, on the disk before it counts (power cuts)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


class SimChips:
    """Makes simulated chips (plain dicts, kept in the pen's JSON state) and answers for them.

    A genuine chip of serial S always has the same key (derived from the maker key), as
    the one physical cartridge S would: refitting S brings back its chip."""

    def __init__(self, maker_key: ec.EllipticCurvePrivateKey | None = None):
        self.maker_key = maker_key or ec.generate_private_key(ec.SECP256R1())
        raw = self.maker_key.private_numbers().private_value.to_bytes(32, "big")
        self._seed = sha256(b"pen-dock simulated chips" + raw)

    @classmethod
    def in_folder(cls, data: Path) -> "SimChips":
        """The demo maker of this data folder: made at first start, then reused; its public
        key is (re)written into DATA/makers/ so the demo dock trusts it."""
        Path(data).mkdir(parents=True, exist_ok=True)
        key_file = Path(data) / MAKER_KEY_FILE
        key = _load_maker_key(key_file)
        if key is None:
            key = ec.generate_private_key(ec.SECP256R1())
            _write_durably(key_file, key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption()))
        chips = cls(key)
        makers = Path(data) / MAKERS_FOLDER
        makers.mkdir(exist_ok=True)
        public = makers / f"{DEMO_MAKER}.pem"
        if not public.exists() or public.read_bytes() != chips.maker_public_pem():
            _write_durably(public, chips.maker_public_pem())
            os.chmod(public, 0o644)
        return chips

    def maker_public_pem(self) -> bytes:
        return public_pem(self.maker_key.public_key())

    # -- chips -------------------------------------------------------------------------
    def genuine(self, serial: int, uses: int = DEFAULT_USES, counter: int | None = None) -> dict:
        """Cartridge `serial` as its maker made it."""
        digest = sha256(self._seed + serial.to_bytes(4, "big"))
        chip_key = _private_key(int.from_bytes(digest, "big"))
        return self._chip("genuine", chip_key, self.certificate(serial, uses, chip_key.public_key()),
                          uses if counter is None else counter)

    def forged(self, serial: int, uses: int = DEFAULT_USES) -> dict:
        """A chip whose certificate a forger signed with a key no dock trusts."""
        forger = SimChips()
        chip_key = ec.generate_private_key(ec.SECP256R1())
        return self._chip("forged", chip_key, forger.certificate(serial, uses, chip_key.public_key()), uses)

    def clone_of(self, serial: int) -> dict:
        """Genuine cartridge `serial`'s certificate copied onto another chip (the key inside
        the genuine chip cannot be copied)."""
        original = self.genuine(serial)
        chip_key = ec.generate_private_key(ec.SECP256R1())
        return self._chip("clone", chip_key, bytes.fromhex(original["certificate"]), original["counter"])

    def certificate(self, serial: int, uses: int, chip_public: ec.EllipticCurvePublicKey) -> bytes:
        cert = chipauth.Certificate(
            curve=chipauth.P256, maker_key_id=chipauth.key_id(self.maker_key.public_key()),
            cartridge_id=serial, uses=uses, chip_public_key=chipauth.public_point(chip_public))
        signature = chipauth.sign(self.maker_key, chipauth.certificate_message(cert.signed_part()))
        return chipauth.Certificate(**{**cert.__dict__, "maker_signature": signature}).to_bytes()

    @staticmethod
    def _chip(kind: str, key: ec.EllipticCurvePrivateKey, certificate: bytes, counter: int) -> dict:
        return {"kind": kind, "key": _scalar_hex(key), "certificate": certificate.hex(), "counter": counter}


def answer(chip: dict, challenge: bytes) -> bytes:
    """What the chip clocks out for a challenge frame: it signs its counter, then counts one
    use down (a chip at zero signs zero: no uses left). Mutates chip["counter"]."""
    try:
        nonce, dock_id = chipauth.decode_challenge(challenge)
    except chipauth.AnswerError:
        return chipauth.encode_answer(b"\0" * chipauth.CERTIFICATE_LENGTH, 0, b"\0" * 64, "chip_error")
    certificate = bytes.fromhex(chip["certificate"])
    cartridge_id = chipauth.Certificate.from_bytes(certificate).cartridge_id
    counter = max(0, int(chip["counter"]))
    key = ec.derive_private_key(int(chip["key"], 16), ec.SECP256R1())
    signature = chipauth.sign(key, chipauth.answer_message(nonce, dock_id, cartridge_id, counter))
    chip["counter"] = max(0, counter - 1)
    return chipauth.encode_answer(certificate, counter, signature)


class PenChipSide:
    """The simulated pen's half of the exchange: it takes the challenge after
    CHALLENGE_COMMAND, has the fitted chip answer it, and clocks the answer out after
    ANSWER_COMMAND. A pen state with `chip_link` false stays silent, as a pen from before
    the exchange does (the dock then reads a blank answer)."""

    _CHALLENGE_BITS = 8 * (1 + chipauth.CHALLENGE_LENGTH)

    def __init__(self) -> None:
        self.command: int | None = None
        self.pending = b""

    def on_bit(self, device, state) -> None:
        """Called by the simulated pen's SPI slave for every bit while selected."""
        bit = device.rx_bit
        if bit == 8:
            self.command = device.rx_word()
            if self.command == chipauth.ANSWER_COMMAND and state.chip_link:
                for byte in self.pending:
                    device.tx_word(byte)
        elif bit == self._CHALLENGE_BITS and self.command == chipauth.CHALLENGE_COMMAND and state.chip_link:
            bits = device.rx_buf[8:bit]
            challenge = bytes(int("".join(str(int(b)) for b in bits[i:i + 8]), 2)
                              for i in range(0, len(bits), 8))
            self.pending = self.respond(state, challenge)

    @staticmethod
    def respond(state, challenge: bytes) -> bytes:
        chip = state.chip
        if not state.cartridge_serial or not chip:
            return chipauth.encode_answer(b"\0" * chipauth.CERTIFICATE_LENGTH, 0, b"\0" * 64, "chip_error")
        reply = answer(chip, challenge)
        if chip.get("kind") == "genuine":
            counters = state.chip_counters
            counters.pop(str(state.cartridge_serial), None)
            counters[str(state.cartridge_serial)] = chip["counter"]
            while len(counters) > COUNTERS_KEPT:
                counters.pop(next(iter(counters)))
        return reply


COUNTERS_KEPT = 256  # genuine chips whose counters the simulated pen remembers for a refit
