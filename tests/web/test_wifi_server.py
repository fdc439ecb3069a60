"""S8 against the page's real server (waitress, with the options `pendock web` gives it),
on loopback: 100 slow connections held leave /healthz answering within 2 s, and a 64 MiB
body costs at most 1 MiB of disk, and a login flood writes the record once. Bounded:
PENDOCK_SLOWLORIS_S seconds (60 by default), PENDOCK_FLOOD_S (15)."""
from __future__ import annotations

import itertools
import os
import socket
import tempfile
import threading
import time
from pathlib import Path

import pytest
from waitress import create_server

from appliance.core.config import Config
from appliance.page.app import WAITRESS_OPTIONS, create_app
from appliance.record.store import Store
from tests.web.conftest import FakeDaemon

HOLD_S = float(os.environ.get("PENDOCK_SLOWLORIS_S", "60"))
FLOOD_S = float(os.environ.get("PENDOCK_FLOOD_S", "15"))  # at most 60: one minute's one write
SLOW = 100
MiB = 1024 * 1024


@pytest.fixture
def daemon():
    return FakeDaemon()


@pytest.fixture
def server(record_dir, daemon):
    store = Store.open(record_dir, readonly=True)
    app = create_app(Config(), record_dir, record_dir / "control.sock", control=daemon.client,
                     store=store, secret_key="server")
    served = create_server(app, host="127.0.0.1", port=0, **WAITRESS_OPTIONS)
    thread = threading.Thread(target=served.run, daemon=True)
    thread.start()
    yield served.effective_port
    served.close()
    thread.join(5)
    store.close()


def healthz_seconds(port: int) -> float:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(b"GET /healthz HTTP/1.1\r\nHost: dock\r\nConnection: close\r\n\r\n")
        answer = conn.recv(200)
    assert answer.startswith(b"HTTP/1.1 200"), answer
    return time.monotonic() - started


def test_a_hundred_slow_connections_leave_healthz_answering(server):
    slow = []
    for _ in range(SLOW):
        conn = socket.create_connection(("127.0.0.1", server), timeout=5)
        conn.sendall(b"GET /login HTTP/1.1\r\nHost: dock\r\n")
        slow.append(conn)
    worst = 0.0
    try:
        deadline = time.monotonic() + HOLD_S
        for n in itertools.count():
            for conn in slow:  # a header line now and then: never idle, never done
                conn.sendall(f"X-Slow-{n}: 1\r\n".encode())
            worst = max(worst, healthz_seconds(server))
            if time.monotonic() > deadline:
                break
            time.sleep(2)
    finally:
        for conn in slow:
            conn.close()
    assert worst < 2.0, f"/healthz took {worst:.2f} s with {SLOW} slow connections held"
    print(f"S8 slowloris: {SLOW} slow connections for {HOLD_S:.0f} s, /healthz worst {worst * 1000:.0f} ms")


@pytest.fixture
def counted_temp_files(tmp_path, monkeypatch):
    """waitress's temporary files, made in a folder that keeps them, to weigh after."""
    folder = tmp_path / "spool"
    folder.mkdir()
    names = itertools.count()
    monkeypatch.setattr(tempfile, "TemporaryFile",
                        lambda mode="w+b", *a, **k: open(folder / f"spool-{next(names)}", mode))  # noqa: SIM115
    return folder


def spooled(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.iterdir())


@pytest.mark.parametrize("chunked", [False, True])
def test_a_64_mib_body_costs_no_disk(server, counted_temp_files, chunked):
    head = ("POST /login HTTP/1.1\r\nHost: dock\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            + ("Transfer-Encoding: chunked\r\n" if chunked else f"Content-Length: {64 * MiB}\r\n") + "\r\n")
    piece = b"a" * (64 * 1024)
    if chunked:
        piece = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
    sent = 0
    answer = b""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server), timeout=10) as conn:
        conn.sendall(head.encode())
        try:
            while sent < 64 * MiB and time.monotonic() - started < 60:
                conn.sendall(piece)
                sent += 64 * 1024
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading: what we want
        try:
            answer = conn.recv(100)
        except (ConnectionResetError, TimeoutError):
            answer = b""
    assert answer.startswith(b"HTTP/1.1 413") or answer == b"", answer
    assert spooled(counted_temp_files) <= MiB, f"{spooled(counted_temp_files)} bytes spooled to disk"
    assert healthz_seconds(server) < 2.0
    print(f"S8 body cap: {sent // MiB} MiB sent {'chunked' if chunked else 'with Content-Length'}, "
          f"{spooled(counted_temp_files)} bytes spooled, answer {answer[:12]!r}")


def test_a_login_flood_over_http_writes_once_a_minute_per_address(server, daemon):
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", server, timeout=5)
    sent = 0
    deadline = time.monotonic() + min(FLOOD_S, 60)
    while time.monotonic() < deadline:
        conn.request("GET", f"/wall/login?token=guess-{sent}")
        assert conn.getresponse().read() and True
        sent += 1
    conn.close()
    written = daemon.commands("login")
    assert len(written) == 1, f"{len(written)} audit writes for {sent} wrong wall logins from one address"
    print(f"S8 login flood: {sent} wrong /wall/login in {min(FLOOD_S, 60):.0f} s from one address, "
          f"{len(written)} durable write")
