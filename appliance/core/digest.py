"""SHA-256 for the dock daemon, through the `cryptography` package rather than hashlib.

The daemon loads cryptography (with its own OpenSSL) for cartridge and fleet signatures
anyway. hashlib (and `secrets`, through hmac) would load the system's libcrypto beside
it: a second OpenSSL, about 3.5 MB resident for the same hash (quality bar P4, README).
The digests are SHA-256's, byte for byte what hashlib.sha256 gives. cryptography is
imported on the first hash, so a process that never hashes (the page) never loads it.
"""
from __future__ import annotations

import functools
from typing import Any


@functools.cache
def _algorithm() -> tuple[Any, Any]:
    from cryptography.hazmat.primitives import hashes

    return hashes.Hash, hashes.SHA256()


class Sha256:
    """An incremental SHA-256 (hashlib.sha256's update / digest / hexdigest)."""

    def __init__(self, data: bytes = b"") -> None:
        make, algorithm = _algorithm()
        self._hash = make(algorithm)
        self._digest: bytes | None = None
        if data:
            self.update(data)

    def update(self, data: bytes) -> None:
        self._hash.update(bytes(data))

    def digest(self) -> bytes:
        if self._digest is None:
            self._digest = bytes(self._hash.finalize())
        return self._digest

    def hexdigest(self) -> str:
        return self.digest().hex()


def sha256(data: bytes) -> bytes:
    return Sha256(data).digest()


def sha256_hex(data: bytes) -> str:
    return Sha256(data).hexdigest()
