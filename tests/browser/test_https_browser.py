"""S8 in Debian's Chromium over HTTPS (`pendock demo --tls`, nginx in front): with the
dock's CA trusted (in the NSS database Chromium reads, as a tablet's store), the page
loads with no warning and the login cookie is Secure; a browser that does not trust it yet
is stopped at HTTPS, enrols from http://DOCK/ca (the fingerprint it shows is the CA's),
and then reaches the page."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, DEMO_PASSWORD
from tests.support.demo import DemoProcess

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(shutil.which("certutil") is None,
                                 reason="needs certutil (apt-get install libnss3-tools; make test does)"),
              pytest.mark.skipif(shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
                                 reason="needs Debian's nginx (make test installs nginx-light)")]


@pytest.fixture(scope="module")
def tls_demo(tmp_path_factory):
    dock = DemoProcess(tmp_path_factory.mktemp("https") / "data", runtime=tmp_path_factory.mktemp("run"),
                       data_flag=True)
    dock.demo_args = ["--tls"]
    dock.start(timeout=60)
    try:
        yield dock
    finally:
        dock.stop()


def trust(home: Path, ca: Path) -> None:
    """The CA installed as a tablet's user would: in Chromium's NSS database under HOME."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True, exist_ok=True)
    if not (db / "cert9.db").exists():
        subprocess.run(["certutil", "-d", f"sql:{db}", "-N", "--empty-password"], check=True, capture_output=True)
    subprocess.run(["certutil", "-d", f"sql:{db}", "-A", "-t", "C,,", "-n", "pen-dock CA", "-i", str(ca)],
                   check=True, capture_output=True)


def browser_at(home: Path):
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    chromium = manager.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                       env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    return manager, chromium


def test_with_the_docks_ca_trusted_the_page_loads_over_https_and_its_cookie_is_secure(tls_demo, tmp_path):
    trust(tmp_path, tls_demo.data / "tls" / "ca.crt")
    manager, chromium = browser_at(tmp_path)
    try:
        context = chromium.new_context()
        page = context.new_page()
        base = f"https://127.0.0.1:{tls_demo.port}"
        response = page.goto(base + "/")
        assert response.ok and page.url.startswith(base + "/login")
        page.fill("#name", "demo")
        page.fill("#password", DEMO_PASSWORD)
        page.click("form button[type=submit]")
        page.wait_for_selector("#live")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["pendock_session"]["secure"] and cookies["pendock_session"]["httpOnly"]
        page.goto(f"http://127.0.0.1:{tls_demo.port + 1}/?x=1")  # plain HTTP: sent on to HTTPS
        assert page.url.startswith(base + "/")
    finally:
        chromium.close()
        manager.stop()


def test_a_tablet_enrols_from_the_ca_page_then_reaches_https(tls_demo, tmp_path):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes

    base = f"https://127.0.0.1:{tls_demo.port}"
    manager, chromium = browser_at(tmp_path)
    try:
        context = chromium.new_context()
        stopped = context.new_page()
        with pytest.raises(Exception, match="ERR_CERT_AUTHORITY_INVALID"):
            stopped.goto(base + "/")
        stopped.close()  # its error page loads on its own: the enrolment goes in a tab of its own
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{tls_demo.port + 1}/ca")
        shown = page.inner_text("#fingerprint").replace("\n", ":").strip(":")
        with page.expect_download() as download:
            page.click("text=Download the dock's CA")
        saved = tmp_path / "pen-dock-ca.crt"
        download.value.save_as(saved)
        fingerprint = x509.load_pem_x509_certificate(saved.read_bytes()).fingerprint(hashes.SHA256()).hex(":").upper()
        assert shown == fingerprint  # what the tablet is told to compare before installing
    finally:
        chromium.close()
        manager.stop()
    trust(tmp_path, saved)  # the tablet's user installs it
    manager, chromium = browser_at(tmp_path)
    try:
        page = chromium.new_context().new_page()
        assert page.goto(base + "/").ok
    finally:
        chromium.close()
        manager.stop()
