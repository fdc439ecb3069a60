"""Drive the power-cut filesystem (powercut_fs.py) from a test: mount, cut, boot again."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

FS_SCRIPT = Path(__file__).with_name("powercut_fs.py")


def fuse_unavailable() -> str | None:
    """Why FUSE cannot be used here, or None when it can (for pytest.skip)."""
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as error:
        return f"mfusepy cannot load ({error}): pip install mfusepy; apt-get install fuse3"
    if not os.path.exists("/dev/fuse"):
        return "/dev/fuse is missing: this machine cannot mount FUSE filesystems"
    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return "fusermount is missing: apt-get install fuse3"
    return None


class PowerCutDisk:
    """A mount point whose unsynced writes are lost at `cut()`; `boot()` mounts what survived."""

    def __init__(self, mountpoint: Path, state_file: Path):
        self.mountpoint = Path(mountpoint)
        self.state_file = Path(state_file)
        self.process: subprocess.Popen | None = None
        self.cuts: list[dict] = []

    def boot(self, timeout: float = 10.0) -> None:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, str(FS_SCRIPT), str(self.mountpoint)]
        if self.state_file.exists():
            command += ["--state", str(self.state_file)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        text=True, bufsize=1)
        deadline = time.monotonic() + timeout
        while not os.path.ismount(self.mountpoint):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self._stop()
                raise RuntimeError(f"the power-cut filesystem did not mount at {self.mountpoint}")
            time.sleep(0.01)

    def _ask(self, line: str) -> dict:
        assert self.process is not None, "boot() first"
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            raise RuntimeError("the power-cut filesystem stopped answering")
        return json.loads(answer.split(" ", 1)[1])

    def stats(self) -> dict:
        return self._ask("stats")

    def read_only(self, on: bool = True) -> None:
        """The filesystem turns read-only under whoever has files open (EROFS)."""
        self._ask("ro " + ("on" if on else "off"))

    def cut(self) -> dict:
        """Power off: unsynced writes are gone; the mount is dead until `boot()`."""
        report = self._ask(f"cut {self.state_file}")
        self.cuts.append(report)
        self._stop()
        return report

    def _stop(self) -> None:
        if self.process is None:
            return
        tool = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
        subprocess.run([tool, "-u", "-z", str(self.mountpoint)], capture_output=True)
        try:
            self.process.wait(5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass
        self.process = None

    def close(self) -> None:
        self._stop()
