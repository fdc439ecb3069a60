"""S5, the control socket: what a local client (or a page pushed hard from the LAN) can do to
the daemon's socket. Each attack is bounded in count and time, and the server must stay up:
idle and half-sent connections end, connections are capped (the newest client is still
served), deep or oversize JSON gets one plain error, and types are strict."""
from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from appliance.daemon import control
from appliance.daemon.control import BadRequest, ControlClient, ControlServer
from tests.support.liar import liar_socket

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def served(tmp_path):
    """A control server with a few test commands; `served(**options)` starts one."""
    started = []
    calls = {"mark": 0}
    gate = threading.Event()

    def start(**options) -> ControlServer:
        server = ControlServer(tmp_path / f"c{len(started)}.sock", **options)
        server.register("status", lambda args, peer: {"up": True})
        server.register("mark", lambda args, peer: calls.__setitem__("mark", calls["mark"] + 1) or calls["mark"])
        server.register("wait", lambda args, peer: gate.wait(10))
        server.register("flag", lambda args, peer: control.flag(args, "on"))
        server.start()
        started.append(server)
        return server

    start.calls, start.gate = calls, gate
    yield start
    gate.set()
    for server in started:
        server.close()


def raw(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(str(path))
    return sock


def replies(sock: socket.socket, count: int = 1) -> list[dict]:
    buffer = b""
    while buffer.count(b"\n") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        buffer += chunk
    return [json.loads(line) for line in buffer.splitlines()]


def closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        while sock.recv(4096):
            pass
        return True
    except socket.timeout:
        return False
    except OSError:
        return True


def test_an_idle_connection_is_closed_after_the_read_timeout(served):
    server = served(read_timeout=0.5)
    sock = raw(server.path)
    started = time.monotonic()
    assert closed_within(sock, 3), "an idle connection was kept open"
    assert time.monotonic() - started < 2


def test_a_half_sent_request_trickled_byte_by_byte_still_ends_at_the_deadline(served):
    server = served(read_timeout=0.5)
    sock = raw(server.path)
    started = time.monotonic()
    ended = False
    for byte in b'{"cmd": "status"' * 4:  # never a newline; a byte every 0.1 s keeps a plain timeout alive
        try:
            sock.send(bytes([byte]))
        except OSError:
            ended = True
            break
        time.sleep(0.1)
        if time.monotonic() - started > 3:
            break
    assert ended or closed_within(sock, 0.5), "a trickled request held its connection past the deadline"
    assert time.monotonic() - started < 3


def test_beyond_the_cap_the_longest_idle_connection_makes_room(served):
    server = served(max_connections=4, read_timeout=30)
    idle = [raw(server.path) for _ in range(12)]
    time.sleep(0.2)
    assert ControlClient(server.path, timeout=2).call("status") == {"up": True}
    assert server.connections() <= 4 + 1
    for sock in idle:
        sock.close()


def test_beyond_the_cap_with_every_connection_busy_the_newcomer_is_refused_politely(served):
    server = served(max_connections=3, read_timeout=30)
    busy = []
    for _ in range(3):
        sock = raw(server.path)
        sock.sendall(b'{"cmd": "wait"}\n')
        busy.append(sock)
    time.sleep(0.3)
    started = time.monotonic()
    with pytest.raises(control.DaemonUnavailable, match="busy"):
        ControlClient(server.path, timeout=3).call("status")
    assert time.monotonic() - started < 1, "the refusal was not prompt"
    served.gate.set()
    assert [r["ok"] for sock in busy for r in replies(sock)] == [True] * 3


def test_twenty_concurrent_clients_are_all_answered(served):
    server = served()
    barrier = threading.Barrier(20)
    answers, errors = [], []

    def one():
        barrier.wait()
        try:
            answers.append(ControlClient(server.path, timeout=5).call("status"))
        except Exception as error:  # counted, not raised in a thread
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors and len(answers) == 20
    assert server.request_queue_size >= 64


def test_thirty_thousand_brackets_get_a_plain_error_and_the_server_stays_up(served):
    server = served()
    sock = raw(server.path)
    sock.sendall(b"[" * 30_000 + b"\n")
    (reply,) = replies(sock)
    assert reply["ok"] is False and reply["error"] == "usage" and "deep" in reply["message"]
    sock.sendall(b'{"cmd": "status", "args": {"deep": ' + b"[" * 40 + b"]" * 40 + b"}}\n")
    (reply,) = replies(sock)
    assert reply["ok"] is False and "deep" in reply["message"]
    sock.sendall(b'{"cmd": "status"}\n')
    assert replies(sock) == [{"ok": True, "result": {"up": True}}]


def test_an_oversize_line_is_drained_to_its_newline_and_its_tail_is_not_a_request(served):
    server = served()
    sock = raw(server.path)
    # The tail after the size limit is a well-formed request: it must not run.
    sock.sendall(b"x" * (control.MAX_REQUEST_BYTES + 1) + b'{"cmd": "mark"}\n' + b'{"cmd": "status"}\n')
    first, second = replies(sock, 2)
    assert first["ok"] is False and "too large" in first["message"]
    assert second == {"ok": True, "result": {"up": True}}
    assert served.calls["mark"] == 0, "the oversize line's tail was handled as a request"


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None, [], "no"])
def test_a_flag_takes_only_a_json_boolean(served, value):
    server = served()
    client = ControlClient(server.path, timeout=2)
    if value is None:
        assert client.call("flag", on=None) is False  # absent or null: the default
        return
    with pytest.raises(BadRequest, match="true or false"):
        client.call("flag", on=value)
    assert client.call("flag", on=True) is True and client.call("flag", on=False) is False


def test_a_reply_that_is_not_json_is_a_plain_error(tmp_path):
    with liar_socket(tmp_path / "liar.sock", b"HTTP/1.0 200 OK\r\n\r\n<html>\n") as path:
        with pytest.raises(control.DaemonUnavailable, match="not a pen-dock daemon"):
            ControlClient(path, timeout=2).call("status")


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_140_idle_connections_under_a_low_descriptor_limit_leave_status_answering(tmp_path):
    """The issue's attack: `ulimit -n 128`, 140 idle connections. The daemon must not spin
    and `status` must still answer, within a bound."""
    sock_path = tmp_path / "control.sock"

    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    daemon = subprocess.Popen([sys.executable, "-m", "tests.support.dockd", "--data", str(tmp_path / "d"),
                               "--socket", str(sock_path)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, preexec_fn=low_limit,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
    idle = []
    try:
        assert daemon.stdout.readline().strip() == "ready", daemon.stderr.read()
        deadline = time.monotonic() + 10
        while len(idle) < 140 and time.monotonic() < deadline:
            try:
                idle.append(raw(sock_path))
            except BlockingIOError:
                time.sleep(0.01)  # the listen backlog is full: wait for the daemon to accept
        assert len(idle) >= 120, f"only {len(idle)} connections made"
        cpu_before, wall_before = _cpu_seconds(daemon.pid), time.monotonic()
        time.sleep(1.0)
        started = time.monotonic()
        status = ControlClient(sock_path, timeout=5).call("status")
        assert "held" in status and time.monotonic() - started < 2
        spent = _cpu_seconds(daemon.pid) - cpu_before
        assert spent < 0.6 * (time.monotonic() - wall_before), f"daemon spun: {spent:.2f} s CPU"
    finally:
        for sock in idle:
            sock.close()
        daemon.terminate()
        daemon.wait(10)


def test_a_peer_the_daemon_does_not_admit_is_refused_before_any_command(served):
    server = served(admit=lambda peer: False)
    with pytest.raises(control.Denied, match="may not use the pen-dock daemon"):
        ControlClient(server.path, timeout=2).call("mark")
    assert served.calls["mark"] == 0


def test_the_daemon_admits_root_its_own_user_and_technicians_only():
    me = control.Peer(os.getuid(), os.getgid(), 1, "me", True)
    stranger = control.Peer(54321, 54321, 1, "uid 54321", False)
    assert control.may_connect(me)
    assert not control.may_connect(stranger)


def test_the_daemon_takes_the_string_false_for_nothing(sim):
    before = sim.audit_actions()
    with pytest.raises(BadRequest, match="true or false"):
        sim.call("login", user="manager", ok="false")
    with pytest.raises(BadRequest, match="true or false"):
        sim.call("sim.undock", force="false")
    with pytest.raises(BadRequest, match="true or false"):
        sim.call("sim.clock", synced="false")
    assert sim.audit_actions() == before, "a refused request was recorded"
    sim.call("login", user="manager", ok=False)
    assert sim.audit_actions()[-1] == "login_failed"


def test_the_daemon_refuses_a_user_name_the_login_form_would_refuse(sim):
    from appliance.record.passwords import password_hash

    with pytest.raises(BadRequest, match="ASCII"):
        sim.call("user_add", name="José", role="therapist", password_hash=password_hash("long enough", n=2**10))
    assert sim.store.user("José") is None


def test_the_daemon_takes_only_yyyy_mm_dd(sim):
    with pytest.raises(BadRequest, match="YYYY-MM-DD"):
        sim.call("sessions", date="2026-W48-1")


def test_a_throttled_burst_is_one_audit_entry_with_its_count(sim):
    sim.call("login", user="boss", ok=False, refused=True, throttled=1, remote="192.168.1.66")
    sim.call("login", user="boss", ok=False, throttled=199, remote="192.168.1.66")
    first, second = sim.store.audit_entries(limit=2)[::-1]
    assert (first.action, second.action) == ("login_throttled", "login_failed")
    assert second.detail["throttled"] == 199
    with pytest.raises(BadRequest, match="whole number"):
        sim.call("login", user="boss", ok=False, throttled="many")
