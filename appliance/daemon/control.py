"""The daemon's control socket: a few documented commands, JSON lines over a Unix socket.

The daemon owns the GPIO and the record; the page and the CLI ask it for things through
here. Who asks is taken from the kernel (SO_PEERCRED), not from the request, so the
audit trail names the real OS user; technician commands need root, the daemon's own
user, or the technicians' group.
"""
from __future__ import annotations

import grp
import json
import os
import pwd
import socket
import socketserver
import struct
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

TECHNICIANS_GROUP = "pendock-tech"
MAX_REQUEST_BYTES = 64 * 1024


class ControlError(Exception):
    """A command that did not go through; `kind` maps to the CLI's exit status."""

    kind = "usage"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind:
            self.kind = kind


class Refused(ControlError):
    """A rule or the state of the dock says no (exit 1)."""

    kind = "refused"


class BadRequest(ControlError):
    """The request itself is wrong (exit 2)."""

    kind = "usage"


class Denied(ControlError):
    """The caller may not use this command (exit 2, nothing done)."""

    kind = "denied"


class DaemonUnavailable(ControlError):
    """No daemon answers on the socket (exit 2)."""

    kind = "unavailable"


_KINDS = {"refused": Refused, "usage": BadRequest, "denied": Denied, "unavailable": DaemonUnavailable}


@dataclass(frozen=True)
class Peer:
    """Who is on the other end of a connection, as the kernel says."""

    uid: int
    gid: int
    pid: int
    user: str
    technician: bool
    via: str = ""  # the SSH client, or the page's logged-in user, as the client says

    @property
    def actor(self) -> str:
        return f"{self.user} ({self.via})" if self.via else self.user


def _user_name(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def _is_technician(uid: int, gid: int, user: str) -> bool:
    if uid in (0, os.getuid()):
        return True
    try:
        tech_gid = grp.getgrnam(TECHNICIANS_GROUP).gr_gid
    except KeyError:
        return False
    try:
        return tech_gid in os.getgrouplist(user, gid)
    except (KeyError, OSError):
        return False


def peer_of(sock: socket.socket, via: str = "") -> Peer:
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, gid = struct.unpack("3i", creds)
    user = _user_name(uid)
    return Peer(uid, gid, pid, user, _is_technician(uid, gid, user), str(via)[:120])


Handler = Callable[[dict, Peer], object]


@dataclass
class _Command:
    handler: Handler
    technician: bool
    errors: dict


class ControlServer:
    """Serves registered commands on a Unix socket, one thread per connection."""

    def __init__(self, path: Path, *, group: str | None = None, mode: int = 0o660):
        self.path = Path(path)
        self.group = group
        self.mode = mode
        self.commands: dict[str, _Command] = {}
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None

    def register(self, name: str, handler: Handler, *, technician: bool = False, errors: dict | None = None) -> None:
        """Add a command. `errors` maps exception types to a ControlError kind."""
        self.commands[name] = _Command(handler, technician, dict(errors or {}))

    def dispatch(self, request: dict, peer: Peer) -> dict:
        """One request to one response; never raises."""
        name = request.get("cmd")
        command = self.commands.get(name) if isinstance(name, str) else None
        if command is None:
            known = ", ".join(sorted(self.commands))
            return _failure(BadRequest(f"unknown command {name!r}; this daemon knows: {known}"))
        if command.technician and not peer.technician:
            return _failure(Denied(
                f"{name} is for technicians: {peer.user} is not root nor in the "
                f"{TECHNICIANS_GROUP} group (ask the clinic's administrator to add you)"
            ))
        args = request.get("args") or {}
        if not isinstance(args, dict):
            return _failure(BadRequest("args must be a JSON object"))
        try:
            return {"ok": True, "result": command.handler(args, peer)}
        except ControlError as error:
            return _failure(error)
        except Exception as error:  # mapped domain errors, or a bug: never kill the server
            for kind_type, kind in command.errors.items():
                if isinstance(error, kind_type):
                    return _failure(ControlError(str(error), kind))
            if isinstance(error, ValueError):
                return _failure(BadRequest(str(error)))
            return _failure(ControlError(f"{name} failed inside the daemon: {error!r}", "error"))

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        server_self = self

        class _Handler(socketserver.StreamRequestHandler):
            def handle(self):
                while True:
                    line = self.rfile.readline(MAX_REQUEST_BYTES + 1)
                    if not line:
                        return
                    if len(line) > MAX_REQUEST_BYTES:
                        reply = _failure(BadRequest("request too large"))
                    else:
                        try:
                            request = json.loads(line)
                            if not isinstance(request, dict):
                                raise ValueError("not an object")
                        except ValueError:
                            reply = _failure(BadRequest("a request is one JSON object on one line"))
                        else:
                            peer = peer_of(self.connection, request.get("via", ""))
                            reply = server_self.dispatch(request, peer)
                    self.wfile.write(json.dumps(reply, default=str).encode() + b"\n")
                    self.wfile.flush()

        class _Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True

        old_umask = os.umask(0o117)
        try:
            self._server = _Server(str(self.path), _Handler)
        finally:
            os.umask(old_umask)
        os.chmod(self.path, self.mode)
        if self.group:
            try:
                os.chown(self.path, -1, grp.getgrnam(self.group).gr_gid)
            except (KeyError, PermissionError):
                pass  # no such group here (a demo): the mode still limits it to our user
        self._thread = threading.Thread(target=self._server.serve_forever, name="control", daemon=True)
        self._thread.start()

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def _failure(error: ControlError) -> dict:
    return {"ok": False, "error": error.kind, "message": str(error)}


class ControlClient:
    """Talks to the daemon: `call('status')` returns the result or raises ControlError."""

    def __init__(self, path: Path, *, timeout: float = 10.0, via: str = ""):
        self.path = Path(path)
        self.timeout = timeout
        self.via = via

    def call(self, cmd: str, **args) -> object:
        request = json.dumps({"cmd": cmd, "args": args, "via": self.via}).encode() + b"\n"
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.path))
                sock.sendall(request)
                with sock.makefile("rb") as reader:
                    line = reader.readline()
        except (FileNotFoundError, ConnectionRefusedError):
            raise DaemonUnavailable(
                f"no pen-dock daemon answers at {self.path}: start it (`pendock demo`, or "
                f"`systemctl start pendock` on a dock), or point --data/PENDOCK_DATA at its data folder"
            ) from None
        except PermissionError:
            raise Denied(
                f"no permission to use {self.path}: technicians must be in the "
                f"{TECHNICIANS_GROUP} group (or use sudo)"
            ) from None
        except (socket.timeout, OSError) as error:
            raise DaemonUnavailable(f"the daemon at {self.path} did not answer: {error}") from None
        if not line:
            raise DaemonUnavailable(f"the daemon at {self.path} closed the connection without an answer")
        reply = json.loads(line)
        if reply.get("ok"):
            return reply.get("result")
        raise _KINDS.get(reply.get("error"), ControlError)(reply.get("message", "failed"), reply.get("error"))
