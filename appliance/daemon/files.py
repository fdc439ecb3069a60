"""Who may read the data folder: the daemon's user alone, and on an installed dock the
page through the folder's group, read-only (quality bar S6).

The record holds the users' password hashes and the API tokens' hashes, so it is never
readable by other users, nor writable by a group. The installer makes /var/lib/pendock
setgid (2750, group pendock, whose only member is the page): there the files are 0640.
That folder's own mode is root's: the daemon's unit has RestrictSUIDSGID=yes, whose
seccomp filter refuses any chmod carrying the setgid bit, so the daemon never sets it and
only names a folder found wider than 2750 (systemd/README.md, "The data folder's mode").
Anywhere else (a demo's folder, a test's) nobody else has a reason to read it: 0700 and
0600. Backups are 0600 in a 0700 folder everywhere: the page never reads them.
"""
from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

BACKUPS = "backups"
SHARED_FOLDER_MODE = 0o2750
log = logging.getLogger(__name__)


def folder_modes(shared_with_group: bool) -> tuple[int, int]:
    """(folder mode, file mode) for the data folder."""
    return (SHARED_FOLDER_MODE, 0o640) if shared_with_group else (0o700, 0o600)


def secure_data_folder(data_dir: Path) -> None:
    """Tighten the data folder and the files in it (an older release left them readable
    by all, and group-writable); a folder that is not ours is left alone."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = data_dir.stat()
    if info.st_uid != os.geteuid():
        return
    shared = bool(info.st_mode & stat.S_ISGID)
    folder_mode, file_mode = folder_modes(shared)
    if not shared:
        os.chmod(data_dir, folder_mode)
    elif stat.S_IMODE(info.st_mode) & ~SHARED_FOLDER_MODE:
        log.warning("data folder %s has mode %o, wider than %o (group-writable or open to others); "
                    "the daemon may not set a setgid mode (RestrictSUIDSGID): run "
                    "`sudo hw/install.sh` again, or `sudo chmod 2750 %s`",
                    data_dir, stat.S_IMODE(info.st_mode), SHARED_FOLDER_MODE, data_dir)
    _tighten_files(data_dir, file_mode)
    backups = data_dir / BACKUPS
    if backups.is_dir() and not backups.is_symlink() and backups.stat().st_uid == os.geteuid():
        os.chmod(backups, 0o700)
        _tighten_files(backups, 0o600)


def _tighten_files(folder: Path, mode: int) -> None:
    for entry in os.scandir(folder):
        if entry.is_file(follow_symlinks=False) and entry.stat(follow_symlinks=False).st_uid == os.geteuid():
            os.chmod(entry.path, mode)


def create_private_file(path: Path) -> None:
    """Create `path` empty, 0600, refusing to follow a link or to replace anything there."""
    os.close(open_private_file(path))


def open_private_file(path: Path) -> int:
    """A descriptor of `path`, made here and now, 0600: never a link, never a file that was
    there. Write through it (not the path again, which a symlink could replace meanwhile)."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def copy_into(source: Path, fd: int) -> None:
    """`source`'s bytes into the descriptor, on disk when this returns."""
    with open(source, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            view = memoryview(block)
            while view:
                view = view[os.write(fd, view):]
    os.fsync(fd)


def remove_if_same(path: Path, fd: int) -> None:
    """Remove `path` only if it is still the file behind `fd` (not one swapped in since)."""
    try:
        if os.path.samestat(os.stat(path, follow_symlinks=False), os.fstat(fd)):
            path.unlink()
    except OSError:
        pass
