"""The session-open transaction of frame v2: the dock zeroes the pen's session registers.

The pen's deepest depth is a register "since the session opened". Only the dock knows
when a session opens, so the dock tells the pen, with a tag the pen then reports in every
frame: a close reading under another tag (a stale register, a swapped or power-cycled
pen, a version-1 pen) is recorded as unmeasured, never trusted. The bytes are defined in
hw/pen_frame.toml's [session_open]; this module builds them (dock side) and parses them
(the pen's side, for the simulated pen), both pure.
"""
from __future__ import annotations

import random
import tomllib
from dataclasses import dataclass
from pathlib import Path

from appliance.core.resources import hw_file
from appliance.hardware import frame

__all__ = ["SessionOpen", "load_session_open", "SESSION_OPEN", "request", "parse", "new_tag"]


@dataclass(frozen=True)
class SessionOpen:
    """[session_open] of hw/pen_frame.toml."""

    command: int
    tag_bytes: int

    @property
    def length(self) -> int:
        """Command byte, tag, CRC-16."""
        return 1 + self.tag_bytes + 2


def load_session_open(path: Path | None = None) -> SessionOpen:
    source = Path(path) if path is not None else hw_file("pen_frame.toml")
    with open(source, "rb") as file:
        table = tomllib.load(file)["session_open"]
    spec = SessionOpen(command=int(table["command"]), tag_bytes=int(table["tag_bytes"]))
    if spec.command == frame.READ_COMMAND or not 0 <= spec.command <= 255 or spec.tag_bytes not in (1, 2, 4):
        raise ValueError(f"{source}: [session_open] needs a command byte other than the read command "
                         f"and tag_bytes 1, 2 or 4")
    return spec


SESSION_OPEN = load_session_open()
_TAG_LIMIT = 1 << (8 * SESSION_OPEN.tag_bytes)
# os.urandom, as secrets.randbelow uses, without the hmac and OpenSSL `secrets` loads (P4).
_OS_RANDOM = random.SystemRandom()


def request(tag: int) -> bytes:
    """What the dock clocks out to open a session under `tag` (1 .. 2**32-1)."""
    if not 0 < tag < _TAG_LIMIT:
        raise ValueError(f"a session tag is 1..{_TAG_LIMIT - 1} (0 means none), got {tag}")
    body = bytes([SESSION_OPEN.command]) + tag.to_bytes(SESSION_OPEN.tag_bytes, "big")
    return body + frame.crc16(body).to_bytes(2, "big")


def parse(received: bytes) -> int | None:
    """The pen's side: the tag of a well-formed session-open, else None (ignore it)."""
    data = bytes(received)
    if len(data) != SESSION_OPEN.length or data[0] != SESSION_OPEN.command:
        return None
    body, crc = data[:-2], int.from_bytes(data[-2:], "big")
    tag = int.from_bytes(body[1:], "big")
    return tag if crc == frame.crc16(body) and tag else None


def new_tag() -> int:
    """A fresh random tag, never 0: a stale register can match it only by a 1 in 4e9 chance."""
    return _OS_RANDOM.randrange(1, _TAG_LIMIT)
