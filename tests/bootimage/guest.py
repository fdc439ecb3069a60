"""One qemu guest of the booted image: power it on, reach it over SSH (a host-only network:
qemu's user network with restrict=on, one forwarded port), cut its power (SIGKILL of qemu,
the disk on cache=none: what the guest had not flushed is lost, as on a real disk), or let
it shut down. The console (the serial port) is appended to a log file the checks read."""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.bootimage.image import Image

SSH_OPTIONS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
               "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15",
               "-o", "ServerAliveCountMax=8"]


class GuestError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Guest:
    """The guest on a disk of its own: a qcow2 overlay over the cached image."""

    def __init__(self, image: Image, work: Path, console_log: Path, memory_mb: int = 1024):
        self.image = image
        self.work = Path(work)
        self.disk = self.work / "disk.qcow2"
        self.console_log = console_log
        self.memory_mb = memory_mb
        self.qemu: subprocess.Popen | None = None
        self.powered_on_at = 0.0
        self.ssh_port = 0
        self.boots = 0

    def create_disk(self) -> None:
        self.work.mkdir(parents=True, exist_ok=True)
        self.disk.unlink(missing_ok=True)
        subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(self.image.disk), "-F", "raw",
                        str(self.disk)], check=True)

    def command(self) -> list[str]:
        return [
            "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", str(self.memory_mb), "-smp", "1",
            "-nodefaults", "-display", "none", "-no-reboot",
            "-chardev", f"file,id=console,path={self.console_log},append=on", "-serial", "chardev:console",
            "-kernel", str(self.image.kernel), "-initrd", str(self.image.initrd),
            "-append", "root=/dev/vda rw console=ttyS0 panic=-1 systemd.show_status=0",
            # cache=none: the host's page cache is bypassed, so what the guest has not flushed
            # is gone when qemu is killed (the power cut); a flush reaches the file.
            "-drive", f"file={self.disk},if=virtio,format=qcow2,cache=none,aio=threads",
            "-netdev", f"user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:{self.ssh_port}-:22",
            "-device", "virtio-net-pci,netdev=net0",
        ]

    def power_on(self) -> None:
        if self.qemu is not None and self.qemu.poll() is None:
            raise GuestError("the guest is already on")
        self.ssh_port = free_port()
        self.boots += 1
        with open(self.console_log, "a") as log:
            log.write(f"\n===== power on #{self.boots} =====\n")
        self.powered_on_at = time.monotonic()
        self.qemu = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)

    def since_power_on(self) -> float:
        return time.monotonic() - self.powered_on_at

    def wait_for_ssh(self, timeout: float) -> float:
        """Seconds from power on until root's SSH login works."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_running()
            try:
                if self.ssh("true", timeout=30, check=False).returncode == 0:
                    return self.since_power_on()
            except subprocess.TimeoutExpired:
                pass
            time.sleep(2)
        raise GuestError(f"no SSH login within {timeout:.0f} s of power on; console: {self.console_log}")

    def ssh(self, command: str, *, user: str = "root", timeout: float = 120, check: bool = True,
            stdin: bytes | None = None) -> subprocess.CompletedProcess:
        done = subprocess.run(["ssh", *SSH_OPTIONS, "-i", str(self.image.key), "-p", str(self.ssh_port),
                               f"{user}@127.0.0.1", command], input=stdin, capture_output=True, timeout=timeout)
        if check and done.returncode != 0:
            raise GuestError(f"{user}@guest: {command!r} exited {done.returncode}:\n"
                             f"{done.stdout.decode(errors='replace')}{done.stderr.decode(errors='replace')}")
        return done

    def out(self, command: str, **kwargs) -> str:
        return self.ssh(command, **kwargs).stdout.decode(errors="replace")

    def send_tree(self, files: list[str], source: Path, dest: str, owner: str) -> None:
        """The named files of `source` into `dest` in the guest, owned by `owner`."""
        tar = subprocess.Popen(["tar", "-C", str(source), "-c", "--null", "-T", "-"], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE)
        assert tar.stdin is not None and tar.stdout is not None
        tar.stdin.write(b"\0".join(f.encode() for f in files) + b"\0")
        tar.stdin.close()
        q = shlex.quote(dest)
        done = subprocess.run(["ssh", *SSH_OPTIONS, "-i", str(self.image.key), "-p", str(self.ssh_port),
                               "root@127.0.0.1", f"mkdir -p {q} && tar -x -C {q} && chown -R {owner}: {q}"],
                              stdin=tar.stdout, capture_output=True, timeout=300)
        tar.wait(60)
        if done.returncode or tar.returncode:
            raise GuestError(f"copying into {dest} failed: {done.stderr.decode(errors='replace')}")

    def console_text(self) -> str:
        try:
            return self.console_log.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_console(self, mark: str, after: int, timeout: float) -> str | None:
        """The first console line holding `mark` written after offset `after`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.console_text()[after:]
            for line in text.splitlines():
                if mark in line:
                    return line
            self._check_running()
            time.sleep(0.5)
        return None

    def power_cut(self) -> None:
        """SIGKILL: the guest flushes nothing more."""
        if self.qemu is not None and self.qemu.poll() is None:
            os.killpg(self.qemu.pid, signal.SIGKILL)
        self._reap()

    def shut_down(self, how: str = "poweroff", timeout: float = 180) -> None:
        """`systemctl poweroff` (or reboot: with -no-reboot qemu ends either way)."""
        try:
            self.ssh(f"systemctl {how}", check=False, timeout=30)
        except subprocess.TimeoutExpired:
            pass  # the connection may hang while the guest goes down: qemu's end is what counts
        try:
            assert self.qemu is not None
            self.qemu.wait(timeout)
        except subprocess.TimeoutExpired:
            raise GuestError(f"the guest did not {how} within {timeout:.0f} s") from None
        finally:
            self.power_cut()

    def _check_running(self) -> None:
        if self.qemu is None or self.qemu.poll() is not None:
            output = b""
            if self.qemu is not None and self.qemu.stdout is not None:
                output = self.qemu.stdout.read() or b""
            raise GuestError(f"qemu ended ({self.qemu.returncode if self.qemu else None}): "
                             f"{output.decode(errors='replace')[-2000:]}; console: {self.console_log}")

    def _reap(self) -> None:
        if self.qemu is not None:
            try:
                self.qemu.wait(30)
            finally:
                if self.qemu.stdout is not None:
                    self.qemu.stdout.close()
            self.qemu = None

    def close(self) -> None:
        self.power_cut()
