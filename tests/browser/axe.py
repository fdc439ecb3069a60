"""axe-core for the browser tests, fetched from the npm registry at test time (never kept in
the repository): `npm pack axe-core@AXE_VERSION` into a cache folder, then only its
axe.min.js (MPL-2.0) is unpacked there and injected into each page by the tests."""
from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
from pathlib import Path

AXE_VERSION = "4.14.1"
CACHE = Path(os.environ.get("PENDOCK_AXE_CACHE") or Path.home() / ".cache" / "pendock" / f"axe-core-{AXE_VERSION}")
# Rules axe runs: WCAG 2.0/2.1 A and AA, and its best practices (label-content-name-mismatch
# is an experimental rule axe runs only when asked: it is asked for here).
RUN_OPTIONS = {"runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]},
               "rules": {"label-content-name-mismatch": {"enabled": True}}}


class AxeMissing(RuntimeError):
    """axe-core could not be fetched; the message says why."""


def axe_script() -> Path:
    """The path of axe.min.js, fetched once per cache folder."""
    target = CACHE / "axe.min.js"
    if target.is_file():
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise AxeMissing("npm is missing (apt-get install -y npm): it fetches axe-core for the accessibility tests")
    CACHE.mkdir(parents=True, exist_ok=True)
    result = subprocess.run([npm, "pack", f"axe-core@{AXE_VERSION}", "--silent", "--pack-destination", str(CACHE)],
                            capture_output=True, text=True, timeout=180)
    tarballs = sorted(CACHE.glob("axe-core-*.tgz"))
    if result.returncode != 0 or not tarballs:
        raise AxeMissing(f"npm pack axe-core@{AXE_VERSION} failed: {result.stderr.strip()[-400:]}")
    with tarfile.open(tarballs[-1]) as archive:
        member = archive.getmember("package/axe.min.js")
        data = archive.extractfile(member).read()
    partial = target.with_suffix(".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def violations(page) -> list[dict]:
    """axe's violations on the page as it is now (axe injected by the context's init script)."""
    found = page.evaluate("""options => axe.run(document, options).then(result => result.violations.map(v => ({
        id: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.map(n => n.target.join(' ') + ': ' + n.failureSummary)
    })))""", RUN_OPTIONS)
    return found


def describe(found: list[dict]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']}\n    " + "\n    ".join(v["nodes"][:5]) for v in found)
