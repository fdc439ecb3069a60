"""Cartridge authentication: the codec of hw/cartridge_auth.toml and the dock's verdict.

The cartridge's chip proves it is genuine by signing the dock's fresh nonce and id with a
key only it holds, under a certificate from a maker the dock trusts. This module turns
bytes into a `CartridgeAuth` verdict and never raises on what came over the link: a
pen, a chip or a forger can send anything, and anything that is not a genuine answer to
this challenge is "unauthentic" (the pen stays held). Pure apart from the ECDSA of the
`cryptography` package: no I/O, no clock, no randomness (the caller brings the nonce).
"""
from __future__ import annotations

import struct
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from appliance.core.digest import sha256
from appliance.core.model import CartridgeAuth
from appliance.core.resources import hw_file
from appliance.hardware.frame import crc16

_TYPES = {"u8": ("B", 1), "u16": ("H", 2), "u32": ("I", 4)}
_ORDERS = {"big": ">", "little": "<"}
SIGNATURE_LENGTH = 64  # r || s, 32 bytes each
P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


class AnswerError(ValueError):
    """The answer frame is not one this dock can read (length, CRC, magic, version)."""


class AnswerCrcError(AnswerError):
    """The answer was damaged on the link: worth reading again."""


@dataclass(frozen=True)
class Block:
    """One fixed layout of hw/cartridge_auth.toml: its fields, in order, as a struct."""

    name: str
    length: int
    fields: tuple[tuple[str, int, int, str], ...]  # (name, offset, size, type)
    struct: struct.Struct

    def unpack(self, data: bytes) -> dict[str, Any]:
        return dict(zip((f[0] for f in self.fields), self.struct.unpack(data), strict=True))

    def pack(self, **values: Any) -> bytes:
        return self.struct.pack(*(values[f[0]] for f in self.fields))

    def offset(self, name: str) -> int:
        return next(f[1] for f in self.fields if f[0] == name)

    def size(self, name: str) -> int:
        return next(f[2] for f in self.fields if f[0] == name)


@dataclass(frozen=True)
class Spec:
    """hw/cartridge_auth.toml, checked."""

    version: int
    nonce_length: int
    dock_id_length: int
    busy_polls: int
    busy_wait_s: float
    challenge_command: int
    answer_command: int
    answer_dummy: int
    response_offset: int
    challenge_magic: bytes
    answer_magic: bytes
    status: Mapping[str, int]
    certificate_version: int
    curves: Mapping[str, int]
    certificate_tag: bytes
    answer_tag: bytes
    challenge: Block
    answer: Block
    certificate: Block


def load_spec(path: Path | None = None) -> Spec:
    """Read and check hw/cartridge_auth.toml; a broken file is a ValueError naming it."""
    source = Path(path) if path is not None else hw_file("cartridge_auth.toml")
    try:
        with open(source, "rb") as file:
            doc = tomllib.load(file)
        order = _ORDERS[doc["exchange"]["byte_order"]]
        blocks = {name: _block(name, doc[name], order, source)
                  for name in ("challenge", "answer", "certificate")}
        exchange = doc["exchange"]
        spec = Spec(
            version=exchange["version"], nonce_length=exchange["nonce_length"],
            dock_id_length=exchange["dock_id_length"], busy_polls=exchange["busy_polls"],
            busy_wait_s=exchange["busy_wait_ms"] / 1000,
            challenge_command=doc["challenge_transaction"]["command"],
            answer_command=doc["answer_transaction"]["command"],
            answer_dummy=doc["answer_transaction"]["dummy_value"],
            response_offset=doc["answer_transaction"]["response_offset"],
            challenge_magic=doc["challenge"]["magic"].encode("ascii"),
            answer_magic=doc["answer"]["magic"].encode("ascii"),
            status=dict(doc["answer"]["status"]),
            certificate_version=doc["certificate"]["version"],
            curves=dict(doc["certificate"]["curves"]),
            certificate_tag=doc["signing"]["certificate_tag"].encode("ascii"),
            answer_tag=doc["signing"]["answer_tag"].encode("ascii"),
            **blocks,
        )
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, StopIteration) as error:
        raise ValueError(f"{source}: cannot load the cartridge exchange: {error!r}") from None
    if spec.challenge.offset("crc") != spec.challenge.length - 2 or spec.answer.offset("crc") != spec.answer.length - 2:
        raise ValueError(f"{source}: the challenge and the answer must end in their u16 crc")
    if spec.answer.size("certificate") != spec.certificate.length:
        raise ValueError(f"{source}: the answer's certificate field must be certificate.length bytes")
    return spec


def _block(name: str, doc: dict[str, Any], order: str, source: Path) -> Block:
    fields, codes, position = [], [order], 0
    for entry in doc["field"]:
        kind = entry["type"]
        size = entry["size"] if kind == "bytes" else _TYPES[kind][1]
        if entry["offset"] != position:
            raise ValueError(f"{source}: {name}.{entry['name']} starts at {entry['offset']}, expected {position}")
        fields.append((entry["name"], position, size, kind))
        codes.append(f"{size}s" if kind == "bytes" else _TYPES[kind][0])
        position += size
    if position != doc["length"]:
        raise ValueError(f"{source}: {name} fields cover {position} bytes, but its length is {doc['length']}")
    return Block(name, position, tuple(fields), struct.Struct("".join(codes)))


SPEC = load_spec()
CHALLENGE_LENGTH = SPEC.challenge.length
ANSWER_LENGTH = SPEC.answer.length
CERTIFICATE_LENGTH = SPEC.certificate.length
CHALLENGE_COMMAND = SPEC.challenge_command
ANSWER_COMMAND = SPEC.answer_command
P256 = SPEC.curves["P-256"]
_SIGNED_CERT_LENGTH = SPEC.certificate.offset("maker_signature")


# --- frames -------------------------------------------------------------------------------

def _with_crc(body: bytes) -> bytes:
    return body + crc16(body).to_bytes(2, "big")


def encode_challenge(nonce: bytes, dock_id: bytes) -> bytes:
    """The challenge frame the dock clocks out after CHALLENGE_COMMAND."""
    if len(nonce) != SPEC.nonce_length or len(dock_id) != SPEC.dock_id_length:
        raise ValueError(f"a challenge takes a {SPEC.nonce_length}-byte nonce and a "
                         f"{SPEC.dock_id_length}-byte dock id")
    body = SPEC.challenge.pack(magic=SPEC.challenge_magic, version=SPEC.version, reserved=0,
                               nonce=bytes(nonce), dock_id=bytes(dock_id), crc=0)[:-2]
    return _with_crc(body)


def decode_challenge(data: bytes) -> tuple[bytes, bytes]:
    """(nonce, dock_id) of a challenge frame, as the pen reads it; AnswerError if bad."""
    data = bytes(data)
    if len(data) != CHALLENGE_LENGTH or crc16(data[:-2]) != int.from_bytes(data[-2:], "big"):
        raise AnswerError("the challenge frame is damaged")
    values = SPEC.challenge.unpack(data)
    if values["magic"] != SPEC.challenge_magic or values["version"] != SPEC.version:
        raise AnswerError("not a challenge frame of this version")
    return values["nonce"], values["dock_id"]


def encode_answer(certificate: bytes, counter: int, signature: bytes, status: str = "ready") -> bytes:
    """The answer frame, as the pen clocks it out after ANSWER_COMMAND."""
    body = SPEC.answer.pack(magic=SPEC.answer_magic, version=SPEC.version, status=SPEC.status[status],
                            certificate=bytes(certificate), counter=counter,
                            signature=bytes(signature), crc=0)[:-2]
    return _with_crc(body)


def blank_answer(data: bytes) -> bool:
    """Only 0x00 or only 0xFF: nothing answered (a pen whose link has no chip exchange)."""
    return len(set(data)) <= 1 and (not data or data[0] in (0x00, 0xFF))


def answer_status(data: bytes) -> str:
    """The status of a well-formed answer frame ("ready", "busy", "chip_error")."""
    values = _answer_values(data)
    for name, value in SPEC.status.items():
        if value == values["status"]:
            return name
    raise AnswerError(f"unknown answer status {values['status']}")


def _answer_values(data: bytes) -> dict[str, Any]:
    data = bytes(data)
    if len(data) != ANSWER_LENGTH:
        raise AnswerError(f"the answer is {len(data)} bytes, expected {ANSWER_LENGTH}")
    if crc16(data[:-2]) != int.from_bytes(data[-2:], "big"):
        raise AnswerCrcError("the answer's CRC does not match: damaged on the link")
    values = SPEC.answer.unpack(data)
    if values["magic"] != SPEC.answer_magic:
        raise AnswerError(f"the answer does not start with {SPEC.answer_magic!r}")
    if values["version"] != SPEC.version:
        raise AnswerError(f"answer version {values['version']}; this dock reads version {SPEC.version}")
    return values


# --- certificates and signatures ---------------------------------------------------------

@dataclass(frozen=True)
class Certificate:
    curve: int
    maker_key_id: bytes
    cartridge_id: int
    uses: int
    chip_public_key: bytes
    maker_signature: bytes = b"\0" * SIGNATURE_LENGTH
    version: int = SPEC.certificate_version

    def signed_part(self) -> bytes:
        return self.to_bytes()[:_SIGNED_CERT_LENGTH]

    def to_bytes(self) -> bytes:
        return SPEC.certificate.pack(
            version=self.version, curve=self.curve, maker_key_id=self.maker_key_id,
            cartridge_id=self.cartridge_id, uses=self.uses, chip_public_key=self.chip_public_key,
            maker_signature=self.maker_signature)

    @classmethod
    def from_bytes(cls, data: bytes) -> "Certificate":
        values = SPEC.certificate.unpack(bytes(data))
        return cls(**values)


def public_point(key: ec.EllipticCurvePublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def key_id(key: ec.EllipticCurvePublicKey) -> bytes:
    """Which maker key signed a certificate: the first 8 bytes of SHA-256 of its point."""
    return sha256(public_point(key))[:8]


def certificate_message(signed_part: bytes) -> bytes:
    return SPEC.certificate_tag + signed_part


def answer_message(nonce: bytes, dock_id: bytes, cartridge_id: int, counter: int) -> bytes:
    return SPEC.answer_tag + nonce + dock_id + struct.pack(">IH", cartridge_id, counter)


def sign(private_key: ec.EllipticCurvePrivateKey, message: bytes) -> bytes:
    """ECDSA / SHA-256, as r || s (what a chip or a maker's signing tool produces)."""
    r, s = decode_dss_signature(private_key.sign(message, ec.ECDSA(hashes.SHA256())))
    size = private_key.curve.key_size // 8 + (1 if private_key.curve.key_size % 8 else 0)
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _signature_holds(key: ec.EllipticCurvePublicKey, signature: bytes, message: bytes) -> bool:
    if len(signature) != SIGNATURE_LENGTH:
        return False
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    if not (0 < r < P256_ORDER and 0 < s < P256_ORDER):
        return False
    try:
        key.verify(encode_dss_signature(r, s), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


# --- the verdict ---------------------------------------------------------------------------

@dataclass(frozen=True)
class TrustedMaker:
    name: str
    key: ec.EllipticCurvePublicKey


def trusted_by_id(makers: Mapping[str, ec.EllipticCurvePublicKey]) -> dict[bytes, TrustedMaker]:
    """name -> P-256 public key, as the dock's maker folder gives it, indexed by key id.
    A key of any other curve is left out: it cannot vouch for anything here."""
    return {key_id(key): TrustedMaker(name, key) for name, key in makers.items()
            if isinstance(key, ec.EllipticCurvePublicKey) and isinstance(key.curve, ec.SECP256R1)}


def verify(answer: bytes | None, nonce: bytes, dock_id: bytes,
           trusted: Mapping[bytes, TrustedMaker]) -> CartridgeAuth:
    """The dock's verdict on the chip's answer to (nonce, dock_id). Never raises.

    None or a blank answer: the pen's link has no chip exchange ("unverified"). Every
    other answer is "authentic" only if the certificate's maker is trusted and its
    signature holds, and the chip's key signed exactly this nonce, this dock id, the
    certified cartridge id and a counter above zero. The counter's history (a reset or
    cloned chip) is the rules' business, with the record's lowest counter."""
    if answer is None or blank_answer(answer):
        return CartridgeAuth("unverified", reason="the pen's link does not carry the chip exchange")
    try:
        return _verify(answer, nonce, dock_id, trusted)
    except Exception as error:  # noqa: BLE001 - a forger's bytes must never crash the dock
        return CartridgeAuth("unauthentic", reason=f"the answer could not be read: {error}")


def _verify(answer: bytes, nonce: bytes, dock_id: bytes,
            trusted: Mapping[bytes, TrustedMaker]) -> CartridgeAuth:
    def refuse(reason: str, **known: Any) -> CartridgeAuth:
        return CartridgeAuth("unauthentic", reason=reason, **known)

    try:
        values = _answer_values(answer)
    except AnswerError as error:
        return refuse(str(error))
    if values["status"] != SPEC.status["ready"]:
        return refuse("the pen could not get an answer from the cartridge's chip")
    cert = Certificate.from_bytes(values["certificate"])
    if cert.version != SPEC.certificate_version:
        return refuse(f"certificate version {cert.version} is not one this dock reads")
    if cert.curve != P256:
        return refuse(f"the chip's key is not on curve P-256 (curve id {cert.curve})")
    maker = trusted.get(cert.maker_key_id)
    if maker is None:
        return refuse(f"the certificate's maker (key id {cert.maker_key_id.hex()}) is not trusted by this dock")
    if not _signature_holds(maker.key, cert.maker_signature, certificate_message(cert.signed_part())):
        return refuse(f"the certificate does not carry a valid signature of maker {maker.name}")
    try:
        chip_key = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), cert.chip_public_key)
    except ValueError:
        return refuse("the certificate's chip key is not a point on curve P-256")
    cartridge_id, name = cert.cartridge_id, maker.name
    counter = values["counter"]
    message = answer_message(nonce, dock_id, cartridge_id, counter)
    if not _signature_holds(chip_key, values["signature"], message):
        return refuse("the chip did not sign this dock's challenge with the certified key "
                      "(a copied certificate, a replayed or relayed answer)",
                      cartridge_id=cartridge_id, maker=name)
    if counter < 1 or counter > cert.uses:
        return refuse(f"the chip has no uses left (counter {counter} of {cert.uses})",
                      cartridge_id=cartridge_id, counter=counter, maker=name)
    return CartridgeAuth("authentic", cartridge_id=cartridge_id, counter=counter, maker=name)
