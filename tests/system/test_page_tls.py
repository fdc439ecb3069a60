"""S8 over TLS: `pendock demo --tls` serves the page over HTTPS with the dock's own CA
(nginx in front of waitress, appliance/front.py) on loopback; HTTP redirects to it except
/healthz and /ca; the CA and its fingerprint are at /ca; cookies are Secure; the front
keeps the body cap. Needs Debian's nginx (make test installs nginx-light)."""
from __future__ import annotations

import http.client
import shutil
import ssl
import time
from pathlib import Path

import pytest

from tests.support.demo import DemoProcess

pytestmark = pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                reason="needs Debian's nginx (make test installs nginx-light)")


@pytest.fixture(scope="module")
def tls_demo(tmp_path_factory):
    demo = DemoProcess(tmp_path_factory.mktemp("tls") / "data")
    demo.demo_args = ["--tls"]
    demo.start(60)
    yield demo
    demo.stop()


def trusting(demo) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(demo.data / "tls" / "ca.crt"))


def get(demo, path, *, tls=True, context=None, method="GET", body=None, headers=None):
    if tls:
        conn = http.client.HTTPSConnection("127.0.0.1", demo.port, timeout=10, context=context or trusting(demo))
    else:
        conn = http.client.HTTPConnection("127.0.0.1", demo.port + 1, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    response = conn.getresponse()
    data = response.read()
    conn.close()
    return response, data


def test_the_page_is_https_with_the_docks_ca_and_its_cookie_is_secure(tls_demo):
    response, body = get(tls_demo, "/healthz")
    assert response.status == 200 and b'"ok":true' in body.replace(b" ", b"")
    response, _ = get(tls_demo, "/login")
    assert response.status == 200 and "Secure" in response.getheader("Set-Cookie", "")
    assert response.getheader("Strict-Transport-Security") is None  # not before the tablets trust the CA
    assert any("https://127.0.0.1:" in line for line in tls_demo.printed)


def test_a_client_that_does_not_trust_the_docks_ca_is_refused(tls_demo):
    with pytest.raises(ssl.SSLCertVerificationError):
        get(tls_demo, "/healthz", context=ssl.create_default_context())


def test_http_redirects_except_healthz_and_the_ca(tls_demo):
    response, _ = get(tls_demo, "/?date=2026-12-01", tls=False)
    assert response.status == 301
    assert response.getheader("Location") == f"https://127.0.0.1:{tls_demo.port}/?date=2026-12-01"
    response, _ = get(tls_demo, "/login", tls=False, method="POST", body=b"name=x")
    assert response.status == 301  # a password never goes over HTTP to the page
    assert get(tls_demo, "/healthz", tls=False)[0].status == 200
    response, page = get(tls_demo, "/ca", tls=False)
    assert response.status == 200
    served, pem = get(tls_demo, "/ca.crt", tls=False)
    assert pem == (tls_demo.data / "tls" / "ca.crt").read_bytes()
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    fingerprint = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex(":").upper()
    assert fingerprint[:23].encode() in page and b"In words:" in page


def test_the_front_keeps_the_body_cap(tls_demo):
    started = time.monotonic()
    response, _ = get(tls_demo, "/login", method="POST", body=b"a" * (64 * 1024 * 1024),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 413 and time.monotonic() - started < 30


def test_the_installed_form_is_a_valid_include_for_debians_nginx(tls_demo, tmp_path):
    """What hw/tls-setup.sh puts in /etc/nginx/conf.d/, inside a copy of Debian's http block."""
    import subprocess

    from appliance.front import nginx_conf

    include = tmp_path / "pendock.conf"
    include.write_text(nginx_conf(tls_demo.data / "tls", upstream=8080, https_port=18443, http_port=18080,
                                  listen="127.0.0.1", include=True))
    main = tmp_path / "nginx.conf"
    main.write_text(f"pid {tmp_path / 'nginx.pid'};\nerror_log {tmp_path / 'error.log'};\nevents {{}}\n"
                    f"http {{\n sendfile on;\n ssl_protocols TLSv1 TLSv1.1 TLSv1.2 TLSv1.3;\n"
                    f" ssl_prefer_server_ciphers on;\n gzip on;\n include {include};\n}}\n")
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    checked = subprocess.run([nginx, "-t", "-c", str(main), "-p", str(tmp_path)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_the_installer_makes_the_docks_ca_and_certificate(tmp_path):
    """hw/tls-setup.sh (called by hw/install.sh) into a scratch root: the CA and the page's
    certificate for the dock's names, the keys readable by root alone; run again, the CA stays."""
    import stat
    import subprocess
    import sys

    from cryptography import x509

    repo = Path(__file__).resolve().parents[2]
    bin_dir = tmp_path / "root" / "opt" / "pendock" / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "pendock").symlink_to(Path(sys.executable).with_name("pendock"))
    for run in range(2):
        done = subprocess.run(["bash", str(repo / "hw" / "tls-setup.sh"), str(tmp_path / "root")],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        tls = tmp_path / "root" / "etc" / "pendock" / "tls"
        if run == 0:
            first_ca = (tls / "ca.crt").read_bytes()
    assert (tls / "ca.crt").read_bytes() == first_ca
    assert all(stat.S_IMODE((tls / key).stat().st_mode) == 0o600 for key in ("ca.key", "dock.key"))
    served = x509.load_pem_x509_certificate((tls / "dock.crt").read_bytes())
    names = served.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    import socket

    assert socket.gethostname() in names.get_values_for_type(x509.DNSName)
    assert "CA SHA-256 fingerprint" in done.stdout


def test_tls_init_into_a_folder_it_cannot_write_says_so_in_one_line(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "appliance", "tls", "init", "--dir", "/proc/no-such"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "give --dir a folder you may write" in done.stderr
