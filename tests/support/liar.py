"""A Unix socket at the dock's address that answers one request with something else than
the daemon's JSON (another service, a web server): the CLI and the client must say so in
one plain line."""
from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def liar_socket(path: Path, reply: bytes):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(1)

    def answer():
        conn, _ = listener.accept()
        conn.recv(4096)
        conn.sendall(reply)
        conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        yield path
    finally:
        listener.close()
