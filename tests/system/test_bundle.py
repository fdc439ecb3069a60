"""`make bundle`'s builder on this checkout, then that bundle installed offline as a new
release in a scratch root: the bundle carries every wheel the program needs, and the
installed release runs. systemctl and the health probe are the scratch-root fakes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance import __version__
from appliance.release import bundle as bundles
from appliance.release.upgrade import offline_venv, upgrade
from tests.unit.test_release import Dock

REPO = Path(__file__).resolve().parents[2]


def build_checkouts_bundle(tmp_path: Path) -> Ed25519PrivateKey:
    """`make bundle`'s build of this checkout into tmp_path/dist, signed with a new key
    (returned); skips the test when PyPI is out of reach."""
    key = Ed25519PrivateKey.generate()
    key_file = tmp_path / "release.key"
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    build = subprocess.run([sys.executable, "-m", "appliance.release.build", "--key", str(key_file),
                            "--out", str(tmp_path / "dist"), "--checkout", str(REPO)],
                           capture_output=True, text=True, timeout=600, cwd=REPO)
    if build.returncode != 0 and "No matching distribution" in build.stderr:
        pytest.skip("PyPI is out of reach here: pip wheel cannot gather the dependencies")
    assert build.returncode == 0, build.stderr
    return key


def test_the_checkouts_bundle_installs_offline_and_runs(tmp_path):
    key = build_checkouts_bundle(tmp_path)
    bundle = tmp_path / "dist" / f"pendock-{__version__}.bundle"

    dock = Dock(tmp_path)  # running "0.1.0": move it below this checkout's version
    dock.layout.release("0.1.0").rename(dock.layout.release("0.0.1"))
    dock.layout.point("current", "0.0.1")
    keys = dock.root / "etc/pendock/release-keys"
    (keys / "maker.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    manifest = bundles.verify(bundle, keys)
    names = {w.file.split("-")[0].lower() for w in manifest.wheels}
    assert {"pen_dock", "gpiozero", "flask", "waitress", "paho_mqtt", "cryptography", "sqlite_utils"} <= names

    dock.machine.build_venv = offline_venv  # pip --no-index: only the bundle's wheels
    assert upgrade(bundle, dock.machine).ok
    installed = dock.root / "opt/pendock/current/venv/bin/pendock"
    shown = subprocess.run([str(installed), "version", "--root", str(dock.root), "--json"],
                           capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout) == {"running": __version__, "previous": "0.0.1",
                                        "releases": ["0.0.1", __version__], "layout": "releases"}
