"""`pendock chain provision`: the files a chain's central broker, each clinic's bridge and
the ingest worker need, written once by the technician.

OUT/central/mosquitto.conf (+ passwd, acl, TLS)  the central broker: one login per clinic's
                                                 bridge and one for the worker
OUT/brokers/<clinic>/mosquitto.conf              that clinic broker's configuration with its
                                                 bridge to the central one
OUT/worker/chain.key, broker-password            the worker's signing key and login
OUT/worker/keys/<clinic>/                        the chain's key registry (--keys-dir): copy
                                                 each clinic's keys/*.pub into its folder
OUT/chain.pub                                    the worker's public key: copy it into every
                                                 clinic's keys/ folder, so docks believe its
                                                 acknowledgements and catch-up requests

`--anonymous` (a demo on one machine): no logins, no TLS. Running it again keeps every
existing key, password and certificate.
"""
from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from appliance.chain.topics import BRIDGED, CENTRAL, CHAIN_ID, CLINIC_ID
from appliance.fleet import keys
from appliance.fleet.provision import mosquitto_password_line
from appliance.fleet.settings import BrokerAddress, parse_broker

WORKER_USER = "chain-worker"


@dataclass(frozen=True)
class ClinicBroker:
    clinic: str
    address: BrokerAddress


def parse_clinic(text: str) -> ClinicBroker:
    """ID=mqtt://HOST:PORT; ValueError says what is wrong."""
    clinic, sep, url = text.partition("=")
    if not sep or not CLINIC_ID.fullmatch(clinic):
        raise ValueError(f"--clinic {text!r}: give ID=mqtt://HOST:PORT, the id lower-case letters, "
                         f"digits and '-', at most 32 (e.g. --clinic north=mqtt://10.0.1.5:1883)")
    if clinic == CHAIN_ID:
        raise ValueError(f"--clinic {text!r}: {CHAIN_ID!r} is reserved for the chain's worker")
    return ClinicBroker(clinic, parse_broker(url))


def bridge_user(clinic: str) -> str:
    return f"bridge-{clinic}"


def provision(out: Path, central_url: str, clinics: list[str], *, anonymous: bool = False) -> dict:
    central = parse_broker(central_url)
    brokers = [parse_clinic(c) for c in clinics]
    names = [b.clinic for b in brokers]
    if not anonymous and not central.tls:
        raise ValueError(f"--central {central_url}: the bridges and the worker reach the central broker "
                         f"over TLS: give mqtts://HOST:PORT (or --anonymous for a demo on one machine)")
    if not brokers or len(set(names)) != len(names):
        raise ValueError("give each clinic once: --clinic ID=mqtt://HOST:PORT (repeat for each)")
    out = Path(out).resolve()
    worker = out / "worker"
    (worker / "keys").mkdir(parents=True, exist_ok=True)
    os.chmod(worker, 0o700)
    key_file = worker / "chain.key"
    key = keys.load_private_key(key_file) if key_file.exists() else keys.new_private_key(key_file)
    (out / "chain.pub").write_text(keys.public_line(key) + "\n", encoding="ascii")
    for b in brokers:
        (worker / "keys" / b.clinic).mkdir(exist_ok=True)
    tls = None if anonymous else _tls_files(out / "central", central.host)
    logins = {} if anonymous else {user: _secret(out / path) for user, path in
                                   [(WORKER_USER, Path("worker/broker-password"))]
                                   + [(bridge_user(b.clinic), Path(f"brokers/{b.clinic}/bridge-password"))
                                      for b in brokers]}
    _write(out / "central" / "mosquitto.conf", _central_conf(out / "central", central, anonymous))
    if not anonymous:
        _write(out / "central" / "passwd", "".join(
            mosquitto_password_line(user, password) + "\n" for user, password in sorted(logins.items())),
            mode=0o600)
        _write(out / "central" / "acl", _central_acl(names))
    for b in brokers:
        home = out / "brokers" / b.clinic
        _write(home / "mosquitto.conf",
               _clinic_conf(home, b, central, anonymous, logins.get(bridge_user(b.clinic), ""),
                            tls[0] if tls else None), mode=0o600)
    return {"out": str(out), "clinics": names, "anonymous": anonymous,
            "central": str(out / "central" / "mosquitto.conf"), "keys_dir": str(worker / "keys"),
            "chain_pub": str(out / "chain.pub")}


def _central_conf(home: Path, central: BrokerAddress, anonymous: bool) -> str:
    lines = ["# pen-dock chain: the central broker (written by `pendock chain provision`)",
             "per_listener_settings false", f"listener {central.port}",
             # One catch-up batch of a dock, with room for the bridge's framing.
             "max_packet_size 1100000",
             # Nothing of the chain depends on it: the docks' records are the truth.
             "persistence false"]
    if anonymous:
        lines += ["allow_anonymous true"]
    else:
        lines += ["allow_anonymous false", f"password_file {home / 'passwd'}", f"acl_file {home / 'acl'}",
                  f"cafile {home / 'ca.crt'}", f"certfile {home / 'server.crt'}",
                  f"keyfile {home / 'server.key'}"]
    return "\n".join(lines) + "\n"


def _central_acl(clinics: list[str]) -> str:
    lines = ["# pen-dock chain: each bridge writes only its clinic's topics; the worker reads all",
             f"user {WORKER_USER}", f"topic read {CENTRAL}/#",
             f"topic write {CENTRAL}/+/catchup/{CHAIN_ID}", f"topic write {CENTRAL}/+/chain/ack", ""]
    for clinic in clinics:
        lines += [f"user {bridge_user(clinic)}"]
        for pattern, direction in BRIDGED:
            lines.append(f"topic {'write' if direction == 'out' else 'read'} {CENTRAL}/{clinic}/{pattern}")
        lines.append("")
    return "\n".join(lines)


def _clinic_conf(home: Path, broker: ClinicBroker, central: BrokerAddress, anonymous: bool,
                 password: str, cafile: Path | None) -> str:
    clinic = broker.clinic
    lines = [f"# pen-dock chain: clinic {clinic}'s broker, bridged to the central one",
             "# (written by `pendock chain provision`)", "per_listener_settings false",
             f"listener {broker.address.port}", "max_packet_size 1100000", "persistence false"]
    if anonymous:
        lines += ["allow_anonymous true"]
    else:
        lines += ["allow_anonymous false",
                  "# the clinic's own logins and ACL (`pendock fleet provision`'s broker/ folder):",
                  f"password_file {home / 'passwd'}", f"acl_file {home / 'acl'}"]
    lines += ["", f"connection pendock-chain-{clinic}", f"address {central.host}:{central.port}",
              f"remote_clientid pendock-bridge-{clinic}", "bridge_protocol_version mqttv311",
              # The chain never relies on the bridge's queue: the worker asks the docks.
              "cleansession true", "try_private true", "notifications false",
              "keepalive_interval 10", "restart_timeout 1 5"]
    if not anonymous:
        lines += [f"remote_username {bridge_user(clinic)}", f"remote_password {password}",
                  f"bridge_cafile {cafile}"]
    # QoS 0 across the bridge: nothing queued while the link is down and nothing in flight
    # when it returns. Measured with QoS 1 (Mosquitto 2.0.11): a bridge that came back with
    # thousands queued stayed connected and forwarded nothing more. What QoS 0 loses, the
    # worker asks the docks for again (their records are the truth).
    for pattern, direction in BRIDGED:
        lines.append(f"topic {pattern} {direction} 0 pendock/ {CENTRAL}/{clinic}/")
    return "\n".join(lines) + "\n"


def _secret(path: Path) -> str:
    if path.exists():
        return path.read_text(encoding="utf-8").strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    password = secrets.token_urlsafe(24)
    _write(path, password + "\n", mode=0o600)
    return password


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.chmod(path, mode)


def _tls_files(home: Path, host: str) -> tuple[Path, Path, Path]:
    """A chain CA and the central broker's certificate for HOST (kept when they exist)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_path, cert_path, key_path = home / "ca.crt", home / "server.crt", home / "server.key"
    if ca_path.exists() and cert_path.exists() and key_path.exists():
        return ca_path, cert_path, key_path
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, server_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pen-dock chain CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    try:
        alt: x509.GeneralName = x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        alt = x509.DNSName(host)
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
              .issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3650))
              .add_extension(x509.SubjectAlternativeName([alt]), critical=False)
              .sign(ca_key, hashes.SHA256()))
    home.mkdir(parents=True, exist_ok=True)
    _write(ca_path, ca.public_bytes(serialization.Encoding.PEM).decode())
    _write(cert_path, server.public_bytes(serialization.Encoding.PEM).decode())
    _write(key_path, server_key.private_bytes(serialization.Encoding.PEM,
                                              serialization.PrivateFormat.TraditionalOpenSSL,
                                              serialization.NoEncryption()).decode(), mode=0o600)
    return ca_path, cert_path, key_path
