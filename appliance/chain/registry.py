"""The chain's key registry: `<keys-dir>/<clinic>/<dock>.pub`, each clinic's key ring
copied as it is. A dock's key counts only in its own clinic's folder, so a dock of one
clinic cannot speak for another's."""
from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.chain.topics import CHAIN_ID, CLINIC_ID
from appliance.fleet import keys


def load_registry(folder: Path) -> dict[str, dict[str, Ed25519PublicKey]]:
    """{clinic: {dock: key}}; the worker's own `chain.pub` in a clinic's folder is left out."""
    folder = Path(folder)
    if not folder.is_dir():
        raise keys.KeyError_(f"{folder}: no key registry there: `pendock chain provision` writes "
                             f"worker/keys/; copy each clinic's keys/*.pub into worker/keys/<clinic>/")
    registry: dict[str, dict[str, Ed25519PublicKey]] = {}
    seen: dict[str, str] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if not CLINIC_ID.fullmatch(sub.name):
            raise keys.KeyError_(f"{sub}: {sub.name!r} is not a clinic id (a-z, 0-9, '-', at most 32)")
        ring = {d: k for d, k in keys.load_keyring(sub).items() if d != CHAIN_ID}
        for dock in ring:
            if dock in seen:
                raise keys.KeyError_(f"{sub / (dock + '.pub')}: dock {dock!r} is also in clinic "
                                     f"{seen[dock]!r}: a dock id must be unique across the chain")
            seen[dock] = sub.name
        registry[sub.name] = ring
    if not registry:
        raise keys.KeyError_(f"{folder}: no clinic folders: copy each clinic's keys/*.pub into "
                             f"{folder}/<clinic>/")
    return registry
