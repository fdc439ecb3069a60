"""`make test-hil`: boot Debian's kernel under qemu with a simulated GPIO chip and run the
guest tests (tests/hil/guest) there, with this checkout's Python environment.

The guest sees the host's root read-only over 9p, so it runs exactly what is installed
here; its console (the serial port) comes back on our stdout. This prints the guest's
pytest output, then the chip, the pin factory and pytest's summary line, and exits 0 only
if every guest test passed and none was skipped. Without root it says so and skips (exit 0).

Environment: PENDOCK_HIL_K (a pytest -k expression, no spaces), PENDOCK_HIL_TIMEOUT
(seconds, default 480), PENDOCK_HIL_CACHE (default /var/cache/pendock-hil).
"""
from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

from tests.hil.build import BuildError, build

REPO = Path(__file__).resolve().parents[2]
LOG = REPO / "test-artifacts" / "hil-console.log"
ANSI = re.compile(r"\x1b(\[[0-9;?]*[A-Za-z]|c)")
SUMMARY = re.compile(r"^=+ (.*\b(passed|failed|error|errors|skipped|no tests ran)\b.*) =+$")


def say(message: str) -> None:
    print(f"test-hil: {message}", flush=True)


def qemu_command(kernel: Path, initramfs: Path) -> list[str]:
    cmdline = ["console=ttyS0", "quiet", "panic=-1",
               f"pendock_repo={REPO}", f"pendock_python={sys.executable}"]
    k = os.environ.get("PENDOCK_HIL_K")
    if k:
        cmdline.append(f"pendock_k={k}")
    if any(" " in part for part in cmdline):
        raise BuildError(f"the checkout's path or PENDOCK_HIL_K has a space, which the kernel command line "
                         f"cannot carry: {cmdline}")
    return [
        "qemu-system-x86_64", "-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2",
        "-nodefaults", "-display", "none", "-serial", "stdio", "-no-reboot", "-net", "none",
        "-kernel", str(kernel), "-initrd", str(initramfs), "-append", " ".join(cmdline),
        "-virtfs", "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap",
    ]


def boot(command: list[str], timeout: float) -> tuple[list[str], int | None]:
    """Run the guest to its power-off; returns its console lines and the guest tests' exit
    status (None when it never said: a crash or the timeout). qemu is always ended."""
    LOG.parent.mkdir(exist_ok=True)
    lines: list[str] = []
    exit_status = None
    qemu = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, start_new_session=True)
    feed: queue.Queue[bytes | None] = queue.Queue()

    def pump() -> None:
        for raw in qemu.stdout:
            feed.put(raw)
        feed.put(None)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        with open(LOG, "w") as log:
            while True:
                try:
                    raw = feed.get(timeout=max(0.1, deadline - time.monotonic()))
                except queue.Empty:
                    say(f"the guest did not finish in {timeout:.0f} s: stopped it")
                    break
                if raw is None:
                    break
                line = ANSI.sub("", raw.decode(errors="replace")).rstrip("\r\n")
                log.write(line + "\n")
                lines.append(line)
                match = re.match(r"^HIL-EXIT (\d+)", line)
                if match:
                    exit_status = int(match.group(1))
                print(f"  guest| {line}", flush=True)
    finally:
        if qemu.poll() is None:
            qemu.kill()
        qemu.wait(10)
    return lines, exit_status


def main() -> int:
    if os.geteuid() != 0:
        say("skipped: needs root (apt-get for the kernel packages, a module build, qemu); run it as root")
        return 0
    try:
        import lgpio  # noqa: F401  the guest imports it from this very environment
    except ImportError:
        say(f"lgpio is not installed in {sys.prefix}: pip install lgpio (make test-hil does)")
        return 2
    started = time.monotonic()
    try:
        artifacts = build()
        command = qemu_command(artifacts.kernel, artifacts.initramfs)
    except BuildError as error:
        say(f"cannot build the guest: {error}")
        return 2
    say(f"built in {time.monotonic() - started:.0f} s: Debian kernel {artifacts.abi} with gpio-sim; booting it under qemu (TCG)")
    timeout = float(os.environ.get("PENDOCK_HIL_TIMEOUT", "480"))
    lines, exit_status = boot(command, timeout)

    chip = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("HIL chip:")), None)
    factory = next((x.split(":", 1)[1].strip() for x in lines if x.startswith("HIL pin factory:")), None)
    summary = next((m.group(1) for m in map(SUMMARY.match, reversed(lines)) if m), None)
    figures = [x for x in lines if x.startswith("HIL edge-to-callback")]
    print(flush=True)
    say(f"chip: {chip or 'none reported'}")
    say(f"pin factory: {factory or 'none reported'}")
    for figure in figures:
        say(figure)
    say(f"pytest: {summary or 'no summary line'} (guest exit {exit_status}); "
        f"{time.monotonic() - started:.0f} s in all; console in {LOG.relative_to(REPO)}")
    if exit_status != 0 or summary is None:
        say("FAILED")
        return 1
    if "skipped" in summary or "passed" not in summary:
        say("FAILED: every guest test must run and pass (no skips)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
