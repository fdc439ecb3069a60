"""`GET /ca` and `GET /ca.crt`: the dock's own CA, to enrol a clinic tablet once (open, no
login, and served over plain HTTP too: it is what makes HTTPS trusted). The fingerprint is
shown as the tablets show it, in groups, and spelt out, to be compared before installing.

The CA is read from PENDOCK_TLS_DIR (default /etc/pendock/tls, made by `pendock tls init`)."""
from __future__ import annotations

import os
from pathlib import Path

from flask import Blueprint, Response, render_template, request

from appliance.page.replies import page_error

bp = Blueprint("enrol", __name__)
DIGITS = {"0": "zero", "1": "one", "2": "two", "3": "three", "4": "four", "5": "five", "6": "six",
          "7": "seven", "8": "eight", "9": "nine", "A": "A", "B": "B", "C": "C", "D": "D", "E": "E", "F": "F"}


def ca_path() -> Path:
    return Path(os.environ.get("PENDOCK_TLS_DIR") or "/etc/pendock/tls") / "ca.crt"


def fingerprint_of(pem: bytes) -> str:
    """AB:CD:... (SHA-256 of the certificate's DER), as browsers and tablets show it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    return x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex(":").upper()


def in_words(fingerprint: str) -> str:
    """The first 8 bytes spelt out, to read aloud over the phone ("A seven, one F, ...")."""
    pairs = fingerprint.split(":")[:8]
    return ", ".join(" ".join(DIGITS[c] for c in pair) for pair in pairs) + ", ..."


def _ca() -> bytes | None:
    try:
        return ca_path().read_bytes()
    except OSError:
        return None


@bp.get("/ca")
def ca():
    pem = _ca()
    if pem is None:
        return page_error(f"This dock has no CA at {ca_path()}: the technician makes it with "
                          f"`pendock tls init` (the installer does).", 404)
    fingerprint = fingerprint_of(pem)
    pairs = fingerprint.split(":")
    groups = [":".join(pairs[n:n + 8]) for n in range(0, len(pairs), 8)]
    return render_template("ca.html", groups=groups, words=in_words(fingerprint),
                           host=request.host.split(":")[0] if request.host else "the dock")


@bp.get("/ca.crt")
def ca_certificate():
    pem = _ca()
    if pem is None:
        return page_error(f"This dock has no CA at {ca_path()}.", 404)
    return Response(pem, mimetype="application/x-x509-ca-cert",
                    headers={"Content-Disposition": "attachment; filename=pen-dock-ca.crt"})
