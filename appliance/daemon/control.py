"""The daemon's control socket: a few documented commands, JSON lines over a Unix socket.

The daemon owns the GPIO and the record; the page and the CLI ask it for things through
here. Who asks is taken from the kernel (SO_PEERCRED), not from the request, so the
audit trail names the real OS user; technician commands need root, the daemon's own
user, or the technicians' group.
"""
from __future__ import annotations

import errno
import grp
import json
import os
import pwd
import re
import resource
import socket
import socketserver
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from appliance.core.inputs import flag  # noqa: F401  (the socket's strict yes/no, for command modules)

TECHNICIANS_GROUP = "pendock-tech"
MAX_REQUEST_BYTES = 64 * 1024
MAX_DRAIN_BYTES = 1024 * 1024  # an oversize line is read to its end up to this, then the connection closes
MAX_DEPTH = 8  # no command needs more than 3 levels; 30,000 '[' must not reach the parser
READ_TIMEOUT_S = 5.0  # a whole request line must arrive within this
MAX_CONNECTIONS = 64
LISTEN_BACKLOG = 128  # the kernel caps it at net.core.somaxconn
ACCEPT_PAUSE_S = 0.05
MAX_REPLY_BYTES = 64 * 1024 * 1024


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
    return _peer(_creds(sock), via)


def may_connect(peer: Peer) -> bool:
    """Who may use the socket at all: root, the daemon's own user, its group (the page),
    and the technicians. Checked by the daemon itself, so the socket's file mode can let
    technicians in without putting them in the daemon's group, which reads the record
    (quality bar S6)."""
    if peer.technician:
        return True
    try:
        return os.getgid() in os.getgrouplist(peer.user, peer.gid)
    except (KeyError, OSError):
        return peer.gid == os.getgid()


Handler = Callable[[dict, Peer], object]


@dataclass
class _Command:
    handler: Handler
    technician: bool
    errors: dict


class ControlServer:
    """Serves registered commands on a Unix socket, one thread per connection.

    Bounded against a client that misbehaves, on purpose or not (quality bar S5): each
    request line must arrive whole within `read_timeout` seconds (an idle or trickled
    connection is closed), at most `max_connections` are served at once (beyond it the
    longest-idle connection makes room, or the newcomer is told the daemon is busy), a
    line is at most MAX_REQUEST_BYTES and MAX_DEPTH deep, and running out of descriptors
    makes the accept loop pause, never spin.
    """

    def __init__(self, path: Path, *, group: str | None = None, mode: int = 0o660,
                 read_timeout: float = READ_TIMEOUT_S, max_connections: int | None = None,
                 admit: Callable[[Peer], bool] | None = None):
        self.path = Path(path)
        self.group = group
        self.mode = mode
        self.read_timeout = read_timeout
        self.max_connections = max_connections or default_max_connections()
        self.admit = admit
        self.request_queue_size = LISTEN_BACKLOG
        self.commands: dict[str, _Command] = {}
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None
        self._open: dict[socket.socket, float | None] = {}  # connection -> idle since (None: busy)
        self._open_lock = threading.Lock()

    def register(self, name: str, handler: Handler, *, technician: bool = False, errors: dict | None = None) -> None:
        """Add a command. `errors` maps exception types to a ControlError kind."""
        self.commands[name] = _Command(handler, technician, dict(errors or {}))

    def connections(self) -> int:
        with self._open_lock:
            return len(self._open)

    def dispatch(self, request: dict, peer: Peer) -> dict:
        """One request to one response; never raises."""
        name = request.get("cmd")
        command = self.commands.get(name) if isinstance(name, str) else None
        if command is None:
            known = ", ".join(sorted(self.commands))
            return _failure(BadRequest(f"unknown command {str(name)[:40]!r}; this daemon knows: {known}"))
        if command.technician and not peer.technician:
            return _failure(Denied(
                f"{name} is for technicians: {peer.user} is not root nor in the "
                f"{TECHNICIANS_GROUP} group (ask the clinic's administrator to add you)"
            ))
        args = request.get("args")
        args = {} if args is None else args
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

    # -- connections --------------------------------------------------------------------------

    def _enter(self, conn: socket.socket) -> bool:
        """Count a new connection in; False when every slot is busy with a command."""
        with self._open_lock:
            if len(self._open) >= self.max_connections and not self._evict_idle_locked():
                return False
            self._open[conn] = time.monotonic()
            return True

    def _evict_idle_locked(self) -> bool:
        idle = [(since, conn) for conn, since in self._open.items() if since is not None]
        if not idle:
            return False
        _, oldest = min(idle, key=lambda pair: pair[0])
        self._open[oldest] = None  # its thread sees end of file and removes it
        try:
            oldest.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        return True

    def _mark(self, conn: socket.socket, idle: bool) -> None:
        with self._open_lock:
            if conn in self._open:
                self._open[conn] = time.monotonic() if idle else None

    def _leave(self, conn: socket.socket) -> None:
        with self._open_lock:
            self._open.pop(conn, None)

    def _serve_connection(self, conn: socket.socket) -> None:
        peer_creds = _creds(conn)
        if self.admit is not None and not self.admit(_peer(peer_creds)):
            _send(conn, _failure(Denied(
                f"{_user_name(peer_creds[1])} may not use the pen-dock daemon: ask the clinic's "
                f"administrator to add you to the {TECHNICIANS_GROUP} group")), self.read_timeout)
            return
        lines = _LineReader(conn, self.read_timeout)
        while True:
            self._mark(conn, idle=True)
            try:
                line = lines.next_line()
            except _Oversize as error:
                _send(conn, _failure(BadRequest(str(error))), self.read_timeout)
                if error.drained:
                    continue
                return
            if line is None:
                return
            self._mark(conn, idle=False)
            try:
                request = parse_request(line)
            except BadRequest as error:
                reply = _failure(error)
            else:
                reply = self.dispatch(request, _peer(peer_creds, request.get("via", "")))
            if not _send(conn, reply, self.read_timeout):
                return

    def _poke(self) -> None:
        """An empty connection: the listener's select returns and sees the shutdown."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as poke:
                poke.settimeout(0.2)
                poke.connect(str(self.path))
        except OSError:
            pass

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass
        owner = self

        class _Handler(socketserver.BaseRequestHandler):
            def handle(self):
                owner._serve_connection(self.request)

        class _Server(socketserver.ThreadingUnixStreamServer):
            daemon_threads = True
            block_on_close = False
            request_queue_size = owner.request_queue_size

            def get_request(self):
                try:
                    return super().get_request()
                except OSError as error:
                    if error.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                        # Out of descriptors: free the longest-idle one and pause, rather than
                        # spin on a listening socket that stays readable.
                        with owner._open_lock:
                            owner._evict_idle_locked()
                        time.sleep(ACCEPT_PAUSE_S)
                    raise

            def process_request(self, request, client_address):
                if not owner._enter(request):
                    _send(request, _failure(DaemonUnavailable(
                        f"the daemon is busy ({owner.max_connections} connections at work): try again in a moment")),
                        0.2)
                    self.shutdown_request(request)
                    return
                super().process_request(request, client_address)

            def shutdown_request(self, request):
                owner._leave(request)
                super().shutdown_request(request)

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
            stopping = threading.Thread(target=self._server.shutdown)
            stopping.start()
            while stopping.is_alive():  # wake serve_forever now, not at its next 0.5 s poll
                self._poke()
                stopping.join(0.05)
            self._server.server_close()
            self._server = None
        with self._open_lock:
            for conn in list(self._open):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass


def default_max_connections() -> int:
    """At most 64 connections, and never more than a quarter of this process's descriptors."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return MAX_CONNECTIONS
    return max(4, min(MAX_CONNECTIONS, soft // 4))


class _Oversize(Exception):
    def __init__(self, message: str, drained: bool):
        super().__init__(message)
        self.drained = drained


class _LineReader:
    """Request lines from a connection, each whole within `timeout` seconds of waiting.

    A line longer than MAX_REQUEST_BYTES is read to its newline and thrown away (up to
    MAX_DRAIN_BYTES), so its tail is never taken for a request of its own."""

    def __init__(self, conn: socket.socket, timeout: float):
        self.conn, self.timeout = conn, timeout
        self.buffer = bytearray()

    def _more(self, deadline: float) -> bytes:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("request not complete in time")
        self.conn.settimeout(left)
        return self.conn.recv(65536)

    def next_line(self) -> bytes | None:
        """The next line, None at end of file or timeout; raises _Oversize."""
        deadline = time.monotonic() + self.timeout
        try:
            while True:
                end = self.buffer.find(b"\n")
                if end >= 0:
                    if end > MAX_REQUEST_BYTES:
                        del self.buffer[:end + 1]
                        raise _Oversize(f"request too large (over {MAX_REQUEST_BYTES} bytes): nothing was done", True)
                    line = bytes(self.buffer[:end])
                    del self.buffer[:end + 1]
                    return line
                if len(self.buffer) > MAX_REQUEST_BYTES:
                    return self._drain(deadline)
                chunk = self._more(deadline)
                if not chunk:
                    return None
                self.buffer += chunk
        except OSError:  # timeout, reset, or shut down to make room
            return None

    def _drain(self, deadline: float) -> bytes | None:
        drained = len(self.buffer)
        self.buffer.clear()
        while drained <= MAX_DRAIN_BYTES:
            chunk = self._more(deadline)
            if not chunk:
                return None
            end = chunk.find(b"\n")
            if end >= 0:
                self.buffer += chunk[end + 1:]
                raise _Oversize(f"request too large (over {MAX_REQUEST_BYTES} bytes): nothing was done", True)
            drained += len(chunk)
        raise _Oversize(f"request too large (over {MAX_DRAIN_BYTES} bytes without a line end): "
                        "closing the connection", False)


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(rb"[\[\]{}]")


def nesting_depth(line: bytes) -> int:
    """How deeply arrays and objects nest in a JSON text, without parsing it (strings skipped)."""
    if line.count(b"[") + line.count(b"{") <= MAX_DEPTH:
        return line.count(b"[") + line.count(b"{")
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub(b"", line)):
        depth += 1 if bracket in b"[{" else -1
        deepest = max(deepest, depth)
    return deepest


def parse_request(line: bytes) -> dict:
    """One request line -> its JSON object, or BadRequest in plain words (never a RecursionError)."""
    if nesting_depth(line) > MAX_DEPTH:
        raise BadRequest(f"request nested too deep (at most {MAX_DEPTH} levels of arrays and objects): nothing was done")
    try:
        request = json.loads(line)
    except (ValueError, RecursionError):
        raise BadRequest("a request is one JSON object on one line") from None
    if not isinstance(request, dict):
        raise BadRequest("a request is one JSON object on one line")
    if not isinstance(request.get("via", ""), str):
        raise BadRequest("via must be a string")
    return request


def _creds(conn: socket.socket) -> tuple[int, int, int]:
    """(pid, uid, gid) of the peer, as the kernel says."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)


def _peer(creds: tuple[int, int, int], via: str = "") -> Peer:
    pid, uid, gid = creds
    user = _user_name(uid)
    return Peer(uid, gid, pid, user, _is_technician(uid, gid, user), str(via)[:120])


def _send(conn: socket.socket, reply: dict, timeout: float) -> bool:
    try:
        conn.settimeout(timeout)
        conn.sendall(json.dumps(reply, default=str).encode() + b"\n")
        return True
    except OSError:
        return False


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
        deadline = time.monotonic() + self.timeout
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                while True:
                    try:
                        sock.connect(str(self.path))
                        break
                    except BlockingIOError:  # the daemon's listen backlog is full: wait our turn
                        if time.monotonic() > deadline:
                            raise socket.timeout("its queue of connections stayed full") from None
                        time.sleep(0.01)
                try:
                    sock.sendall(request)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # it may have answered and closed first (busy, denied): read that answer
                with sock.makefile("rb") as reader:
                    line = reader.readline(MAX_REPLY_BYTES)
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
        try:
            reply = json.loads(line)
        except (ValueError, RecursionError):
            reply = None
        if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
            raise DaemonUnavailable(
                f"what answers at {self.path} is not a pen-dock daemon (its answer is not the dock's "
                f"JSON): check PENDOCK_SOCKET / --data")
        if reply["ok"]:
            return reply.get("result")
        raise _KINDS.get(str(reply.get("error")), ControlError)(str(reply.get("message", "failed")), reply.get("error"))
