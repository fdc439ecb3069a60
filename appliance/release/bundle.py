"""A release bundle: a tar of `manifest.json`, `manifest.sig` and `wheels/*.whl`.

The manifest names the release (`version`), its project wheel and every wheel with its
SHA-256 and size; `manifest.sig` is the raw 64-byte Ed25519 signature over the manifest's
exact bytes. Nothing is extracted before the signature and every hash have been checked,
so a refused bundle leaves no trace on the dock.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

FORMAT = 1
MANIFEST, SIGNATURE, WHEELS = "manifest.json", "manifest.sig", "wheels/"
_WHEEL_NAME = re.compile(r"^[A-Za-z0-9_.+!-]+\.whl$")
_SMALL = 1 << 20  # manifest and signature are read whole: a bound, not a guess at their size
_VERSION = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:\.post(\d+))?$")


class BundleRefused(Exception):
    """The bundle may not be installed; the message says why and what to do."""


@dataclass(frozen=True)
class Wheel:
    file: str
    sha256: str
    size: int


@dataclass(frozen=True)
class Manifest:
    version: str
    project_wheel: str
    wheels: tuple[Wheel, ...]
    signed_by: str  # the key file in release-keys that verified it


def version_key(version: str) -> tuple[int, int, int, int]:
    """X.Y.Z or X.Y.Z.postN, ordered; anything else is refused rather than guessed at."""
    match = _VERSION.match(version)
    if not match:
        raise BundleRefused(f"release version {version!r} is not X.Y.Z (or X.Y.Z.postN)")
    return tuple(int(part or 0) for part in match.groups())  # type: ignore[return-value]


def trusted_keys(keys_dir: Path) -> list[tuple[str, Ed25519PublicKey]]:
    """Every Ed25519 public key (PEM, *.pem) in the release-keys folder."""
    found = []
    for path in sorted(keys_dir.glob("*.pem")) if keys_dir.is_dir() else []:
        try:
            key = serialization.load_pem_public_key(path.read_bytes())
        except ValueError:
            raise BundleRefused(f"{path} is not a PEM public key: replace or remove it") from None
        if not isinstance(key, Ed25519PublicKey):
            raise BundleRefused(f"{path} is not an Ed25519 key: release keys are Ed25519 only")
        found.append((path.name, key))
    return found


def verify(bundle: Path, keys_dir: Path) -> Manifest:
    """The bundle's manifest once its signature and every wheel's hash are checked."""
    keys = trusted_keys(keys_dir)
    if not keys:
        raise BundleRefused(f"no release keys in {keys_dir}: add the maker's public key "
                            f"(one PEM a key) before upgrading")
    try:
        with tarfile.open(bundle, "r:") as tar:
            members = {m.name: m for m in tar.getmembers()}
            manifest_bytes = _read(tar, members, MANIFEST, "unsigned or not a bundle: no manifest.json")
            signature = _read(tar, members, SIGNATURE, "unsigned: the bundle has no manifest.sig")
            signed_by = _signer(manifest_bytes, signature, keys, keys_dir)
            manifest = _parse(manifest_bytes, signed_by)
            _check_members(tar, members, manifest)
        _check_no_stray_bytes(bundle, list(members.values()))
    except (tarfile.TarError, OSError, EOFError) as error:
        raise BundleRefused(f"{bundle} is not a readable bundle ({error}): fetch it again") from None
    return manifest


def extract_wheels(bundle: Path, manifest: Manifest, into: Path) -> None:
    """The checked wheels into `into` (hashes checked again as they are written)."""
    into.mkdir(parents=True, exist_ok=True)
    with tarfile.open(bundle, "r:") as tar:
        for wheel in manifest.wheels:
            source = tar.extractfile(WHEELS + wheel.file)
            assert source is not None
            data = source.read()
            if hashlib.sha256(data).hexdigest() != wheel.sha256:
                raise BundleRefused(f"{wheel.file} changed while it was unpacked: fetch the bundle again")
            (into / wheel.file).write_bytes(data)


def _read(tar: tarfile.TarFile, members: dict, name: str, missing: str) -> bytes:
    member = members.get(name)
    if member is None or not member.isfile():
        raise BundleRefused(missing)
    if member.size > _SMALL:
        raise BundleRefused(f"the bundle's {name} is {member.size} bytes: far too big, refused")
    source = tar.extractfile(member)
    assert source is not None
    return source.read()


def _signer(manifest: bytes, signature: bytes, keys, keys_dir: Path) -> str:
    for name, key in keys:
        try:
            key.verify(signature, manifest)
            return name
        except InvalidSignature:
            continue
    raise BundleRefused(f"the signature matches no key in {keys_dir}: the bundle is altered or "
                        f"signed by a key this dock does not trust")


def _parse(data: bytes, signed_by: str) -> Manifest:
    try:
        raw = json.loads(data)
        if raw["format"] != FORMAT:
            raise BundleRefused(f"bundle format {raw['format']} is not {FORMAT}: use a newer pendock")
        wheels = tuple(Wheel(str(w["file"]), str(w["sha256"]), int(w["size"])) for w in raw["wheels"])
        manifest = Manifest(str(raw["version"]), str(raw["project_wheel"]), wheels, signed_by)
    except (ValueError, KeyError, TypeError) as error:
        raise BundleRefused(f"the manifest is malformed ({error})") from None
    version_key(manifest.version)
    names = [w.file for w in wheels]
    if any(not _WHEEL_NAME.match(n) for n in names) or len(set(names)) != len(names):
        raise BundleRefused("the manifest names a wheel twice or by a path: refused")
    if manifest.project_wheel not in names:
        raise BundleRefused(f"the manifest's project wheel {manifest.project_wheel} is not in it")
    return manifest


def _check_no_stray_bytes(bundle: Path, members: list[tarfile.TarInfo]) -> None:
    """Every byte outside the members' headers and data (block padding, the end blocks)
    must be zero: a flipped byte anywhere in the file refuses the bundle, not only one in
    a signed or hashed part (tarfile itself skips padding and stops at a bad header)."""
    covered = sorted((m.offset, m.offset_data + m.size) for m in members)
    with open(bundle, "rb") as handle:
        position = 0
        for start, end in covered + [(os.fstat(handle.fileno()).st_size, 0)]:
            handle.seek(position)
            gap = handle.read(max(0, start - position))
            if gap.count(0) != len(gap):
                stray = position + next(i for i, byte in enumerate(gap) if byte)
                raise BundleRefused(f"{bundle} has a stray byte at offset {stray}: "
                                    f"the bundle is corrupted; fetch it again")
            position = max(position, end)


def _check_members(tar: tarfile.TarFile, members: dict, manifest: Manifest) -> None:
    expected = {WHEELS + w.file: w for w in manifest.wheels}
    extra = sorted(set(members) - set(expected) - {MANIFEST, SIGNATURE, "wheels"})
    if extra:
        raise BundleRefused(f"the bundle holds files its manifest does not name: {', '.join(extra)}")
    for name, wheel in expected.items():
        member = members.get(name)
        if member is None or not member.isfile():
            raise BundleRefused(f"{wheel.file} is named in the manifest but missing from the bundle")
        source = tar.extractfile(member)
        assert source is not None
        digest = hashlib.sha256()
        while block := source.read(1 << 16):
            digest.update(block)
        if member.size != wheel.size or digest.hexdigest() != wheel.sha256:
            raise BundleRefused(f"{wheel.file} does not match its SHA-256 in the manifest: the bundle "
                                f"is corrupted; fetch it again")
