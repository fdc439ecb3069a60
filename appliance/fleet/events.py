"""The event envelope every dock signs and every peer checks, and nothing else.

Pure: no I/O, no clock. One event is a canonical JSON object
`{"v", "dock", "seq", "kind", "at", "payload", "prev"}`; its `hash` is SHA-256 of those
canonical bytes and `sig` an Ed25519 signature of the same bytes by the dock's key. Bytes
from the network are untrusted: `parse` checks size, shape and types before anything is
believed, and `verify` checks the signature against the clinic's key ring. A message that
fails is a `Rejected` with a short category (what the link counts), never an exception
that escapes.
"""
from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.core.digest import sha256_hex

VERSION = 1
# What a dock records and shares (session_opened.. are the audit actions of the record).
KINDS = frozenset({
    "session_opened", "session_closed", "session_interrupted", "pen_registered",
    "pen_counters", "rebaseline", "service_reset", "override",
})
MAX_EVENT_BYTES = 8 * 1024  # one event; a session's facts are a few hundred bytes
MAX_MESSAGE_BYTES = 512 * 1024  # one MQTT message (a catch-up batch of events)
MAX_SEQ = 2**53  # JSON-safe integers only
GENESIS = "0" * 64  # `prev` of a dock's first event
DOCK_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_FIELDS = frozenset({"v", "dock", "seq", "kind", "at", "payload", "prev", "hash", "sig"})


# What `pendock fleet` counts dropped messages under (Rejected's categories, and a full inbox).
DROP_CATEGORIES = ("oversized", "malformed", "unsigned", "forged", "equivocation", "overflow")


class Rejected(ValueError):
    """An incoming message is not believed. `category` is what the link counts it under:
    oversized, malformed, unsigned, forged (bad signature or unknown dock)."""

    def __init__(self, category: str, why: str):
        super().__init__(f"{category}: {why}")
        self.category = category


@dataclass(frozen=True)
class Event:
    dock: str
    seq: int
    kind: str
    at: str  # ISO 8601 with offset, the dock's wall clock when it happened
    payload: Mapping[str, Any]
    prev: str  # hash of the dock's previous event (GENESIS for the first)
    hash: str = ""
    sig: str = ""  # base64 of the 64-byte Ed25519 signature

    def body(self) -> bytes:
        """The canonical bytes that are hashed and signed."""
        return canonical({"v": VERSION, "dock": self.dock, "seq": self.seq, "kind": self.kind,
                          "at": self.at, "payload": dict(self.payload), "prev": self.prev})

    def wire(self) -> dict[str, Any]:
        """The event as it travels: its body plus hash and signature."""
        return {"v": VERSION, "dock": self.dock, "seq": self.seq, "kind": self.kind,
                "at": self.at, "payload": dict(self.payload), "prev": self.prev,
                "hash": self.hash, "sig": self.sig}

    def encode(self) -> bytes:
        return canonical(self.wire())


def canonical(value: Any) -> bytes:
    """One byte string for one value: sorted keys, no spaces, ASCII."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False).encode("ascii")


def sign(event: Event, key: Ed25519PrivateKey) -> Event:
    """The event with its hash and signature filled in."""
    body = event.body()
    return Event(event.dock, event.seq, event.kind, event.at, event.payload, event.prev,
                 hash=sha256_hex(body),
                 sig=base64.b64encode(key.sign(body)).decode("ascii"))


def verify(event: Event, keyring: Mapping[str, Ed25519PublicKey]) -> Event:
    """The event if its dock is in the clinic's key ring and signed exactly these bytes."""
    if not event.sig:
        raise Rejected("unsigned", f"event {event.dock}#{event.seq} carries no signature")
    key = keyring.get(event.dock)
    if key is None:
        raise Rejected("forged", f"dock {event.dock!r} is not in this clinic's key ring")
    body = event.body()
    if sha256_hex(body) != event.hash:
        raise Rejected("forged", f"event {event.dock}#{event.seq}: hash does not match its body")
    try:
        signature = base64.b64decode(event.sig, validate=True)
        key.verify(signature, body)
    except (InvalidSignature, ValueError):
        raise Rejected("forged", f"event {event.dock}#{event.seq}: bad signature") from None
    return event


def parse_event(value: Any) -> Event:
    """An Event from an already-decoded JSON value, every field checked."""
    if not isinstance(value, dict):
        raise Rejected("malformed", "an event must be a JSON object")
    if value.get("sig") in ("", None) and set(value) | {"sig"} == _FIELDS:
        raise Rejected("unsigned", "the event carries no signature")
    if set(value) != _FIELDS:
        raise Rejected("malformed", f"unexpected or missing fields: {sorted(set(value) ^ _FIELDS)}")
    if value["v"] != VERSION:
        raise Rejected("malformed", f"version {value['v']!r} is not {VERSION}")
    dock, seq, kind, at = value["dock"], value["seq"], value["kind"], value["at"]
    if not isinstance(dock, str) or not DOCK_ID.fullmatch(dock):
        raise Rejected("malformed", "dock id is not a valid dock id")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq < MAX_SEQ:
        raise Rejected("malformed", "seq must be a positive integer")
    if kind not in KINDS:
        raise Rejected("malformed", f"unknown kind {str(kind)[:40]!r}")
    if not isinstance(at, str) or len(at) > 40:
        raise Rejected("malformed", "at must be an ISO 8601 time")
    try:
        moment = datetime.fromisoformat(at)
    except ValueError:
        raise Rejected("malformed", "at must be an ISO 8601 time") from None
    if moment.utcoffset() is None:
        raise Rejected("malformed", "at must carry its UTC offset")
    if not isinstance(value["payload"], dict):
        raise Rejected("malformed", "payload must be a JSON object")
    for name in ("prev", "hash"):
        if not isinstance(value[name], str) or not _HEX64.fullmatch(value[name]):
            raise Rejected("malformed", f"{name} must be 64 hex digits")
    if not isinstance(value["sig"], str) or len(value["sig"]) != 88:
        raise Rejected("unsigned" if not value["sig"] else "malformed", "sig must be base64 of 64 bytes")
    _check_payload(kind, value["payload"])
    return Event(dock, seq, kind, at, value["payload"], value["prev"], value["hash"], value["sig"])


# The payload keys each kind must carry, with their types (extra keys are allowed and kept).
_PAYLOAD: dict[str, dict[str, tuple[type, ...]]] = {
    "session_opened": {"session": (int,), "pen_serial": (int,), "cartridge_serial": (int,)},
    "session_closed": {"session": (int,), "outcome": (str,)},
    "session_interrupted": {"session": (int,)},
    "pen_registered": {"serial": (int,), "strokes": (int,), "motor_seconds": (int,)},
    "pen_counters": {"serial": (int,), "strokes": (int,), "motor_seconds": (int,)},
    "rebaseline": {"serial": (int,), "strokes": (int,), "motor_seconds": (int,)},
    "service_reset": {"serial": (int,), "motor_seconds": (int,)},
    "override": {"code": (str,)},
}
_OPTIONAL_TEXT = ("client_ref", "area")


def _check_payload(kind: str, payload: dict[str, Any]) -> None:
    for key, types in _PAYLOAD[kind].items():
        value = payload.get(key)
        if isinstance(value, bool) or not isinstance(value, types):
            raise Rejected("malformed", f"{kind}: payload {key} missing or of the wrong type")
        if isinstance(value, int) and not 0 <= value < MAX_SEQ:
            raise Rejected("malformed", f"{kind}: payload {key} out of range")
    for key in _OPTIONAL_TEXT:
        if key in payload and payload[key] is not None and (
                not isinstance(payload[key], str) or len(payload[key]) > 64):
            raise Rejected("malformed", f"{kind}: payload {key} must be short text")


def decode_json(raw: bytes, limit: int) -> Any:
    """Untrusted bytes to a JSON value, refusing anything over `limit` bytes."""
    if len(raw) > limit:
        raise Rejected("oversized", f"{len(raw)} bytes (the limit is {limit})")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Rejected("malformed", "not UTF-8 JSON") from None


def decode_event(raw: bytes) -> Event:
    """One event message from the network: size, shape, then types (not yet the signature)."""
    return parse_event(decode_json(raw, MAX_EVENT_BYTES))


def decode_batch(raw: bytes) -> list[Any]:
    """A catch-up batch: `{"events": [...]}`; each entry is parsed on its own later."""
    value = decode_json(raw, MAX_MESSAGE_BYTES)
    if not isinstance(value, dict) or not isinstance(value.get("events"), list):
        raise Rejected("malformed", "a batch must be {\"events\": [...]}")
    return value["events"]


def encode_batch(events: list[Event]) -> bytes:
    return canonical({"events": [e.wire() for e in events]})


# --- small signed notes: presence and catch-up requests ---------------------------------


def sign_note(dock: str, note: dict[str, Any], key: Ed25519PrivateKey) -> bytes:
    """A presence or catch-up message: `{"dock", "note", "sig"}` signed over dock+note."""
    body = canonical({"dock": dock, "note": note})
    return canonical({"dock": dock, "note": note,
                      "sig": base64.b64encode(key.sign(body)).decode("ascii")})


def open_note(raw: bytes, keyring: Mapping[str, Ed25519PublicKey], limit: int = MAX_EVENT_BYTES
              ) -> tuple[str, dict[str, Any]]:
    """(dock, note) of a signed note, or Rejected."""
    value = decode_json(raw, limit)
    if not isinstance(value, dict) or set(value) - {"dock", "note", "sig"}:
        raise Rejected("malformed", "a note must be {dock, note, sig}")
    dock, note, sig = value.get("dock"), value.get("note"), value.get("sig")
    if not isinstance(dock, str) or not DOCK_ID.fullmatch(dock) or not isinstance(note, dict):
        raise Rejected("malformed", "a note must carry a dock id and an object")
    if not sig:
        raise Rejected("unsigned", f"note from {dock} carries no signature")
    key = keyring.get(dock)
    if key is None:
        raise Rejected("forged", f"dock {dock!r} is not in this clinic's key ring")
    try:
        key.verify(base64.b64decode(str(sig), validate=True), canonical({"dock": dock, "note": note}))
    except (InvalidSignature, ValueError):
        raise Rejected("forged", f"note from {dock}: bad signature") from None
    return dock, note


def seq_map(value: Any) -> dict[str, int]:
    """A {dock: seq} map from a note, checked (high-water marks, catch-up requests)."""
    if not isinstance(value, dict) or len(value) > 256:
        raise Rejected("malformed", "expected a map of dock id to sequence")
    out: dict[str, int] = {}
    for dock, seq in value.items():
        if not DOCK_ID.fullmatch(str(dock)) or isinstance(seq, bool) or not isinstance(seq, int) \
                or not 0 <= seq < MAX_SEQ:
            raise Rejected("malformed", "expected a map of dock id to sequence")
        out[dock] = seq
    return out
