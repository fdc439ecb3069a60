"""The cartridge makers a dock trusts: one PEM public key per maker in a folder.

A dock trusts a maker because a technician put that maker's public key in the folder
(`cartridges.makers_dir`, /etc/pendock/makers/ by default); removing the file revokes
the maker at the next daemon start. A file that is not a P-256 public key is left out
and named in `problems`: its cartridges stay unauthentic, which holds the pen, never
the other way round.
"""
from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from appliance.hardware.chipauth import TrustedMaker, key_id

PEM_SUFFIX = ".pem"


def load_makers(folder: Path | None) -> tuple[dict[bytes, TrustedMaker], list[str]]:
    """(trusted makers by key id, one plain line per file that was left out)."""
    trusted: dict[bytes, TrustedMaker] = {}
    problems: list[str] = []
    if folder is None:
        return trusted, problems
    folder = Path(folder)
    unsafe = _unsafe(folder)
    if unsafe:
        return trusted, [f"{folder}: every maker's key is refused: {unsafe}; no cartridge maker is trusted, "
                         f"so every chip-carrying cartridge is held as unauthentic. Fix it with "
                         f"`chown root:root {folder} && chmod 755 {folder}` (and 644 for its files)"]
    try:
        files = sorted(p for p in folder.iterdir() if p.suffix == PEM_SUFFIX and p.is_file())
    except FileNotFoundError:
        return trusted, [f"{folder}: no such folder: no cartridge maker is trusted, so every "
                         f"chip-carrying cartridge is held as unauthentic"]
    except OSError as error:
        return trusted, [f"{folder}: cannot list the trusted makers: {error.strerror or error}"]
    for path in files:
        unsafe = _unsafe(path)
        if unsafe:
            problems.append(f"{path}: left out: {unsafe} (chown root:root and chmod 644 it)")
            continue
        try:
            key = _maker_key(path)
        except ValueError as error:
            problems.append(f"{path}: left out: {error}")
            continue
        trusted[key_id(key)] = TrustedMaker(path.stem, key)
    return trusted, problems


def _unsafe(path: Path) -> str:
    """Why the folder or a key in it cannot be trusted ("" if it can): anyone who may
    write it could add a maker of their own, so it must belong to root (or to the dock's
    own user, which could change it anyway) and be writable by its owner alone (S9/R5)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return ""  # said below, as before
    except OSError as error:
        return f"cannot look at it ({error.strerror or error})"
    if info.st_uid not in (0, os.geteuid()):
        return f"it belongs to user id {info.st_uid}, not root"
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        who = "others" if info.st_mode & stat.S_IWOTH else "its group"
        return f"it may be written by {who} (mode {stat.S_IMODE(info.st_mode):o})"
    return ""


def _maker_key(path: Path) -> ec.EllipticCurvePublicKey:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(f"cannot read it: {error.strerror or error}") from None
    if b"PRIVATE KEY" in data:
        raise ValueError("it holds a PRIVATE key; a dock needs only the maker's public key "
                         "(remove this file and ask the maker for its public key)")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as error:
        raise ValueError(f"not a PEM public key ({error})") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        curve = getattr(getattr(key, "curve", None), "name", type(key).__name__)
        raise ValueError(f"not a P-256 (secp256r1) key but {curve}: cartridges carry P-256 "
                         f"certificates only")
    return key


def public_pem(key: ec.EllipticCurvePublicKey) -> bytes:
    """A maker's public key as the file a dock's maker folder takes."""
    return key.public_bytes(serialization.Encoding.PEM,
                            serialization.PublicFormat.SubjectPublicKeyInfo)
