"""Build (once, cached by its package list and hook) the Debian 12 amd64 image the system
test boots: mmdebstrap from Debian's archive, an ext4 disk made with `mkfs.ext4 -d`, and
the kernel and initrd beside it for qemu's direct kernel boot.

The image holds what a clinic's machine has before the installer runs (systemd, Python
3.11, SSH) plus two accounts the test logs in with: root and the technician `alice`
(bash, in no pen-dock group yet), both with a key generated here. Nothing of pen-dock is
in it: the test copies the checkout and its wheels in and runs hw/install.sh.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("PENDOCK_SYSTEM_CACHE", "/var/cache/pendock-system"))
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
PACKAGES = ["systemd", "systemd-sysv", "udev", "dbus", "linux-image-amd64", "python3", "python3-venv",
            "openssh-server", "sudo", "curl", "iproute2", "procps", "e2fsprogs", "sqlite3",
            "nginx-light", "chrony"]  # the installer's HTTPS front and NTS time (hw/tls-setup.sh, hw/install.sh)
DISK_SIZE = "4G"
TECHNICIAN = "alice"

# Run inside the new root by mmdebstrap (customize hook, "$1" is the root).
HOOK = r"""
set -eu
root=$1
echo pendock-system > "$root/etc/hostname"
printf '127.0.1.1 pendock-system\n' >> "$root/etc/hosts"
printf '/dev/vda / ext4 defaults,errors=remount-ro 0 1\n' > "$root/etc/fstab"
mkdir -p "$root/etc/systemd/network"
printf '[Match]\nName=en* eth*\n[Network]\nDHCP=ipv4\n' > "$root/etc/systemd/network/20-wired.network"
chroot "$root" systemctl enable systemd-networkd.service
# Nothing else competes with the dock for the emulated CPU.
for t in apt-daily.timer apt-daily-upgrade.timer man-db.timer e2scrub_all.timer fstrim.timer; do
    chroot "$root" systemctl mask "$t" >/dev/null 2>&1 || true
done
chroot "$root" useradd --create-home --shell /bin/bash alice
for home in root home/alice; do
    mkdir -p "$root/$home/.ssh"
    cp "$KEY.pub" "$root/$home/.ssh/authorized_keys"
    chmod 700 "$root/$home/.ssh"; chmod 600 "$root/$home/.ssh/authorized_keys"
done
chroot "$root" chown -R alice:alice /home/alice/.ssh
printf 'UseDNS no\n' > "$root/etc/ssh/sshd_config.d/system-test.conf"
"""


@dataclass(frozen=True)
class Image:
    disk: Path       # ext4, the whole disk is the root file system (/dev/vda)
    kernel: Path
    initrd: Path
    key: Path        # private key for root@ and alice@ over SSH


class ImageError(RuntimeError):
    pass


def _key_of_build() -> str:
    text = "\n".join([SUITE, MIRROR, " ".join(PACKAGES), DISK_SIZE, HOOK])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build(log=print) -> Image:
    """The cached image, building it first when its package list or hook changed."""
    for tool in ("mmdebstrap", "mkfs.ext4", "qemu-system-x86_64", "qemu-img", "ssh-keygen"):
        if shutil.which(tool) is None:
            raise ImageError(f"{tool} is missing: apt-get install mmdebstrap qemu-system-x86 qemu-utils "
                             f"openssh-client e2fsprogs (make test-system does it)")
    CACHE.mkdir(parents=True, exist_ok=True)
    key = CACHE / "id_ed25519"
    if not key.exists():
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    where = CACHE / f"bookworm-amd64-{_key_of_build()}"
    image = Image(where / "disk.raw", where / "vmlinuz", where / "initrd.img", key)
    if (where / "complete").exists():
        return image
    log(f"building the Debian 12 image in {where} (mmdebstrap, about 2-4 minutes)")
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    with tempfile.TemporaryDirectory(dir=CACHE) as scratch:
        rootfs = Path(scratch) / "root"
        hook = Path(scratch) / "hook.sh"
        hook.write_text(HOOK)
        env = dict(os.environ, KEY=str(key), DEBIAN_FRONTEND="noninteractive")
        run = subprocess.run(
            ["mmdebstrap", "--variant=apt", "--architectures=amd64", "--mode=root", "--quiet",
             f"--include={','.join(PACKAGES)}", f"--customize-hook=sh {hook} \"$1\"",
             SUITE, str(rootfs), MIRROR], env=env, capture_output=True, text=True)
        if run.returncode:
            raise ImageError(f"mmdebstrap failed ({run.returncode}):\n{run.stderr[-4000:]}")
        kernels = sorted((rootfs / "boot").glob("vmlinuz-*"))
        initrds = sorted((rootfs / "boot").glob("initrd.img-*"))
        if not kernels or not initrds:
            raise ImageError(f"no kernel or initrd in {rootfs}/boot after mmdebstrap")
        shutil.copy(kernels[-1], image.kernel)
        shutil.copy(initrds[-1], image.initrd)
        run = subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "pendock", "-d", str(rootfs), str(image.disk), DISK_SIZE],
                             capture_output=True, text=True)
        if run.returncode:
            raise ImageError(f"mkfs.ext4 -d failed:\n{run.stderr[-2000:]}")
    (where / "complete").write_text("ok\n")
    return image


if __name__ == "__main__":
    print(build())
