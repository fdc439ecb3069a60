"""Cartridge authentication: only a genuine chip's answer to THIS challenge is authentic.

Every other answer (forged, cloned, replayed, relayed, truncated, flipped, unknown maker,
wrong curve, no uses left) is "unauthentic", and nothing the link can carry crashes the
verifier: the fuzz test throws 10,000 generated answers at it.
"""
from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from appliance.hardware import chipauth, simchip
from appliance.hardware.chipauth import verify
from appliance.hardware.makers import load_makers, public_pem

SERIAL = 0x0C0FFEE1
CHIPS = simchip.SimChips()
TRUSTED = chipauth.trusted_by_id({"demo-maker": CHIPS.maker_key.public_key()})
DOCK = bytes(range(16))
OTHER_DOCK = bytes(range(16, 32))


def challenge(nonce: bytes | None = None, dock_id: bytes = DOCK) -> tuple[bytes, bytes]:
    nonce = nonce or os.urandom(16)
    return nonce, chipauth.encode_challenge(nonce, dock_id)


def answered(chip: dict, dock_id: bytes = DOCK) -> tuple[bytes, bytes]:
    nonce, frame = challenge(dock_id=dock_id)
    return nonce, simchip.answer(chip, frame)


def test_the_exchange_frames_have_the_lengths_hw_states():
    assert (chipauth.CHALLENGE_LENGTH, chipauth.ANSWER_LENGTH, chipauth.CERTIFICATE_LENGTH) == (38, 217, 145)
    nonce, frame = challenge()
    assert chipauth.decode_challenge(frame) == (nonce, DOCK)


def test_a_genuine_chip_is_authentic_with_its_id_and_counter():
    nonce, answer = answered(CHIPS.genuine(SERIAL))
    verdict = verify(answer, nonce, DOCK, TRUSTED)
    assert verdict.verdict == "authentic", verdict.reason
    assert (verdict.cartridge_id, verdict.counter, verdict.maker) == (SERIAL, simchip.DEFAULT_USES, "demo-maker")


def test_the_chip_counts_down_and_refuses_at_zero():
    chip = CHIPS.genuine(SERIAL, uses=2)
    counters = []
    for _ in range(3):
        nonce, answer = answered(chip)
        verdict = verify(answer, nonce, DOCK, TRUSTED)
        counters.append((verdict.verdict, verdict.counter))
    assert counters == [("authentic", 2), ("authentic", 1), ("unauthentic", 0)]
    assert "no uses left" in verify(answer, nonce, DOCK, TRUSTED).reason


def test_a_forged_certificate_is_unauthentic():
    nonce, answer = answered(CHIPS.forged(SERIAL))
    verdict = verify(answer, nonce, DOCK, TRUSTED)
    assert verdict.verdict == "unauthentic" and "not trusted" in verdict.reason


def test_a_cloned_certificate_on_another_chip_is_unauthentic():
    nonce, answer = answered(CHIPS.clone_of(SERIAL))
    verdict = verify(answer, nonce, DOCK, TRUSTED)
    assert verdict.verdict == "unauthentic" and "did not sign" in verdict.reason


def test_a_replayed_answer_is_unauthentic():
    _, answer = answered(CHIPS.genuine(SERIAL))
    fresh_nonce, _ = challenge()
    assert verify(answer, fresh_nonce, DOCK, TRUSTED).verdict == "unauthentic"


def test_an_answer_relayed_from_another_docks_challenge_is_unauthentic():
    nonce, answer = answered(CHIPS.genuine(SERIAL), dock_id=OTHER_DOCK)
    assert verify(answer, nonce, OTHER_DOCK, TRUSTED).verdict == "authentic"  # there, yes
    assert verify(answer, nonce, DOCK, TRUSTED).verdict == "unauthentic"  # here, no


def test_an_unknown_maker_is_unauthentic_even_with_a_sound_signature():
    nonce, answer = answered(simchip.SimChips().genuine(SERIAL))
    assert verify(answer, nonce, DOCK, TRUSTED).verdict == "unauthentic"


def test_no_trusted_maker_at_all_trusts_nothing():
    nonce, answer = answered(CHIPS.genuine(SERIAL))
    assert verify(answer, nonce, DOCK, {}).verdict == "unauthentic"


def _with_certificate(answer: bytes, cert: chipauth.Certificate, maker=CHIPS) -> bytes:
    signature = chipauth.sign(maker.maker_key, chipauth.certificate_message(cert.signed_part()))
    cert_bytes = chipauth.Certificate(**{**cert.__dict__, "maker_signature": signature}).to_bytes()
    values = chipauth.SPEC.answer.unpack(answer)
    return chipauth.encode_answer(cert_bytes, values["counter"], values["signature"])


def test_a_chip_key_of_the_wrong_curve_is_unauthentic():
    nonce, answer = answered(CHIPS.genuine(SERIAL))
    cert = chipauth.Certificate.from_bytes(chipauth.SPEC.answer.unpack(answer)["certificate"])
    # secp256k1 points are 65 bytes too: signed by the trusted maker, still not P-256.
    k1 = ec.generate_private_key(ec.SECP256K1()).public_key()
    wrong_point = chipauth.public_point(k1)
    verdict = verify(_with_certificate(answer, chipauth.Certificate(**{**cert.__dict__, "chip_public_key": wrong_point})),
                     nonce, DOCK, TRUSTED)
    assert verdict.verdict == "unauthentic"
    wrong_id = chipauth.Certificate(**{**cert.__dict__, "curve": 2})
    verdict = verify(_with_certificate(answer, wrong_id), nonce, DOCK, TRUSTED)
    assert verdict.verdict == "unauthentic" and "P-256" in verdict.reason


def test_a_maker_key_of_the_wrong_curve_is_never_trusted(tmp_path):
    (tmp_path / "good.pem").write_bytes(CHIPS.maker_public_pem())
    (tmp_path / "p384.pem").write_bytes(public_pem(ec.generate_private_key(ec.SECP384R1()).public_key()))
    (tmp_path / "junk.pem").write_text("not a key")
    trusted, problems = load_makers(tmp_path)
    assert [m.name for m in trusted.values()] == ["good"]
    assert len(problems) == 2 and any("secp384r1" in p for p in problems)
    p384 = {"p384": ec.generate_private_key(ec.SECP384R1()).public_key()}
    assert chipauth.trusted_by_id(p384) == {}


def test_a_private_key_in_the_maker_folder_is_left_out_and_named(tmp_path):
    from cryptography.hazmat.primitives import serialization

    pem = CHIPS.maker_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    (tmp_path / "oops.pem").write_bytes(pem)
    trusted, problems = load_makers(tmp_path)
    assert trusted == {} and "PRIVATE" in problems[0]


def test_a_missing_maker_folder_trusts_nobody_and_says_so(tmp_path):
    trusted, problems = load_makers(tmp_path / "absent")
    assert trusted == {} and "no such folder" in problems[0]


def test_no_answer_at_all_is_unverified_not_authentic():
    nonce, _ = challenge()
    for blank in (None, b"", b"\0" * chipauth.ANSWER_LENGTH, b"\xff" * chipauth.ANSWER_LENGTH):
        assert verify(blank, nonce, DOCK, TRUSTED).verdict == "unverified"


GENUINE_NONCE, GENUINE_ANSWER = answered(CHIPS.genuine(SERIAL))


@pytest.mark.parametrize("index", range(chipauth.ANSWER_LENGTH))
def test_every_flipped_byte_is_unauthentic(index):
    assert verify(GENUINE_ANSWER, GENUINE_NONCE, DOCK, TRUSTED).verdict == "authentic"
    flipped = bytearray(GENUINE_ANSWER)
    flipped[index] ^= 0x01
    assert verify(bytes(flipped), GENUINE_NONCE, DOCK, TRUSTED).verdict == "unauthentic"
    # ... and with the CRC made good again, so the crypto itself has to catch it
    if index < chipauth.ANSWER_LENGTH - 2:
        refitted = chipauth._with_crc(bytes(flipped[:-2]))
        assert verify(refitted, GENUINE_NONCE, DOCK, TRUSTED).verdict == "unauthentic"


@pytest.mark.parametrize("length", [0, 1, 4, 148, 216, 218, 400])
def test_a_truncated_or_overlong_answer_is_unauthentic(length):
    data = (GENUINE_ANSWER * 2)[:length]
    if length == 0:
        data = b"\x01"
    assert verify(data, GENUINE_NONCE, DOCK, TRUSTED).verdict == "unauthentic"


def _mutations():
    """Answers a forger or a bad contact could send: random bytes, genuine ones cut,
    stretched or with bytes changed (with or without a good CRC)."""
    raw = st.binary(min_size=0, max_size=300)
    edits = st.lists(st.tuples(st.integers(0, chipauth.ANSWER_LENGTH - 1), st.integers(1, 255)),
                     min_size=1, max_size=6)

    def mutate(args):
        edits, fix_crc, cut = args
        data = bytearray(GENUINE_ANSWER)
        for index, xor in edits:
            data[index] ^= xor
        if fix_crc:
            data = bytearray(chipauth._with_crc(bytes(data[:-2])))
        return bytes(data[:cut]) if cut is not None else bytes(data)

    return st.one_of(raw, st.tuples(edits, st.booleans(),
                                    st.one_of(st.none(), st.integers(0, chipauth.ANSWER_LENGTH))).map(mutate))


@settings(max_examples=10_000, deadline=None, suppress_health_check=list(HealthCheck))
@given(_mutations())
def test_fuzz_no_generated_answer_crashes_or_passes(data):
    verdict = verify(data, GENUINE_NONCE, DOCK, TRUSTED)
    if data == GENUINE_ANSWER:
        assert verdict.verdict == "authentic"
    elif chipauth.blank_answer(data):
        assert verdict.verdict == "unverified"
    else:
        assert verdict.verdict == "unauthentic"


def test_hw_readme_certificate_table_matches_the_layout():
    import re

    from appliance.core.resources import hw_file

    readme = hw_file("README.md").read_text(encoding="utf-8")
    rows = {m[1]: (int(m[2]), int(m[3])) for m in re.finditer(r"^\| `(\w+)` \| (\d+) \| (\d+) \|", readme, re.M)}
    assert rows == {name: (offset, size) for name, offset, size, _ in chipauth.SPEC.certificate.fields}


def test_a_maker_folder_others_may_write_is_refused_with_what_to_do(tmp_path):
    """Whoever may write the folder could add a maker of their own: refused, and said how to fix."""
    folder = tmp_path / "makers"
    folder.mkdir()
    (folder / "good.pem").write_bytes(CHIPS.maker_public_pem())
    assert [m.name for m in load_makers(folder)[0].values()] == ["good"]
    folder.chmod(0o777)
    trusted, problems = load_makers(folder)
    assert trusted == {} and "may be written by others" in problems[0] and "chown root:root" in problems[0]
    folder.chmod(0o755)
    os.chown(folder, 4321, 4321)
    trusted, problems = load_makers(folder)
    assert trusted == {} and "belongs to user id 4321" in problems[0]


def test_a_maker_key_its_group_may_write_or_another_user_owns_is_left_out(tmp_path):
    (tmp_path / "good.pem").write_bytes(CHIPS.maker_public_pem())
    (tmp_path / "writable.pem").write_bytes(CHIPS.maker_public_pem())
    (tmp_path / "writable.pem").chmod(0o664)
    (tmp_path / "theirs.pem").write_bytes(CHIPS.maker_public_pem())
    os.chown(tmp_path / "theirs.pem", 4321, 4321)
    trusted, problems = load_makers(tmp_path)
    assert [m.name for m in trusted.values()] == ["good"]
    assert sorted(p.split(":")[0].rsplit("/", 1)[1] for p in problems) == ["theirs.pem", "writable.pem"]
