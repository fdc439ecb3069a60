"""Each dock's Ed25519 key and the clinic's key ring (every dock's public key).

Files, so a technician can see and copy them: a dock's private key is PEM (PKCS#8) readable
by the dock's user alone; the key ring is a folder of `<dock_id>.pub` files, one base64
line each. `pendock fleet provision` writes both for every dock of a clinic.
"""
from __future__ import annotations

import base64
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from appliance.fleet.events import DOCK_ID


class KeyError_(ValueError):
    """A key file cannot be used; the message names it and what to do."""


def new_private_key(path: Path) -> Ed25519PrivateKey:
    """A fresh key, written with mode 0600 (never overwrites)."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(pem)
    return key


def load_private_key(path: Path) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(Path(path).read_bytes(), password=None)
    except FileNotFoundError:
        raise KeyError_(f"{path}: no dock key there: run `pendock fleet provision` and copy "
                        f"this dock's key, or fix [fleet] key_file") from None
    except (OSError, ValueError) as error:
        raise KeyError_(f"{path}: not a usable Ed25519 private key ({error})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyError_(f"{path}: the key is not Ed25519")
    return key


def public_line(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode("ascii")


def write_public(folder: Path, dock_id: str, key: Ed25519PrivateKey) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dock_id}.pub"
    path.write_text(public_line(key) + "\n", encoding="ascii")
    return path


def claim_public(folder: Path, dock_id: str, key: Ed25519PrivateKey, key_path: Path) -> Path:
    """A demo dock's public key into the shared folder: written when absent, kept when it is
    this key, and an error naming the file when it holds another key (an earlier demo of
    the same dock id, with another data folder): never overwritten, never ignored, since
    the docks already running trust the old one and would drop this dock's events."""
    path = Path(folder) / f"{dock_id}.pub"
    try:
        held = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return write_public(Path(folder), dock_id, key)
    except (OSError, UnicodeDecodeError) as error:
        raise KeyError_(f"{path}: cannot read it ({error})") from None
    if held != public_line(key):
        raise KeyError_(
            f"{path} holds another key than this dock's ({key_path}): a dock {dock_id!r} started "
            f"earlier with another data folder left it, and the docks sharing {folder} trust that "
            f"one. Start this dock with that data folder again, or delete {path} (the old dock's "
            f"key) and restart every dock sharing the folder so they learn the new key")
    return path


def load_keyring(folder: Path) -> dict[str, Ed25519PublicKey]:
    """{dock_id: public key} from `<dock_id>.pub` files; a bad file is an error, not skipped."""
    folder = Path(folder)
    if not folder.is_dir():
        raise KeyError_(f"{folder}: no key ring folder there: copy the clinic's keys/ folder "
                        f"from `pendock fleet provision`, or fix [fleet] keys_dir")
    ring: dict[str, Ed25519PublicKey] = {}
    for path in sorted(folder.glob("*.pub")):
        dock = path.stem
        if not DOCK_ID.fullmatch(dock):
            raise KeyError_(f"{path}: {dock!r} is not a dock id (a-z, 0-9, '-', at most 32)")
        try:
            raw = base64.b64decode(path.read_text(encoding="ascii").strip(), validate=True)
            ring[dock] = Ed25519PublicKey.from_public_bytes(raw)
        except (OSError, ValueError, UnicodeDecodeError) as error:
            raise KeyError_(f"{path}: not a base64 Ed25519 public key ({error})") from None
    return ring
