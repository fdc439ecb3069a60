"""The release slots: /opt/pendock/releases/<version>/ beside each other, and two links.

`current` names the running release, `previous` the one kept for rollback; both are
relative symlinks (releases/V) replaced by rename, so a power cut leaves one or the
other whole, never neither. A release is complete once its `.complete` file exists
(written last); anything else in releases/ is a leftover and may go.
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

COMPLETE = ".complete"


@dataclass(frozen=True)
class Layout:
    root: Path

    @property
    def app(self) -> Path:
        return self.root / "opt/pendock"

    @property
    def releases(self) -> Path:
        return self.app / "releases"

    @property
    def keys_dir(self) -> Path:
        return self.root / "etc/pendock/release-keys"

    def release(self, version: str) -> Path:
        return self.releases / version

    def link(self, name: str) -> Path:
        return self.app / name

    def pointed(self, name: str) -> str | None:
        """The version `current` or `previous` names, None when the link is absent."""
        try:
            target = os.readlink(self.link(name))
        except (FileNotFoundError, OSError):
            return None
        return Path(target).name

    def running(self) -> str | None:
        return self.pointed("current")

    def previous(self) -> str | None:
        return self.pointed("previous")

    def complete(self, version: str) -> bool:
        return (self.release(version) / COMPLETE).is_file()

    def installed(self) -> list[str]:
        if not self.releases.is_dir():
            return []
        return sorted(p.name for p in self.releases.iterdir() if p.is_dir() and self.complete(p.name))

    def point(self, name: str, version: str | None) -> None:
        """Make `name` (current, previous) name releases/<version>, atomically; None removes it."""
        link = self.link(name)
        if version is None:
            link.unlink(missing_ok=True)
        else:
            fresh = link.with_name(f".{name}.new")
            fresh.unlink(missing_ok=True)
            os.symlink(f"releases/{version}", fresh)
            os.replace(fresh, link)
        _sync_dir(self.app)

    def remove_release(self, version: str) -> None:
        shutil.rmtree(self.release(version), ignore_errors=True)

    def prune(self) -> list[str]:
        """Remove every release but `current` and `previous` (and leftovers); returns them."""
        keep = {self.running(), self.previous()}
        gone = [p.name for p in self.releases.iterdir() if p.name not in keep] if self.releases.is_dir() else []
        for name in gone:
            self.remove_release(name)
        return sorted(gone)


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
