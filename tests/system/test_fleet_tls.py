"""A clinic's broker behind TLS: `mqtts://` with the clinic's CA (`tls_ca_file`), and a
dock that does not trust the broker's certificate does not connect."""
from __future__ import annotations

import datetime
import ipaddress
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from appliance.fleet.provision import provision
from tests.support.demo import DemoProcess, free_port
from tests.support.waiting import wait_for

pytestmark = pytest.mark.skipif(shutil.which("mosquitto") is None,
                                reason="needs Debian's mosquitto (make test installs it)")


def _cert(subject: str, key, issuer_key, issuer_name, *, ca: bool) -> x509.Certificate:
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(issuer_name).public_key(key.public_key())
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if not ca:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(path, thing) -> str:
    if isinstance(thing, x509.Certificate):
        path.write_bytes(thing.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(thing.private_bytes(serialization.Encoding.PEM,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    return str(path)


def test_a_dock_reaches_its_broker_over_tls_and_refuses_an_untrusted_one(tmp_path):
    # The clinic's CA and the broker's certificate are provisioning's own (mqtts:// is its default).
    other_key = ec.generate_private_key(ec.SECP256R1())
    other = _cert("someone else", other_key, other_key,
                  x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "someone else")]), ca=True)
    port = free_port()
    provision(tmp_path / "clinic", ["room-1"], f"mqtts://127.0.0.1:{port}", port=port,
              persistence=False)
    conf = tmp_path / "clinic" / "broker" / "mosquitto.conf"
    conf.write_text(conf.read_text().replace(f"listener {port}\n", f"listener {port} 127.0.0.1\n")
                    + "user root\n")
    _pem(tmp_path / "other-ca.pem", other)
    broker = subprocess.Popen(["mosquitto", "-c", str(conf)], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    table = (tmp_path / "clinic" / "docks" / "room-1" / "fleet.toml").read_text()
    ca_line = next(line for line in table.splitlines() if line.startswith("tls_ca_file"))
    demos = []
    try:
        for name, ca_file in (("trusting", None), ("wary", "other-ca.pem")):
            config = tmp_path / f"{name}.toml"
            config.write_text(table if ca_file is None else
                              table.replace(ca_line, f'tls_ca_file = "{tmp_path / ca_file}"'))
            demo = DemoProcess(tmp_path / name)
            demo.env["PENDOCK_CONFIG"] = str(config)
            demos.append(demo.start(40))
        trusting, wary = demos
        assert wait_for(lambda: trusting.json("fleet")["connected"], timeout=15, every=0.5)
        assert trusting.json("fleet")["broker"].startswith("mqtts://")
        assert not wait_for(lambda: wary.json("fleet")["connected"], timeout=5, every=0.5)
    finally:
        for demo in demos:
            demo.stop()
        broker.terminate()
        broker.wait(10)
