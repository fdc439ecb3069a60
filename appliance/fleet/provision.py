"""`pendock fleet provision`: everything a clinic's broker and docks need to trust each
other, written once by the technician.

OUT/broker/mosquitto.conf, passwd, acl   the broker: no anonymous clients, one login per
                                         dock, each dock writes only its own topics, the
                                         client id is the login (a dock's login cannot
                                         knock another dock off), TLS for mqtts://
OUT/broker/ca.key, ca.crt                the clinic's CA (mqtts://; its key stays here)
OUT/broker/broker.key, broker.crt        the broker's certificate, for the broker's host
OUT/docks/<dock>/clinic-ca.crt           the CA a dock trusts the broker by (tls_ca_file)
OUT/keys/<dock>.pub                      the clinic's key ring, copied to every dock
OUT/docks/<dock>/fleet.key               that dock's signing key (stays on that dock)
OUT/docks/<dock>/broker-password         that dock's broker password (stays on that dock)
OUT/docks/<dock>/fleet.toml              that dock's [fleet] table, to paste in its config

Running it again with more docks adds them; an existing dock's key and password are kept.
"""
from __future__ import annotations

import base64
import hashlib
import os
import secrets
from pathlib import Path

from appliance.fleet import keys
from appliance.fleet.events import DOCK_ID
from appliance.fleet.link import PREFIX

PBKDF2_ROUNDS = 101  # what mosquitto_passwd writes for its $7$ (PBKDF2-SHA512) format


def mosquitto_password_line(user: str, password: str) -> str:
    """A mosquitto 2 password-file line, as `mosquitto_passwd` writes it."""
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ROUNDS)
    return (f"{user}:$7${PBKDF2_ROUNDS}${base64.b64encode(salt).decode()}$"
            f"{base64.b64encode(digest).decode()}")


def acl_lines(dock_id: str) -> list[str]:
    return [f"user {dock_id}", f"topic read {PREFIX}/#",
            f"topic write {PREFIX}/events/{dock_id}", f"topic write {PREFIX}/presence/{dock_id}",
            f"topic write {PREFIX}/catchup/{dock_id}", f"topic write {PREFIX}/replay/{dock_id}/#", ""]


def broker_conf(folder: Path, port: int, *, persistence: bool = True, tls: bool = False) -> str:
    return "\n".join([
        "# pen-dock clinic broker (written by `pendock fleet provision`)",
        "per_listener_settings false",
        f"listener {port}",
        *([f"cafile {folder / 'ca.crt'}", f"certfile {folder / 'broker.crt'}",
           f"keyfile {folder / 'broker.key'}", "tls_version tlsv1.2"] if tls else []),
        "allow_anonymous false",
        # The client id is the dock's login: a dock (or a thief of its password) connecting
        # with another dock's client id cannot disconnect that dock (S9).
        "use_username_as_clientid true",
        f"password_file {folder / 'passwd'}",
        f"acl_file {folder / 'acl'}",
        # The docks never send more than a catch-up batch; larger is refused at the broker.
        "max_packet_size 1100000",
        # The docks do not depend on it (outbox and catch-up), but it keeps retained presence.
        f"persistence {'true' if persistence else 'false'}",
        "",
    ])


def provision(out: Path, docks: list[str], broker_url: str, *, port: int = 1883,
              persistence: bool = True) -> list[str]:
    """Write or extend a clinic's files; return the docks newly added. An `mqtts://`
    broker gets the clinic's CA (made once) and a certificate for its host."""
    from appliance import certs
    from appliance.fleet.settings import parse_broker

    tls = parse_broker(broker_url).tls
    bad = [d for d in docks if not DOCK_ID.fullmatch(d)]
    if bad:
        raise ValueError(f"{', '.join(bad)}: a dock id is lower-case letters, digits and '-', "
                         f"at most 32 characters (e.g. room-1)")
    out = Path(out).resolve()
    broker, ring = out / "broker", out / "keys"
    broker.mkdir(parents=True, exist_ok=True)
    if tls:
        certs.make_ca(broker, "pen-dock clinic CA")
        certs.issue(broker, broker / "broker.key", broker / "broker.crt", [parse_broker(broker_url).host])
    added = []
    for dock in docks:
        home = out / "docks" / dock
        key_file, password_file = home / "fleet.key", home / "broker-password"
        if key_file.exists():
            continue
        home.mkdir(parents=True, exist_ok=True)
        os.chmod(home, 0o700)
        key = keys.new_private_key(key_file)
        keys.write_public(ring, dock, key)
        password = secrets.token_urlsafe(24)
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(password + "\n")
        with open(broker / "passwd", "a", encoding="ascii") as handle:
            handle.write(mosquitto_password_line(dock, password) + "\n")
        (home / "fleet.toml").write_text(
            "[fleet]\n"
            f'broker = "{broker_url}"\n'
            f'dock_id = "{dock}"\n'
            f'username = "{dock}"\n'
            f'password_file = "{password_file}"\n'
            f'key_file = "{key_file}"\n'
            f'keys_dir = "{ring}"\n'
            + (f'tls_ca_file = "{home / "clinic-ca.crt"}"\n' if tls else "")
            + "stale_after_minutes = 10\n", encoding="utf-8")
        added.append(dock)
    if tls:
        for home in (out / "docks").iterdir():
            (home / "clinic-ca.crt").write_bytes((broker / "ca.crt").read_bytes())
    every = sorted(p.stem for p in ring.glob("*.pub"))
    (broker / "acl").write_text(
        "# pen-dock: each dock reads the clinic's topics and writes only its own\n"
        + "\n".join(line for dock in every for line in acl_lines(dock)), encoding="ascii")
    os.chmod(broker / "passwd", 0o600)
    (broker / "mosquitto.conf").write_text(broker_conf(broker, port, persistence=persistence, tls=tls),
                                           encoding="ascii")
    return added
