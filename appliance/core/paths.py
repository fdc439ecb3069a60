"""Where the dock keeps its record and its control socket.

As the README says: data in /var/lib/pendock or PENDOCK_DATA (or --data); config from
--config, PENDOCK_CONFIG or /etc/pendock/pendock.toml. A simulated dock started without
--data keeps its record in the user's state folder and leaves a link to its socket where
`pendock sim` and `pendock status` look, so the README's two commands need no flags.
"""
from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

SYSTEM_DATA = Path("/var/lib/pendock")
SYSTEM_SOCKET = Path("/run/pendock/control.sock")
DB_NAME = "pendock.db"
SOCKET_NAME = "control.sock"
# The dock's own clock offset for this boot, where it may not step the system clock.
CLOCK_OFFSET_NAME = "clock-offset.json"
VOUCHED_NAME = "vouched-time.json"  # the dock's vouched time, kept beside (never in) the record


def demo_data_dir(environ: Mapping[str, str] = os.environ) -> Path:
    state_home = environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state_home) / "pendock-demo"


def demo_socket_link(environ: Mapping[str, str] = os.environ) -> Path:
    """A per-user link to the running demo's socket (in the runtime folder, or /tmp)."""
    runtime = environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) if runtime and Path(runtime).is_dir() else Path("/tmp")
    return base / f"pendock-demo-{os.getuid()}.sock"


def data_dir(cli_value: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """--data, else PENDOCK_DATA, else /var/lib/pendock."""
    if cli_value:
        return Path(cli_value)
    if environ.get("PENDOCK_DATA"):
        return Path(environ["PENDOCK_DATA"])
    return SYSTEM_DATA


def socket_path(cli_data: str | None, environ: Mapping[str, str] = os.environ) -> Path:
    """The control socket a client should use.

    PENDOCK_SOCKET wins; an explicit data folder (flag or env) means its control.sock;
    otherwise the installed dock's socket, else a running demo's link.
    """
    if environ.get("PENDOCK_SOCKET"):
        return Path(environ["PENDOCK_SOCKET"])
    if cli_data or environ.get("PENDOCK_DATA"):
        return data_dir(cli_data, environ) / SOCKET_NAME
    if SYSTEM_SOCKET.exists():
        return SYSTEM_SOCKET
    link = demo_socket_link(environ)
    if link.is_symlink() or link.exists():
        return trusted_demo_socket(link)
    return SYSTEM_SOCKET


class UntrustedSocket(ValueError):
    """A demo socket link that another user could have planted: not used."""


def trusted_demo_socket(link: Path, uid: int | None = None) -> Path:
    """The socket a demo's link points to, once it is certain to be this user's own demo.

    The link lives in /tmp when there is no runtime folder, where any local user can put a
    file of that name first: a fake daemon would then receive what the CLI sends (a new
    user's password hash). So the link must be a symbolic link owned by this user, and
    the socket it names a socket owned by this user, in a folder owned by this user that
    no one else may write. Raises UntrustedSocket saying what was wrong."""
    uid = os.getuid() if uid is None else uid
    fix = f"remove {link} if it is not yours, or pass --data DIR of your demo"
    try:
        info = link.lstat()
        if not stat.S_ISLNK(info.st_mode) or info.st_uid != uid:
            raise UntrustedSocket(f"{link} is not a link made by your demo (owner uid {info.st_uid}, "
                                  f"not a symbolic link or not yours): not used; {fix}")
        target = Path(os.path.realpath(link))
        target_info = target.lstat()
        folder_info = target.parent.lstat()
    except FileNotFoundError:
        raise UntrustedSocket(f"{link} names a socket that is gone (a demo that stopped?): "
                              f"start `pendock demo` again, or {fix}") from None
    except OSError as error:
        raise UntrustedSocket(f"{link} cannot be checked ({error.strerror}): not used; {fix}") from None
    if not stat.S_ISSOCK(target_info.st_mode) or target_info.st_uid != uid:
        raise UntrustedSocket(f"{link} points to {target}, which is not a socket of yours "
                              f"(owner uid {target_info.st_uid}): not used; {fix}")
    if folder_info.st_uid != uid or folder_info.st_mode & 0o022:
        raise UntrustedSocket(f"{link} points into {target.parent}, a folder others may write or "
                              f"that is not yours: not used; {fix}")
    return target


class UnusableDataDir(ValueError):
    """A --data folder the dock cannot keep its record in; the message says why."""


_KERNEL_FOLDERS = (Path("/proc"), Path("/sys"), Path("/dev"))


def usable_data_dir(path: Path) -> Path:
    """`path` made ready as a data folder (created 0700 if missing), or UnusableDataDir
    in one plain line: a file, a kernel folder (/proc, /sys, /dev), or a folder that
    cannot be made."""
    path = Path(path)
    absolute = Path(os.path.abspath(path))
    if any(absolute == k or k in absolute.parents for k in _KERNEL_FOLDERS):
        raise UnusableDataDir(f"--data {path}: {absolute.parts[1] and '/' + absolute.parts[1]} is the kernel's, "
                              f"not a place for the record; choose a folder of your own, e.g. ~/pendock-data")
    if path.exists() and not path.is_dir():
        raise UnusableDataDir(f"--data {path} is a file, not a folder: choose a folder for the record "
                              f"(it is made if missing), e.g. ~/pendock-data")
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise UnusableDataDir(f"--data {path}: cannot make the folder ({error.strerror}); choose one "
                              f"you may write, e.g. ~/pendock-data") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UnusableDataDir(f"--data {path}: this user may not write there; choose a folder you may "
                              f"write, e.g. ~/pendock-data")
    return path
