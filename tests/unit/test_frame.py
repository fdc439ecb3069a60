"""The pen frame codec: round trips, the CRC, every refusal, and a fuzzed decoder."""
from __future__ import annotations

import re
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.hardware import frame
from appliance.hardware.frame import (
    FRAME_LENGTH, READ_COMMAND, CrcError, FieldView, FrameError, FrameFormatError,
    UnknownVersionError, append_crc, crc16, decode, describe, encode,
)
from appliance.core.model import FAULTS, PenReading
from appliance.core.resources import hw_file
from tests.support.marks import examples

U32 = st.integers(0, 2**32 - 1)


@st.composite
def readings(draw) -> PenReading:
    """Valid readings, with depth and temperature on the frame's own steps."""
    return PenReading(
        pen_serial=draw(U32),
        firmware=f"{draw(st.integers(0, 255))}.{draw(st.integers(0, 255))}",
        strokes=draw(U32),
        motor_seconds=draw(U32),
        cartridge_serial=draw(U32),
        cartridge_strokes=draw(U32),
        max_depth_mm=round(draw(st.integers(0, 2**16 - 1)) * 0.05, 2),
        battery_mv=draw(st.integers(0, 2**16 - 1)),
        temperature_c=round(draw(st.integers(-(2**15), 2**15 - 1)) * 0.1, 1),
        faults=frozenset(draw(st.sets(st.sampled_from(FAULTS)))),
        **draw(st.sampled_from([{"frame_version": 1}, {"frame_version": 2}]).flatmap(
            lambda v: st.just(v) if v["frame_version"] == 1
            else st.builds(lambda tag: {**v, "session_tag": tag}, st.one_of(st.none(), st.integers(1, 2**32 - 1))))),
    )


def sample(**changes) -> PenReading:
    values = dict(
        pen_serial=0x01020304, firmware="2.7", strokes=123_456, motor_seconds=7_200,
        cartridge_serial=0xCAFE, cartridge_strokes=0, max_depth_mm=1.5, battery_mv=3_900,
        temperature_c=-3.4, faults=frozenset(),
    )
    values.update(changes)
    return PenReading(**values)


def resealed(data: bytes | bytearray) -> bytes:
    """Recompute the CRC so only the deliberate change is wrong."""
    return append_crc(bytes(data[:46]))


def patched(offset: int, new: bytes, reading: PenReading | None = None) -> bytes:
    data = bytearray(encode(reading or sample()))
    data[offset:offset + len(new)] = new
    return resealed(data)


# --- CRC, layout, transaction ---------------------------------------------------------

def test_crc_check_value():
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF  # init, no xorout
    assert crc16(b"A") == 0xB915  # published CRC-16/CCITT-FALSE of "A"


def test_layout_matches_hw_readme():
    assert FRAME_LENGTH == 48
    data = encode(sample(faults=frozenset({"stall", "chip"})))
    assert data[:2] == b"PD" and data[2] == 2 and data[3] == 42
    assert data[4:8] == bytes([1, 2, 3, 4])  # big-endian serial
    assert data[8:10] == bytes([2, 7])
    assert struct.unpack(">H", data[26:28])[0] == 30  # 1.5 mm in 0.05 mm
    assert struct.unpack(">h", data[30:32])[0] == -34  # -3.4 degC in 0.1 degC
    assert data[32] == 0b101
    assert data[33:37] == bytes(4)  # no session tag: 0
    assert data[37:46] == bytes(9)
    tagged = encode(sample(session_tag=0xA1B2C3D4))
    assert tagged[33:37] == bytes([0xA1, 0xB2, 0xC3, 0xD4])
    assert int.from_bytes(data[46:], "big") == crc16(data[:46])


def test_read_transaction():
    request = frame.read_request()
    assert READ_COMMAND == 0x52 and request[0] == 0x52
    assert len(request) == 1 + 48 and request[1:] == bytes(48)
    good = encode(sample())
    assert frame.frame_from_transfer(b"\x00" + good) == good


def test_readme_frame_table_matches_the_layout():
    readme = hw_file("README.md").read_text(encoding="utf-8")
    v2 = readme[readme.index("## The pen link frame"):readme.index("### Version 1")]
    rows = {m[3]: (int(m[1]), int(m[2])) for m in re.finditer(r"^\| (\d+) \| (\d+) \| (\w+) \|", v2, re.M)}
    assert rows == {spec.name: (spec.offset, spec.size) for spec in frame.LAYOUT.fields}
    v1 = readme[readme.index("### Version 1"):readme.index("### CRC")]
    rows = {m[3]: (int(m[1]), int(m[2])) for m in re.finditer(r"^\| (\d+) \| (\d+) \| (\w+) \|", v1, re.M)}
    assert rows == {spec.name: (spec.offset, spec.size) for spec in frame.LAYOUTS[1].fields if spec.offset >= 33}


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("offset = 46", "offset = 45", "starts at 45, expected 46"),
        ("size = 9", "size = 8", "starts at 46, expected 45"),
        ('lacks = ["session_tag"]', 'lacks = ["battery"]', "does not sit right before reserved"),
        ("[older.1]\nlacks", "[older.3]\nlacks", "must name versions before"),
        ('type = "i16"', 'type = "f16"', "unknown type"),
        ("chip = 2", "chips = 2", "[faults]"),
        ("check = 0x29B1", "check = 0x29B2", "does not match"),
    ],
)
def test_a_broken_layout_file_is_refused(tmp_path, old, new, problem):
    text = hw_file("pen_frame.toml").read_text(encoding="utf-8")
    assert old in text
    path = tmp_path / "pen_frame.toml"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")
    with pytest.raises(ValueError, match=re.escape(problem)) as caught:
        frame.load_layout(path)
    assert str(path) in str(caught.value)


# --- encode and decode ------------------------------------------------------------------

@settings(max_examples=300, deadline=None)
@given(readings())
def test_round_trip(reading):
    data = encode(reading)
    assert len(data) == FRAME_LENGTH
    assert decode(data) == reading


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 3000), st.floats(-3000, 3000))
def test_depth_and_temperature_round_to_the_frame_steps(depth, temperature):
    back = decode(encode(sample(max_depth_mm=depth, temperature_c=temperature)))
    assert abs(back.max_depth_mm - depth) <= 0.025 + 1e-9
    assert abs(back.temperature_c - temperature) <= 0.05 + 1e-9


def test_decode_accepts_a_list_of_ints_as_gpiozero_returns():
    data = encode(sample())
    assert decode(list(data)) == decode(bytearray(data)) == sample()


@pytest.mark.parametrize(
    "change",
    [
        {"pen_serial": -1}, {"strokes": 2**32}, {"battery_mv": 70_000}, {"max_depth_mm": -0.1},
        {"max_depth_mm": float("nan")}, {"temperature_c": 4000.0}, {"firmware": "2"},
        {"firmware": "2.256"}, {"firmware": "a.b"}, {"faults": frozenset({"fire"})},
        {"strokes": 1.5},
    ],
)
def test_encode_refuses_values_that_do_not_fit(change):
    with pytest.raises(ValueError):
        encode(sample(**change))


# --- refusals ----------------------------------------------------------------------------

@pytest.mark.parametrize("length", [0, 1, 47, 49, 96])
def test_wrong_length(length):
    data = (encode(sample()) * 2)[:length]
    with pytest.raises(FrameFormatError, match=f"{length} bytes, expected 48"):
        decode(data)


def test_flipped_bit_is_a_crc_error():
    data = bytearray(encode(sample()))
    data[12] ^= 0x10
    with pytest.raises(CrcError, match="CRC mismatch.*offset 46"):
        decode(bytes(data))


def test_crc_is_checked_before_version():
    data = bytearray(encode(sample(frame_version=3)))
    data[20] ^= 1
    with pytest.raises(CrcError, match="version 3"):  # the hint, but a CRC error, so the dock retries
        decode(bytes(data))


@pytest.mark.parametrize("byte", [0x00, 0xFF])
def test_pen_lifted_mid_read(byte):
    with pytest.raises(CrcError, match=f"0x{byte:02X}.*lifted"):
        decode(bytes([byte]) * 48)
    half = encode(sample())[:20] + bytes([byte]) * 28
    with pytest.raises(CrcError, match="lifted"):
        decode(half)


def test_bad_magic():
    with pytest.raises(FrameFormatError, match=r"magic \(offset 0\).*b'PX'.*b'PD'"):
        decode(patched(0, b"PX"))


@pytest.mark.parametrize("version", [0, 3, 255])
def test_unknown_version_is_refused_with_an_update_hint(version):
    with pytest.raises(UnknownVersionError) as caught:
        decode(encode(sample(frame_version=version)))
    message = str(caught.value)
    assert f"version {version}" in message and "offset 2" in message
    assert "held" in message and "update the dock software" in message and "reads version 1 and 2" in message


def test_a_version_1_pen_is_still_read_without_a_session_tag():
    v1 = encode(sample(frame_version=1))
    assert v1[2] == 1 and v1[33:46] == bytes(13)  # the version-1 layout: all padding after faults
    reading = decode(v1)
    assert (reading.frame_version, reading.session_tag, reading.max_depth_mm) == (1, None, 1.5)
    with pytest.raises(FrameFormatError, match="offset 33 is 0x01"):  # its padding is still checked
        decode(patched(33, b"\x01", sample(frame_version=1)))
    note = {view.name: view.note for view in describe(v1)}
    assert "session_tag" not in note and "older version" in note["version"]


def test_a_version_2_frame_carries_the_session_tag():
    reading = decode(encode(sample(session_tag=77)))
    assert (reading.frame_version, reading.session_tag) == (2, 77)
    assert decode(encode(sample())).session_tag is None  # 0 on the wire: no session opened
    assert {view.name: view.note for view in describe(encode(sample()))}["session_tag"].startswith("no session")


def test_only_max_depth_is_a_session_register():
    assert [spec.name for spec in frame.LAYOUT.fields if spec.session_register] == ["max_depth"]


def test_payload_length_mismatch():
    with pytest.raises(FrameFormatError, match=r"payload_length \(offset 3\) is 41, expected 42"):
        decode(patched(3, bytes([41])))


@pytest.mark.parametrize("bits", [0x08, 0x80, 0xFF])
def test_reserved_fault_bits(bits):
    with pytest.raises(FrameFormatError, match=r"faults \(offset 32\)"):
        decode(patched(32, bytes([bits])))


@pytest.mark.parametrize("offset", range(37, 46))
def test_nonzero_padding(offset):
    with pytest.raises(FrameFormatError, match=f"offset {offset} is 0x01, expected 0x00"):
        decode(patched(offset, b"\x01"))


def test_error_classes():
    for error in (CrcError, FrameFormatError, UnknownVersionError):
        assert issubclass(error, FrameError) and issubclass(error, ValueError)


# --- describe ----------------------------------------------------------------------------

def test_describe_a_good_frame():
    views = describe(encode(sample(faults=frozenset({"overtemp"}))))
    assert all(isinstance(view, FieldView) for view in views)
    by_name = {view.name: view for view in views}
    assert [view.name for view in views] == [spec.name for spec in frame.LAYOUT.fields]
    assert by_name["magic"].value == "PD" and by_name["magic"].raw_hex == "50 44"
    assert (by_name["max_depth"].value, by_name["max_depth"].unit, by_name["max_depth"].offset) == (1.5, "mm", 26)
    assert by_name["temperature"].value == -3.4
    assert by_name["faults"].note == "overtemp"
    assert by_name["crc"].note == "ok"


def test_describe_shows_a_bad_frame_anyway():
    data = bytearray(encode(sample()))
    data[4] ^= 0xFF  # corrupt the serial
    by_name = {view.name: view for view in describe(bytes(data))}
    assert by_name["pen_serial"].raw_hex == "fe 02 03 04"
    assert by_name["crc"].note.startswith("mismatch")
    short = describe(data[:30])
    assert short[-1].value is None and "missing" in short[-1].note
    long = describe(bytes(data) + b"\x99")
    assert long[-1].name == "extra" and long[-1].raw_hex == "99"


# --- fuzzing: 2,500 + 4,000 + 3,500 = 10,000 generated frames --------------------------------

FUZZ = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])  # (a tenth under make test-fast)


def decodes_or_refuses(data: bytes) -> None:
    """The only two outcomes: a reading that re-encodes to the same bytes, or a FrameError."""
    try:
        reading = decode(data)
    except FrameError:
        return
    assert isinstance(reading, PenReading)
    assert encode(reading) == data
    describe(data)


@settings(FUZZ, max_examples=examples(2_500))
@given(st.one_of(st.binary(max_size=100), st.binary(min_size=48, max_size=48)))
def test_fuzz_random_bytes(data):
    decodes_or_refuses(data)
    describe(data)  # the readout shows any bytes


@st.composite
def damaged_frames(draw) -> bytes:
    data = bytearray(encode(draw(readings())))
    damage = draw(st.sampled_from(["flip", "truncate", "extend", "tail"]))
    if damage == "flip":
        for bit in draw(st.sets(st.integers(0, 48 * 8 - 1), min_size=1, max_size=8)):
            data[bit // 8] ^= 1 << (bit % 8)
    elif damage == "truncate":
        del data[draw(st.integers(0, 47)):]
    elif damage == "extend":
        data += draw(st.binary(min_size=1, max_size=16))
    else:  # pen lifted mid-read: the rest reads as a constant line level
        start = draw(st.integers(0, 47))
        data[start:] = bytes([draw(st.sampled_from([0x00, 0xFF]))]) * (48 - start)
    return bytes(data)


@settings(FUZZ, max_examples=examples(4_000))
@given(damaged_frames())
def test_fuzz_damaged_valid_frames(data):
    decodes_or_refuses(data)


@st.composite
def sealed_frames(draw) -> bytes:
    """A correct CRC over random content, so the checks after the CRC get exercised."""
    kind = draw(st.sampled_from(["random", "header", "fields"]))
    if kind == "random":
        body = draw(st.binary(min_size=46, max_size=46))
    elif kind == "header":
        body = b"PD" + bytes([draw(st.sampled_from([1, 2])), 0x2A]) + draw(st.binary(min_size=42, max_size=42))
    else:  # a valid body with one field overwritten by random bytes
        body = bytearray(encode(draw(readings()))[:46])
        spec = draw(st.sampled_from(frame.LAYOUT.fields[:-1]))
        body[spec.offset:spec.offset + spec.size] = draw(st.binary(min_size=spec.size, max_size=spec.size))
        body = bytes(body)
    return append_crc(body)


@settings(FUZZ, max_examples=examples(3_500))
@given(sealed_frames())
def test_fuzz_valid_crc_random_payloads(data):
    decodes_or_refuses(data)
