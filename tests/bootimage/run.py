"""`make test-system`: the dock as a clinic receives it, booted. Debian 12 (amd64) with
systemd as PID 1 under qemu (TCG), the checkout installed by hw/install.sh as the README
tells a technician (offline, from this checkout's wheels, with --simulated: no Pi here),
then checked from the host over SSH and the serial console:

1. install: the installer ends with "Installed." and both units are active;
2. a power cut (SIGKILL of qemu) right after the installer returns, then power on: both
   units active again, every installed file whole (units, drop-ins, config, the PATH
   wrapper, and every file of the venv against pip's RECORD hashes);
3. `pendock status` in a login shell of the technician's account (alice) says the pen is held;
4. P13 on that boot: power on -> the pen held (pendock.service ready) and /healthz
   answering, from the console line the test's probe prints: a figure, printed against
   its bar, never failing the run (TCG on a shared machine is no Pi: README, P13);
5. a clean reboot: both units active again.

Prints one line a check and the figures; exits 0 only when every check passed. Not root:
says so and skips (exit 0). Environment: PENDOCK_SYSTEM_CACHE (the image, default
/var/cache/pendock-system), PENDOCK_SYSTEM_BOOT_TIMEOUT (seconds to an SSH login, 420);
PENDOCK_SYSTEM_NO_SYNC=1 puts a `sync` that does nothing first on the installer's PATH,
to show that check 2 catches an installer that does not flush (the run must then fail).
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tests.bootimage.guest import Guest, GuestError
from tests.bootimage.image import CACHE, TECHNICIAN, ImageError, build

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts" / "system"
UNITS = ("pendock.service", "pendock-web.service", "pendock-backup.service", "pendock-backup.timer")
GUEST_REPO = f"/home/{TECHNICIAN}/pen-dock"
GUEST_WHEELS = f"/home/{TECHNICIAN}/wheels"
BOOT_TIMEOUT = float(os.environ.get("PENDOCK_SYSTEM_BOOT_TIMEOUT", "420"))
P13_MARK = "PENDOCK-P13"

# The test's own probe (never part of the product): once /healthz answers, it writes the
# guest's uptime and pendock.service's ready time on the console (quality bar P13).
PROBE_SCRIPT = f"""#!/bin/sh
i=0
while [ $i -lt 1500 ]; do
    curl -fsS -o /dev/null --max-time 2 http://127.0.0.1:8080/healthz && break
    i=$((i+1)); sleep 0.2
done
up=$(cut -d" " -f1 /proc/uptime)
show() {{ systemctl show -P "$1" pendock.service; }}
echo "{P13_MARK} healthz_uptime_s=$up held_us=$(show ActiveEnterTimestampMonotonic)" \
     "daemon_exec_us=$(show ExecMainStartTimestampMonotonic) restarts=$(show NRestarts)" > /dev/ttyS0
"""
PROBE_UNIT = """[Unit]
Description=system test: P13 timestamps on the console
After=pendock-web.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/system-test-probe
[Install]
WantedBy=multi-user.target
"""

# Every file pip installed into the venv, checked against its RECORD (sha256 and size).
RECORD_CHECK = r"""
import base64, hashlib, importlib.metadata as md, pathlib, sys
bad, seen = [], 0
for dist in md.distributions(path=[p for p in sys.path if p.startswith("/opt/pendock/venv")]):
    for f in dist.files or []:
        if not f.hash or f.hash.mode != "sha256":
            continue
        path = pathlib.Path(f.locate())
        seen += 1
        try:
            data = path.read_bytes()
        except OSError as e:
            bad.append(f"{path}: {e}"); continue
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        if digest != f.hash.value or (f.size is not None and len(data) != f.size):
            bad.append(f"{path}: {len(data)} bytes, not as pip wrote it")
print(f"checked {seen} files"); print("\n".join(bad[:20]))
sys.exit(1 if bad or seen < 100 else 0)
"""


def say(message: str) -> None:
    print(f"test-system: {message}", flush=True)


class Checks:
    def __init__(self) -> None:
        self.results: list[tuple[str, bool, str]] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        self.results.append((name, ok, detail))
        say(f"{'PASS' if ok else 'FAIL'} {name}" + (f": {detail}" if detail and not ok else ""))
        return ok

    @property
    def all_passed(self) -> bool:
        return bool(self.results) and all(ok for _, ok, _ in self.results)


def build_wheels(into: Path) -> Path:
    """This checkout's wheel and its dependencies' (manylinux for the guest's Python 3.11)."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(into), str(REPO)], check=True)
    wheel = next(into.glob("pen_dock-*.whl"))
    subprocess.run([*pip, "download", "-d", str(into), "--only-binary=:all:", "--python-version", "3.11",
                    "--implementation", "cp", "--platform", "manylinux_2_28_x86_64", "--platform",
                    "manylinux_2_17_x86_64", "--platform", "manylinux2014_x86_64", str(wheel)], check=True)
    return wheel


def checkout_files() -> list[str]:
    """The checkout as a clone has it (tracked files, with this working tree's changes)."""
    listed = subprocess.run(["git", "-C", str(REPO), "ls-files", "-z"], capture_output=True, check=True).stdout
    return [name for name in listed.decode().split("\0") if name and (REPO / name).is_file()]


def active(guest: Guest, timeout: float = 180) -> str:
    """`systemctl is-active` of both units once both are active, or what they were at the end."""
    deadline = time.monotonic() + timeout
    states = ""
    while time.monotonic() < deadline:
        states = guest.out("systemctl is-active pendock.service pendock-web.service", check=False).split()
        if states == ["active", "active"]:
            return "active active"
        time.sleep(3)
    return " ".join(states)


def why_not_active(guest: Guest) -> str:
    return guest.out("systemctl --no-pager status pendock.service pendock-web.service | tail -n 30; "
                     "journalctl --no-pager -b -u pendock -u pendock-web | tail -n 30", check=False)


def files_whole(guest: Guest) -> tuple[bool, str]:
    problems = []
    expected = {f"/etc/systemd/system/{unit}": (REPO / "systemd" / unit).read_bytes() for unit in UNITS}
    expected["/etc/pendock/pendock.toml"] = (REPO / "appliance" / "core" / "pendock.toml").read_bytes()
    for path, content in expected.items():
        got = guest.ssh(f"cat {path}", check=False).stdout
        if got != content:
            problems.append(f"{path}: {len(got)} bytes, not the checkout's {len(content)}")
    for path, must_hold in (("/etc/systemd/system.conf.d/pendock-watchdog.conf", b"RuntimeWatchdogSec=14s"),
                            ("/etc/systemd/system/pendock.service.d/simulated.conf", b"PENDOCK_SIMULATED=yes"),
                            ("/usr/local/bin/pendock", b"/opt/pendock/venv/bin/pendock")):
        if must_hold not in guest.ssh(f"cat {path}", check=False).stdout:
            problems.append(f"{path}: lost or cut short")
    record = guest.ssh("/opt/pendock/venv/bin/python -", stdin=RECORD_CHECK.encode(), check=False)
    venv = record.stdout.decode(errors="replace").strip()
    if record.returncode:
        problems.append(f"the venv is not as pip wrote it: {venv[:1500]}")
    enabled = guest.out("systemctl is-enabled pendock.service pendock-web.service pendock-backup.timer",
                        check=False).split()
    if enabled != ["enabled"] * 3:
        problems.append(f"units not enabled: {enabled}")
    return not problems, "; ".join(problems) or venv


def p13(guest: Guest, console_from: int) -> tuple[bool, str]:
    line = guest.wait_for_console(P13_MARK, console_from, timeout=BOOT_TIMEOUT)
    if line is None:
        return False, "the probe printed no timestamps"
    host_s = guest.since_power_on()
    fields = dict(re.findall(r"(\w+)=([\d.]+)", line))
    healthz = float(fields["healthz_uptime_s"])
    held = int(fields["held_us"]) / 1e6
    own = (int(fields["held_us"]) - int(fields["daemon_exec_us"])) / 1e6
    figure = (f"power on -> pen held {held:.1f} s, -> /healthz {healthz:.1f} s (guest uptime; the host saw the "
              f"console line {host_s:.1f} s after starting qemu); the dock's own start {own:.1f} s "
              f"(exec -> READY=1), restarts {fields.get('restarts', '?')}; bar <= 90 s, own start <= 15 s")
    say(f"P13 {figure}")
    return healthz <= 90 and own <= 15, figure


def run(checks: Checks, guest: Guest, wheels: Path) -> None:
    timings: dict[str, float] = {}
    guest.create_disk()
    guest.power_on()
    timings["first boot to SSH"] = guest.wait_for_ssh(BOOT_TIMEOUT)
    say(f"guest up: SSH after {timings['first boot to SSH']:.0f} s")
    guest.send_tree(checkout_files(), REPO, GUEST_REPO, TECHNICIAN)
    guest.send_tree([p.name for p in wheels.iterdir()], wheels, GUEST_WHEELS, TECHNICIAN)
    guest.ssh("cat > /usr/local/sbin/system-test-probe && chmod 755 /usr/local/sbin/system-test-probe",
              stdin=PROBE_SCRIPT.encode())
    guest.ssh("cat > /etc/systemd/system/system-test-probe.service && systemctl enable --quiet "
              "system-test-probe.service && sync", stdin=PROBE_UNIT.encode())

    # 1. As the README says (sudo hw/install.sh --tech alice), offline and simulated.
    no_sync = ""
    if os.environ.get("PENDOCK_SYSTEM_NO_SYNC") == "1":
        guest.ssh("mkdir -p /root/no-sync && printf '#!/bin/sh\\nexit 0\\n' > /root/no-sync/sync && "
                  "chmod 755 /root/no-sync/sync && sync")
        no_sync = "PATH=/root/no-sync:$PATH "
        say("PENDOCK_SYSTEM_NO_SYNC=1: the installer's sync does nothing; the power-cut checks must fail")
    started = time.monotonic()
    done = guest.ssh(f"cd {GUEST_REPO} && {no_sync}hw/install.sh --tech {TECHNICIAN} --offline {GUEST_WHEELS} --simulated"
                     f" && systemctl is-active pendock.service pendock-web.service", check=False, timeout=1200)
    # 2. The power cut: right after the installer (and the one is-active) returned.
    guest.power_cut()
    timings["install"] = time.monotonic() - started
    said = done.stdout.decode(errors="replace")
    (ARTIFACTS / "install-output.txt").write_text(said + done.stderr.decode(errors="replace"))
    lines = said.strip().splitlines()
    checks.check("install: ends with Installed. and both units are active", done.returncode == 0
                 and lines[-2:] == ["active", "active"] and "Installed." in lines[-3:],
                 f"exit {done.returncode}; last lines: {lines[-6:]}; see {ARTIFACTS / 'install-output.txt'}")
    say(f"installed in {timings['install']:.0f} s, then cut the power")

    console_from = len(guest.console_text())
    guest.power_on()
    timings["boot after the cut to SSH"] = guest.wait_for_ssh(BOOT_TIMEOUT)
    states = active(guest)
    if not checks.check("power cut right after the install: both units active at the next boot",
                        states == "active active", f"{states}\n{why_not_active(guest)}"):
        pass
    ok, detail = files_whole(guest)
    checks.check("power cut right after the install: every installed file whole", ok, detail)
    if ok:
        say(f"venv after the cut: {detail}")
    if states == "active active":
        ok, figure = p13(guest, console_from)
        say(f"P13 {'within' if ok else 'OUTSIDE'} its bar (a figure: it never fails the run)")
    else:
        say("P13 not measured: the units are not active")

    # 3. The technician's first SSH step.
    login = guest.ssh("bash -lc 'command -v pendock; pendock status'", user=TECHNICIAN, check=False)
    out = login.stdout.decode(errors="replace")
    checks.check("pendock status in a login shell of the technician's account",
                 login.returncode == 0 and out.startswith("/usr/local/bin/pendock\n") and "Pen HELD" in out,
                 f"exit {login.returncode}: {out[:400]}{login.stderr.decode(errors='replace')[:400]}")

    # 5. A clean reboot.
    guest.shut_down("reboot")
    guest.power_on()
    timings["reboot to SSH"] = guest.wait_for_ssh(BOOT_TIMEOUT)
    states = active(guest)
    checks.check("after a reboot: both units active", states == "active active", f"{states}\n{why_not_active(guest)}")
    guest.shut_down("poweroff")
    say("timings: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items()))


def main() -> int:
    if os.geteuid() != 0:
        say("skipped: needs root (mmdebstrap, the image in /var/cache); run it as root")
        return 0
    started = time.monotonic()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    console_log = ARTIFACTS / "console.log"
    console_log.write_text("")
    try:
        image = build(log=say)
        wheels = ARTIFACTS / "wheels"
        build_wheels(wheels)
    except (ImageError, subprocess.CalledProcessError) as error:
        say(f"cannot build the image or the wheels: {error}")
        return 2
    say(f"image and wheels ready after {time.monotonic() - started:.0f} s (image cached in {CACHE})")
    checks = Checks()
    guest = Guest(image, CACHE / "run", console_log)
    try:
        run(checks, guest, wheels)
    except (GuestError, subprocess.TimeoutExpired, subprocess.CalledProcessError) as error:
        checks.check("the run went to its end", False, str(error)[-3000:])
    finally:
        guest.close()
    passed = sum(ok for _, ok, _ in checks.results)
    say(f"{passed} of {len(checks.results)} checks passed in {time.monotonic() - started:.0f} s; "
        f"console in {console_log.relative_to(REPO)}")
    return 0 if checks.all_passed else 1


if __name__ == "__main__":
    sys.exit(main())
