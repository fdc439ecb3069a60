"""systemd's notify protocol (READY=1, WATCHDOG=1, STATUS=...), without a dependency.

Outside systemd (no NOTIFY_SOCKET) every call is a no-op, so the daemon runs the same way
under `pendock demo`, in tests and on a Pi.
"""
from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, environ=os.environ):
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]
        self.address = address or None
        usec = environ.get("WATCHDOG_USEC")
        # Feed at half the watchdog period, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval = int(usec) / 2e6 if usec and usec.isdigit() else None

    def send(self, message: str) -> None:
        if not self.address:
            return
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.connect(self.address)
                sock.sendall(message.encode())
        except OSError:
            pass  # systemd gone (shutdown): nothing to tell

    def ready(self, status: str = "") -> None:
        self.send("READY=1" + (f"\nSTATUS={status}" if status else ""))

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def stopping(self) -> None:
        self.send("STOPPING=1")
