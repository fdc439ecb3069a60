"""How a signed fleet event is kept on disk: its 64 raw signature bytes and the exact
signed body, deflated against a fixed dictionary of the envelope's words. Its hash is not
kept: it is the SHA-256 of that body, by definition, recomputed when needed.

WHY: kept as the JSON it travels in, an event cost about 600 bytes (hex hash twice, base64
signature, every key spelled out), three a session on every dock of the clinic: more
than P6's whole budget. The signed bytes are kept exactly (inflated, they are the bytes
the signature covers), so catch-up and relay still serve what the dock signed. Pure; the
dictionary is part of the stored format and must never change (a new one needs a new
schema migration).
"""
from __future__ import annotations

import base64
import json
import zlib
from typing import Any

from appliance.core.digest import sha256_hex

# Words of the envelope and payloads (appliance/fleet/events.py, ledger.py), the most
# frequent last (deflate reaches the end of the dictionary with the shortest distances).
ZDICT = (
    b'"service_motor_seconds":"firmware":"reason":"code":"override","rebaseline",'
    b'"service_reset","pen_registered","session_interrupted","outcome":"interrupted",'
    b'"outcome":"aborted","forced":true,"warnings":["'
    b'{"at":"2026-01-01T00:00:00.000000+00:00","dock":"room-","kind":"session_closed",'
    b'"payload":{"max_depth_mm":1.0,"needling_seconds":60,"outcome":"completed",'
    b'"session":1,"strokes":1,"warnings":[]},"prev":"0000000000000000","seq":1,"v":1}'
    b'{"at":"2026-01-01T00:00:00.000000+00:00","dock":"room-","kind":"pen_counters",'
    b'"payload":{"motor_seconds":1,"serial":1,"strokes":1},"prev":"","seq":1,"v":1}'
    b'{"at":"2026-01-01T00:00:00.000000+00:00","dock":"room-","kind":"session_opened",'
    b'"payload":{"area":"face","cartridge_serial":1,"client_ref":"","forced":false,'
    b'"overrides":[],"pen_serial":1,"session":1,"warnings":[]},"prev":"'
)
_SIGNED = ("v", "dock", "seq", "kind", "at", "payload", "prev")


def canonical(value: Any) -> bytes:
    """The envelope's canonical JSON (the same rule as appliance/fleet/events.canonical)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


# memLevel 2, not 9: an event is a few hundred bytes, which a small hash table compresses
# to the same size, and zlib sets up a memLevel 9 state (over 256 KiB) in 50 µs: a cost
# the dock's decision paid for each pen-counters event (P1, P8).
_MEM_LEVEL = 2


def deflate(body: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, _MEM_LEVEL, zlib.Z_DEFAULT_STRATEGY, ZDICT)
    return packer.compress(body) + packer.flush()


def inflate(blob: bytes) -> bytes:
    unpacker = zlib.decompressobj(-15, ZDICT)
    return unpacker.decompress(bytes(blob)) + unpacker.flush()


def pack_wire(wire: dict[str, Any]) -> tuple[bytes, bytes]:
    """(sig, deflated signed body) of an event as it travels (base64 sig)."""
    body = canonical({name: wire[name] for name in _SIGNED})
    return base64.b64decode(wire["sig"]), deflate(body)


def body_hash(blob: bytes) -> str:
    """The event's hash (hex): SHA-256 of its signed body."""
    return sha256_hex(inflate(blob))


def unpack_wire(sig: bytes, blob: bytes) -> bytes:
    """The event as it travels, from its stored row: the same bytes it was received as."""
    body = inflate(blob)
    value = json.loads(body)
    value["hash"] = sha256_hex(body)
    value["sig"] = base64.b64encode(bytes(sig)).decode("ascii")
    return canonical(value)


def signed_fields(blob: bytes) -> dict[str, Any]:
    """The signed body's fields (v, dock, seq, kind, at, payload, prev)."""
    value: dict[str, Any] = json.loads(inflate(blob))
    return value
