"""`make bundle KEY=FILE`: the checkout's wheel and its dependencies' wheels, signed.

`python -m appliance.release.build --key FILE [--out DIR] [--wheels DIR]`: without
--wheels it runs `pip wheel .` (PyPI or pip's cache) to gather them. The key is an
Ed25519 private key in PEM (`openssl genpkey -algorithm ed25519`, README, Updates).
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.release.bundle import FORMAT, MANIFEST, SIGNATURE, WHEELS, version_key

PROJECT = "pen_dock"


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SystemExit(f"{path} is not an Ed25519 private key (openssl genpkey -algorithm ed25519)")
    return key


def project_wheel_of(wheels: list[Path]) -> Path:
    mine = [w for w in wheels if w.name.startswith(PROJECT + "-")]
    if len(mine) != 1:
        raise SystemExit(f"expected one {PROJECT} wheel among {[w.name for w in wheels]}")
    return mine[0]


def manifest_bytes(wheels: list[Path], project_wheel: Path) -> bytes:
    version = project_wheel.name.split("-")[1]
    version_key(version)
    entries = [{"file": w.name, "sha256": hashlib.sha256(w.read_bytes()).hexdigest(), "size": w.stat().st_size}
               for w in sorted(wheels)]
    manifest = {"format": FORMAT, "name": "pen-dock", "version": version,
                "project_wheel": project_wheel.name, "wheels": entries}
    return json.dumps(manifest, indent=2, sort_keys=True).encode() + b"\n"


def build_bundle(wheels: list[Path], key: Ed25519PrivateKey, out_dir: Path) -> Path:
    """Write pendock-VERSION.bundle into out_dir; returns its path."""
    project_wheel = project_wheel_of(wheels)
    manifest = manifest_bytes(wheels, project_wheel)
    version = json.loads(manifest)["version"]
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"pendock-{version}.bundle"
    part = target.with_suffix(".bundle.part")
    with tarfile.open(part, "w:", format=tarfile.USTAR_FORMAT) as tar:
        _add_bytes(tar, MANIFEST, manifest)
        _add_bytes(tar, SIGNATURE, key.sign(manifest))
        for wheel in sorted(wheels):
            tar.add(wheel, arcname=WHEELS + wheel.name, recursive=False)
    part.replace(target)
    return target


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def gather_wheels(checkout: Path, into: Path) -> list[Path]:
    subprocess.run([sys.executable, "-P", "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
                    "--wheel-dir", str(into), str(checkout)], check=True)
    return sorted(into.glob("*.whl"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make bundle", description=__doc__.splitlines()[0])
    parser.add_argument("--key", required=True, type=Path, help="Ed25519 private key, PEM")
    parser.add_argument("--out", type=Path, default=Path("dist"), help="folder for the bundle (dist)")
    parser.add_argument("--wheels", type=Path, help="take the wheels from here instead of pip wheel")
    parser.add_argument("--checkout", type=Path, default=Path("."), help="the project to build (.)")
    args = parser.parse_args(argv)
    key = load_private_key(args.key)
    with tempfile.TemporaryDirectory(prefix="pendock-bundle-") as scratch:
        wheels = sorted(args.wheels.glob("*.whl")) if args.wheels else gather_wheels(args.checkout, Path(scratch))
        target = build_bundle(wheels, key, args.out)
    print(f"Bundle {target}: {len(wheels)} wheels, signed.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
