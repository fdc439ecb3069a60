"""Slow salted password hashes (scrypt, from the standard library).

Used by `pendock user add` (which sends only the hash to the daemon), by the page to
check a login, and by the demo for its two users.
"""
from __future__ import annotations

import functools
import hashlib
import secrets


@functools.cache  # once per process, at its first hash: not for every importer
def _keep_big_buffers_out_of_the_heap(threshold: int = 1 << 20) -> None:
    """Every hash runs scrypt with 16 MB of scratch memory. glibc hands the first such
    buffer back to the system but then raises its mmap threshold, so from the second
    hash on the 16 MB stay in the heap for good: a long-running process (the page, the
    demo) would grow by that much. A fixed threshold (M_MMAP_THRESHOLD) stops the
    raising; allocations over 1 MB, rare here, are then always mapped and unmapped."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").mallopt(-3, threshold)  # -3: M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


def password_hash(password: str, *, n: int = 2**14, r: int = 8, p: int = 1) -> str:
    _keep_big_buffers_out_of_the_heap()
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
    return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        _keep_big_buffers_out_of_the_heap()
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return secrets.compare_digest(got.hex(), digest)
