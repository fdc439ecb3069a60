"""The pen link frame codec: bytes from the pen's SPI slave <-> `PenReading`.

Pure: the layout is loaded once, on first use (not at import: a `pendock status` never
needs it), from hw/pen_frame.toml (the one definition of the frame); everything else is
computation on bytes. The decoder is the dock's guard against bad contacts, lifted pens
and unknown pens, so it never trusts a byte before the CRC holds, and every refusal is a
`FrameError` whose message names the field, the offset, what was expected and what came.
"""
from __future__ import annotations

import math
import struct
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from appliance.core.model import FAULTS, PenReading
from appliance.core.resources import hw_file

__all__ = [
    "FRAME_LENGTH", "FRAME_VERSION", "LAYOUTS", "READ_COMMAND", "RESPONSE_OFFSET", "TRANSFER_LENGTH",
    "FrameError", "CrcError", "FrameFormatError", "UnknownVersionError",
    "FieldSpec", "FieldView", "Layout", "load_layout",
    "crc16", "append_crc", "encode", "decode", "describe", "read_request", "frame_from_transfer",
]


class FrameError(ValueError):
    """The bytes from the pen are not a frame this dock accepts; the pen stays held."""


class CrcError(FrameError):
    """The frame was corrupted on the way (bad contact, pen lifted mid-read): retry."""


class FrameFormatError(FrameError):
    """The frame has the wrong shape: length, magic, length byte, fault or padding bits."""


class UnknownVersionError(FrameError):
    """A valid frame of a layout version this dock software does not know."""


# type name in hw/pen_frame.toml -> (struct code, size in bytes)
_TYPES = {"u8": ("B", 1), "u16": ("H", 2), "i16": ("h", 2), "u32": ("I", 4)}
_ORDERS = {"big": ">", "little": "<"}


@dataclass(frozen=True)
class FieldSpec:
    """One field of the frame as hw/pen_frame.toml defines it."""

    name: str
    offset: int
    type: str  # u8, u16, i16, u32 or bytes
    size: int
    unit: str
    scale: float | None
    reading: str | None  # the PenReading attribute it fills, if any
    description: str
    session_register: bool = False  # zeroed by the pen at each session_open (frame v2)

    @property
    def struct_code(self) -> str:
        return f"{self.size}s" if self.type == "bytes" else _TYPES[self.type][0]

    @property
    def raw_range(self) -> range:
        bits = self.size * 8
        if self.type.startswith("i"):
            return range(-(1 << (bits - 1)), 1 << (bits - 1))
        return range(0, 1 << bits)

    def scaled(self, raw: int) -> int | float:
        """Raw integer -> human units, rounded to the scale's own decimals (0.05 -> 2)."""
        if self.scale is None:
            return raw
        exponent = Decimal(str(self.scale)).as_tuple().exponent
        decimals = max(0, -exponent) if isinstance(exponent, int) else 0
        return round(raw * self.scale, decimals)


@dataclass(frozen=True)
class Layout:
    """The whole frame definition: fields, constants, CRC and read transaction."""

    version: int
    length: int
    byte_order: str  # struct prefix, ">" or "<"
    magic: bytes
    payload_length: int
    command: int
    dummy_bytes: int
    dummy_value: int
    response_offset: int
    crc_poly: int
    crc_init: int
    crc_check: int
    fault_bits: dict[str, int]
    fields: tuple[FieldSpec, ...]
    source: Path

    def field(self, name: str) -> FieldSpec:
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(f"no field {name!r} in {self.source}")


@dataclass(frozen=True)
class FieldView:
    """One field of a received frame as the technician's `pendock readout` shows it."""

    name: str
    offset: int
    raw_hex: str  # the bytes as received, e.g. "50 44"
    value: Any  # in human units; None when the bytes are missing
    unit: str
    note: str = ""  # what is wrong with it, or what it means ("stall, chip")


# --- layout loading (once, at import) --------------------------------------------------

_REQUIRED_FIELDS = (
    "magic", "version", "payload_length", "firmware_major", "firmware_minor", "faults", "reserved", "crc",
)


def load_layout(path: Path | None = None) -> Layout:
    """Read and check hw/pen_frame.toml (or `path`); a broken layout is a ValueError naming it."""
    layouts = load_layouts(path)
    return layouts[max(layouts)]


def load_layouts(path: Path | None = None) -> dict[int, Layout]:
    """The current layout and every older one it still reads ([older.N]), by version."""
    import tomllib  # here, not at import: only the daemon and the tests read a layout

    source = Path(path) if path is not None else hw_file("pen_frame.toml")
    try:
        with open(source, "rb") as file:
            doc = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise ValueError(f"{source}: cannot load the pen frame layout: {error}") from None
    try:
        layout = _build_layout(doc, source)
        older = {int(version): _older_layout(layout, int(version), table["lacks"])
                 for version, table in doc.get("older", {}).items()}
    except (KeyError, TypeError) as error:
        raise ValueError(f"{source}: frame layout incomplete or mistyped: {error!r}") from None
    if any(version >= layout.version for version in older):
        raise ValueError(f"{source}: [older.N] must name versions before frame.version {layout.version}")
    return {layout.version: layout, **older}


def _older_layout(current: Layout, version: int, lacks: list[str]) -> Layout:
    """An older version's layout: `current` with the fields it lacks folded into `reserved`
    (they were zero padding then). They must sit right before `reserved`, in one run."""
    lacked = sorted((current.field(name) for name in lacks), key=lambda spec: spec.offset)
    reserved = current.field("reserved")
    end = reserved.offset
    for spec in reversed(lacked):
        if spec.offset + spec.size != end:
            raise ValueError(f"{current.source}: [older.{version}] lacks {spec.name}, which does not sit "
                             f"right before reserved (or the other lacked fields)")
        end = spec.offset
    padding = replace(reserved, offset=end, size=reserved.offset + reserved.size - end,
                      description=f"reserved; zero in version {version}")
    fields = tuple(padding if spec is reserved else spec for spec in current.fields if spec not in lacked)
    return replace(current, version=version, fields=fields)


def _build_layout(doc: dict[str, Any], source: Path) -> Layout:
    def bad(problem: str) -> ValueError:
        return ValueError(f"{source}: {problem}")

    frame, transaction, crc = doc["frame"], doc["transaction"], doc["crc"]
    fields = []
    for entry in doc["field"]:
        kind = entry["type"]
        if kind == "bytes":
            size = entry["size"]
        elif kind in _TYPES:
            size = _TYPES[kind][1]
        else:
            raise bad(f"field {entry['name']}: unknown type {kind!r}; use u8, u16, i16, u32 or bytes")
        fields.append(FieldSpec(
            name=entry["name"], offset=entry["offset"], type=kind, size=size, unit=entry.get("unit", ""),
            scale=entry.get("scale"), reading=entry.get("reading"), description=entry.get("description", ""),
            session_register=bool(entry.get("session_register", False)),
        ))
    position = 0
    for spec in fields:
        if spec.offset != position:
            raise bad(f"field {spec.name} starts at {spec.offset}, expected {position} (fields must not gap or overlap)")
        position += spec.size
    if position != frame["length"]:
        raise bad(f"fields cover {position} bytes, but frame.length is {frame['length']}")
    names = {spec.name for spec in fields}
    missing = [name for name in _REQUIRED_FIELDS if name not in names]
    if missing:
        raise bad(f"the codec needs fields {', '.join(missing)}")
    if fields[-1].name != "crc" or fields[-1].type != "u16":
        raise bad("the last field must be the u16 crc")
    if sorted(doc["faults"]) != sorted(FAULTS):
        raise bad(f"[faults] names {sorted(doc['faults'])}, the model knows {sorted(FAULTS)}")
    if crc.get("reflect_in") or crc.get("reflect_out") or crc.get("xor_out", 0):
        raise bad("the codec implements CRC-16/CCITT-FALSE only (no reflection, no xor_out)")
    layout = Layout(
        version=frame["version"], length=frame["length"], byte_order=_ORDERS[frame["byte_order"]],
        magic=frame["magic"].encode("ascii"), payload_length=frame["payload_length"],
        command=transaction["command"], dummy_bytes=transaction["dummy_bytes"],
        dummy_value=transaction["dummy_value"], response_offset=transaction["response_offset"],
        crc_poly=crc["poly"], crc_init=crc["init"], crc_check=crc["check"],
        fault_bits=dict(doc["faults"]), fields=tuple(fields), source=source,
    )
    if layout.field("magic").size != len(layout.magic):
        raise bad(f"frame.magic {frame['magic']!r} does not fill the {layout.field('magic').size}-byte magic field")
    header_end = layout.field("payload_length").offset + 1
    if layout.payload_length != layout.field("crc").offset - header_end:
        raise bad("frame.payload_length must count the bytes between the header and the CRC")
    if _crc(b"123456789", _crc_table(layout.crc_poly), layout.crc_init) != layout.crc_check:
        raise bad(f"crc.check 0x{layout.crc_check:04X} does not match the CRC the poly and init give")
    if layout.response_offset + layout.length > 1 + layout.dummy_bytes:
        raise bad("transaction: the command byte and dummy bytes must clock in the whole frame after response_offset")
    return layout


def _crc(data: bytes, table: tuple[int, ...], init: int) -> int:
    crc = init
    for byte in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ byte]
    return crc


def _crc_table(poly: int) -> tuple[int, ...]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ poly) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return tuple(table)


# The names below come from hw/pen_frame.toml, set by _load() on first use: by each public
# function, or by the module's __getattr__ for `frame.FRAME_LENGTH` and the like.
LAYOUTS: dict[int, Layout]  # version -> layout: the current one and the older ones still read
FRAME_VERSION: int
LAYOUT: Layout
FRAME_LENGTH: int
READ_COMMAND: int
RESPONSE_OFFSET: int
TRANSFER_LENGTH: int  # command byte + dummy bytes
_CRC_TABLE: tuple[int, ...]
_STRUCTS: dict[int, struct.Struct]
_VERSIONS_READ: str
_CRC_FIELD: FieldSpec
_BODY_LENGTH: int  # bytes the CRC covers
_KNOWN_FAULT_MASK: int
_FROM_LAYOUT = ("LAYOUTS", "FRAME_VERSION", "LAYOUT", "FRAME_LENGTH", "READ_COMMAND", "RESPONSE_OFFSET",
                "TRANSFER_LENGTH")


def _load() -> None:
    """Read the layouts once. Two threads may both load them; they set the same values."""
    global LAYOUTS, FRAME_VERSION, FRAME_LENGTH, READ_COMMAND, RESPONSE_OFFSET, TRANSFER_LENGTH
    global _CRC_TABLE, _STRUCTS, _VERSIONS_READ, _CRC_FIELD, _BODY_LENGTH, _KNOWN_FAULT_MASK, LAYOUT
    if "LAYOUT" in globals():
        return
    layouts = load_layouts()
    FRAME_VERSION = max(layouts)
    layout = layouts[FRAME_VERSION]
    FRAME_LENGTH, READ_COMMAND, RESPONSE_OFFSET = layout.length, layout.command, layout.response_offset
    TRANSFER_LENGTH = 1 + layout.dummy_bytes
    _CRC_TABLE = _crc_table(layout.crc_poly)
    _STRUCTS = {
        version: struct.Struct(older.byte_order + "".join(spec.struct_code for spec in older.fields))
        for version, older in layouts.items()
    }
    _VERSIONS_READ = " and ".join(str(version) for version in sorted(layouts))
    _CRC_FIELD = layout.field("crc")
    _BODY_LENGTH = _CRC_FIELD.offset
    _KNOWN_FAULT_MASK = sum(1 << bit for bit in layout.fault_bits.values())
    LAYOUTS = layouts
    LAYOUT = layout  # last: its presence says all the others are set


def __getattr__(name: str) -> Any:
    if name in _FROM_LAYOUT:
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- CRC and the read transaction -----------------------------------------------------

def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF, no reflection, no xorout)."""
    _load()
    return _crc(data, _CRC_TABLE, LAYOUT.crc_init)


def append_crc(body: bytes) -> bytes:
    """The frame body (all bytes before the CRC) with its CRC appended, as the pen sends it."""
    _load()
    if len(body) != _BODY_LENGTH:
        raise ValueError(f"a frame body is {_BODY_LENGTH} bytes, got {len(body)}")
    return bytes(body) + crc16(body).to_bytes(2, "big" if LAYOUT.byte_order == ">" else "little")


def read_request() -> bytes:
    """What the dock clocks out: the read command, then dummy bytes while the pen answers."""
    _load()
    return bytes([READ_COMMAND]) + bytes([LAYOUT.dummy_value]) * LAYOUT.dummy_bytes


def frame_from_transfer(received: bytes) -> bytes:
    """The frame inside the bytes clocked in during `read_request()` (bytes [1:49])."""
    _load()
    return bytes(received[RESPONSE_OFFSET:RESPONSE_OFFSET + FRAME_LENGTH])


# --- encode ---------------------------------------------------------------------------

def encode(reading: PenReading) -> bytes:
    """A valid frame for `reading` (what the pen sends); ValueError if a value does not fit.

    The version byte is `reading.frame_version`, and the layout that version's (a version-1
    pen sends no session tag); a version the dock does not read gets the current layout, so
    a test can build a frame the decoder refuses. No session tag (None) is sent as 0.
    """
    _load()
    layout = LAYOUTS.get(reading.frame_version, LAYOUT)
    raw: dict[str, Any] = {
        "magic": layout.magic,
        "payload_length": layout.payload_length,
        "faults": _fault_byte(reading.faults),
        "reserved": bytes(layout.field("reserved").size),
        "crc": 0,
    }
    raw["firmware_major"], raw["firmware_minor"] = _firmware_parts(reading.firmware)
    for spec in layout.fields:
        if spec.reading is not None:
            value = getattr(reading, spec.reading)
            raw[spec.name] = _to_raw(spec, 0 if value is None and spec.name == "session_tag" else value)
    for spec in layout.fields:
        if spec.type != "bytes" and raw[spec.name] not in spec.raw_range:
            raise ValueError(f"{spec.name} = {raw[spec.name]} does not fit a {spec.type} (offset {spec.offset})")
    packed = _STRUCTS.get(layout.version, _STRUCTS[FRAME_VERSION]).pack(*(raw[spec.name] for spec in layout.fields))
    return append_crc(packed[:_BODY_LENGTH])


def _to_raw(spec: FieldSpec, value: Any) -> int:
    if spec.scale is None:
        if type(value) is not int:
            raise ValueError(f"{spec.reading} must be an integer, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{spec.reading} must be a finite number, got {value!r}")
    return round(value / spec.scale)


def _firmware_parts(firmware: str) -> tuple[int, int]:
    parts = firmware.split(".") if isinstance(firmware, str) else []
    if len(parts) != 2 or not all(part.isdigit() and int(part) < 256 for part in parts):
        raise ValueError(f'firmware must be "major.minor" with both parts 0..255, got {firmware!r}')
    return int(parts[0]), int(parts[1])


def _fault_byte(faults: frozenset[str]) -> int:
    unknown = set(faults) - set(LAYOUT.fault_bits)
    if unknown:
        raise ValueError(f"unknown fault names {sorted(unknown)}; the frame knows {sorted(LAYOUT.fault_bits)}")
    return sum(1 << LAYOUT.fault_bits[name] for name in faults)


# --- decode ---------------------------------------------------------------------------

def decode(data: bytes) -> PenReading:
    """The reading in a received frame, or a FrameError saying what was wrong and where.

    Order matters: length, then CRC (a corrupted frame is a CRC error, retried), then the
    magic and version (an unknown pen is refused before its layout is trusted), then the
    rest of the format.
    """
    _load()
    frame = _as_bytes(data)
    if len(frame) != FRAME_LENGTH:
        raise FrameFormatError(
            f"frame is {len(frame)} bytes, expected {FRAME_LENGTH}; "
            f"take bytes [{RESPONSE_OFFSET}:{RESPONSE_OFFSET + FRAME_LENGTH}] of the {TRANSFER_LENGTH}-byte transfer"
        )
    _check_crc(frame)
    layout = _layout_of(frame)
    values = dict(zip((spec.name for spec in layout.fields), _STRUCTS[layout.version].unpack(frame), strict=True))
    _check_format(values, layout)
    faults = frozenset(name for name, bit in layout.fault_bits.items() if values["faults"] >> bit & 1)
    attributes: dict[str, Any] = {
        spec.reading: spec.scaled(values[spec.name]) for spec in layout.fields if spec.reading is not None
    }
    if attributes.get("session_tag") == 0:
        attributes["session_tag"] = None  # no session opened since the pen powered up
    return PenReading(
        firmware=f"{values['firmware_major']}.{values['firmware_minor']}", faults=faults, **attributes,
    )


def _as_bytes(data: Any) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    if isinstance(data, (list, tuple)):  # gpiozero's SPI transfer returns a list of ints
        for offset, item in enumerate(data):
            if type(item) is not int or not 0 <= item <= 255:
                raise FrameFormatError(f"byte at offset {offset} is {item!r}, not a byte value 0..255")
        return bytes(data)
    raise TypeError(f"a frame is bytes or a list of byte values, not {type(data).__name__}")


def _check_crc(frame: bytes) -> None:
    if frame.count(frame[0]) == len(frame) and frame[0] in (0x00, 0xFF):
        raise CrcError(
            f"all {len(frame)} bytes are 0x{frame[0]:02X}: the pen did not answer "
            f"(lifted mid-read, or its contacts not touching); re-seat the pen and read again"
        )
    stored = int.from_bytes(frame[_BODY_LENGTH:], "big" if LAYOUT.byte_order == ">" else "little")
    computed = crc16(frame[:_BODY_LENGTH])
    if stored != computed:
        raise CrcError(
            f"CRC mismatch: crc (offset {_CRC_FIELD.offset}) holds 0x{stored:04X}, "
            f"bytes 0..{_BODY_LENGTH - 1} give 0x{computed:04X}; {_crc_hint(frame)}"
        )


def _crc_hint(frame: bytes) -> str:
    """The likeliest cause of a CRC mismatch, for the technician reading the log."""
    last = frame[-1]
    start = len(frame)
    while start > 0 and frame[start - 1] == last:
        start -= 1
    # Padding is zero, so a zero run only counts when it starts before the padding.
    padding_from = min(layout.field("reserved").offset for layout in LAYOUTS.values())
    silent_from = padding_from if last == 0x00 else _CRC_FIELD.offset - 1
    if last in (0x00, 0xFF) and start < silent_from:
        return (f"bytes {start}..{len(frame) - 1} are all 0x{last:02X}: the pen stopped answering at "
                f"offset {start} (lifted mid-read?); re-seat the pen and read again")
    version = frame[LAYOUT.field("version").offset]
    if frame.startswith(LAYOUT.magic) and version not in LAYOUTS:
        return (f"the header claims frame version {version}, which this dock does not know "
                f"(a newer pen may use another length or check); update the dock software")
    return "the frame was corrupted on the contacts (read again; if it persists, clean the pogo pins)"


def _layout_of(frame: bytes) -> Layout:
    """The layout a CRC-checked frame claims: a pen-dock frame of a version this dock reads."""
    magic = LAYOUT.field("magic")
    found = frame[magic.offset:magic.offset + magic.size]
    if found != LAYOUT.magic:
        raise FrameFormatError(
            f"magic (offset {magic.offset}) is {found!r}, expected {LAYOUT.magic!r}: not a pen-dock frame"
        )
    version = frame[LAYOUT.field("version").offset]
    if version not in LAYOUTS:
        raise UnknownVersionError(
            f"frame version {version} (offset {LAYOUT.field('version').offset}) is unknown to this "
            f"dock, which reads version {_VERSIONS_READ}; the pen stays held: update the dock software"
        )
    return LAYOUTS[version]


def _check_format(values: dict[str, Any], layout: Layout) -> None:
    if values["payload_length"] != layout.payload_length:
        raise FrameFormatError(
            f"payload_length (offset {layout.field('payload_length').offset}) is {values['payload_length']}, "
            f"expected {layout.payload_length} for a version {layout.version} frame"
        )
    stray = values["faults"] & ~_KNOWN_FAULT_MASK
    if stray:
        raise FrameFormatError(
            f"faults (offset {layout.field('faults').offset}) is 0x{values['faults']:02X}: "
            f"reserved bits 0x{stray:02X} set, expected only 0x{_KNOWN_FAULT_MASK:02X}"
        )
    reserved = layout.field("reserved")
    for index, byte in enumerate(values["reserved"]):
        if byte:
            raise FrameFormatError(
                f"reserved padding byte at offset {reserved.offset + index} is 0x{byte:02X}, expected 0x00"
            )


# --- describe (technician's readout) --------------------------------------------------

def describe(data: bytes) -> list[FieldView]:
    """Every field of whatever came in, checked or not, so a bad frame can be looked at."""
    _load()
    frame = _as_bytes(data)
    version_offset = LAYOUT.field("version").offset
    layout = LAYOUTS.get(frame[version_offset], LAYOUT) if len(frame) > version_offset else LAYOUT
    views = [_view(spec, frame) for spec in layout.fields]
    if len(frame) > FRAME_LENGTH:
        extra = frame[FRAME_LENGTH:]
        views.append(FieldView("extra", FRAME_LENGTH, extra.hex(" "), None, "",
                               f"{len(extra)} bytes beyond the {FRAME_LENGTH}-byte frame"))
    return views


def _view(spec: FieldSpec, frame: bytes) -> FieldView:
    chunk = frame[spec.offset:spec.offset + spec.size]
    if len(chunk) < spec.size:
        return FieldView(spec.name, spec.offset, chunk.hex(" "), None, spec.unit,
                         f"missing: frame is {len(frame)} bytes, expected {FRAME_LENGTH}")
    if spec.type == "bytes":
        raw: Any = chunk
        value: Any = chunk.decode("ascii", "backslashreplace") if spec.name == "magic" else None
    else:
        raw = struct.unpack(LAYOUT.byte_order + spec.struct_code, chunk)[0]
        value = spec.scaled(raw)
    return FieldView(spec.name, spec.offset, chunk.hex(" "), value, spec.unit, _note(spec.name, raw, frame))


def _note(name: str, raw: Any, frame: bytes) -> str:
    if name == "magic":
        return "" if raw == LAYOUT.magic else f"expected {LAYOUT.magic.decode('ascii')!r}"
    if name == "version":
        if raw == FRAME_VERSION:
            return ""
        if raw in LAYOUTS:
            return "older version, read: its session registers cannot be tied to a session"
        return f"unknown version; this dock reads {_VERSIONS_READ}"
    if name == "payload_length":
        return "" if raw == LAYOUT.payload_length else f"expected {LAYOUT.payload_length}"
    if name == "session_tag":
        return "no session opened since power-up" if raw == 0 else ""
    if name == "cartridge_serial":
        return "no cartridge" if raw == 0 else ""
    if name == "faults":
        names = [fault for fault, bit in LAYOUT.fault_bits.items() if raw >> bit & 1]
        stray = raw & ~_KNOWN_FAULT_MASK
        parts = names + ([f"reserved bits 0x{stray:02X} set"] if stray else [])
        return ", ".join(parts) if parts else "none"
    if name == "reserved":
        return "all zero" if not any(raw) else "not zero (expected all 0x00)"
    if name == "crc":
        computed = crc16(frame[:_BODY_LENGTH])
        return "ok" if raw == computed else f"mismatch: bytes 0..{_BODY_LENGTH - 1} give 0x{computed:04X}"
    return ""
