"""Build what the hardware-in-the-loop run boots: Debian's stock kernel and a small initramfs.

Debian ships no kernel with gpio-sim (the kernel's simulated GPIO chip), but its
`linux-source-6.1` holds the driver's source, which builds in seconds as an out-of-tree
module against the matching `linux-headers-*` package. Everything comes from apt at test
time (no kernel source in the repository); what the boot needs (about 13 MB) is cached per
kernel ABI under /var/cache/pendock-hil, so only the first run downloads and builds (about
45 s); the downloaded packages are not kept.

The initramfs holds busybox, the modules the guest needs (virtio PCI, 9p, configfs and
gpio-sim with their dependencies) and `init` (tests/hil/guest/init.sh). Run as root:
`python -m tests.hil.build` prints the kernel and initramfs paths.
"""
from __future__ import annotations

import gzip
import io
import lzma
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

CACHE = Path(os.environ.get("PENDOCK_HIL_CACHE", "/var/cache/pendock-hil"))
HERE = Path(__file__).resolve().parent
KERNEL_META = "linux-image-amd64"  # Debian's meta package names the current kernel ABI
SOURCE_PACKAGE = "linux-source-6.1"
# The modules the guest loads, dependencies first (resolved from each module's depends=).
GUEST_MODULES = ("virtio_pci", "9pnet_virtio", "9p", "configfs")
BUILD_TOOLS = ("gcc", "make", "qemu-system-x86", "busybox-static")
# irq_sim (the fake interrupt controller gpio-sim needs) is built into the module too: the
# Debian kernel has CONFIG_IRQ_SIM off. The kernel does not export irq_to_desc(), so the
# one call that needs it goes through the exported generic_handle_irq(), which is the same.
IRQ_SIM_FIX = ("handle_simple_irq(irq_to_desc(irqnum));", "generic_handle_irq(irqnum);")


class BuildError(RuntimeError):
    """A step of the build failed; the message says which and what to do."""


class DownloadError(BuildError):
    """apt could not fetch or install a package (often: its lists are out of date)."""


@dataclass(frozen=True)
class Artifacts:
    abi: str  # e.g. 6.1.0-50-amd64
    kernel: Path
    initramfs: Path


def log(message: str) -> None:
    print(f"hil-build: {message}", file=sys.stderr, flush=True)


def run(*cmd: str, cwd: Path | None = None) -> str:
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                            env=dict(os.environ, DEBIAN_FRONTEND="noninteractive"))
    if result.returncode != 0:
        raise BuildError(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stderr[-2000:]}")
    return result.stdout


def kernel_abi() -> tuple[str, str]:
    """The ABI and version of Debian's current amd64 kernel, e.g. ('6.1.0-50-amd64', '6.1.176-1')."""
    depends = run("apt-cache", "depends", KERNEL_META)
    match = re.search(r"Depends: linux-image-(\S+-amd64)\b", depends)
    if not match:
        raise BuildError(f"apt-cache depends {KERNEL_META} names no kernel: run apt-get update")
    abi = match.group(1)
    show = run("apt-cache", "show", "--no-all-versions", f"linux-image-{abi}")
    version = re.search(r"^Version: (\S+)", show, re.M)
    if not version:
        raise BuildError(f"apt-cache show linux-image-{abi} gives no version")
    return abi, version.group(1)


def installed(package: str) -> bool:
    result = subprocess.run(["dpkg-query", "-W", "-f", "${Status}", package], capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.endswith("installed")


def install(*packages: str) -> None:
    missing = [p for p in packages if not installed(p)]
    if missing:
        log(f"apt-get install {' '.join(missing)}")
        try:
            run("apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq",
                "--no-install-recommends", *missing)
        except BuildError as error:
            raise DownloadError(str(error)) from None


def download(package: str, into: Path) -> Path:
    """apt-get download into `into`; returns the .deb."""
    name = package.split("=")[0]
    log(f"apt-get download {package}")
    into.mkdir(parents=True, exist_ok=True)
    into.chmod(0o755)  # apt's sandbox user writes here
    try:
        run("apt-get", "download", package, cwd=into)
    except BuildError as error:
        raise DownloadError(str(error)) from None
    found = sorted(into.glob(f"{name}_*.deb"))
    if not found:
        raise DownloadError(f"apt-get download {package} left no .deb in {into}")
    return found[-1]


def source_deb(version: str, into: Path) -> Path:
    """The kernel source of the same version when apt still has it, else the current one
    (gpio-sim changes little within 6.1)."""
    try:
        return download(f"{SOURCE_PACKAGE}={version}", into)
    except DownloadError:
        log(f"{SOURCE_PACKAGE} {version} is not in apt; taking the current {SOURCE_PACKAGE}")
        return download(SOURCE_PACKAGE, into)


def extract_sources(deb: Path, into: Path) -> None:
    """gpio-sim.c, gpiolib.h and irq_sim.c out of the 140 MB source tarball (about 10 s)."""
    wanted = {"drivers/gpio/gpio-sim.c", "drivers/gpio/gpiolib.h", "kernel/irq/irq_sim.c"}
    log(f"extracting gpio-sim from {deb.name}")
    into.mkdir(parents=True, exist_ok=True)
    fsys = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(deb)], stdout=subprocess.PIPE)
    with tarfile.open(fileobj=fsys.stdout, mode="r|") as outer:
        for member in outer:
            if member.name.endswith(".tar.xz") and "/usr/src/" in member.name:
                inner_file = outer.extractfile(member)
                with tarfile.open(fileobj=inner_file, mode="r|xz") as inner:
                    for entry in inner:
                        rel = entry.name.split("/", 1)[-1]
                        if rel in wanted:
                            data = inner.extractfile(entry).read()
                            (into / Path(rel).name).write_bytes(data)
                break
    fsys.wait()
    missing = [w for w in wanted if not (into / Path(w).name).exists()]
    if missing:
        raise BuildError(f"{deb.name} has no {', '.join(missing)}")


def build_module(sources: Path, abi: str, into: Path) -> Path:
    """gpio-sim.ko (with irq_sim inside) against linux-headers-<abi>."""
    module = into / "gpio-sim.ko"
    if module.exists():
        return module
    headers = Path(f"/usr/src/linux-headers-{abi}")
    if not headers.is_dir():
        raise BuildError(f"{headers} is missing: apt-get install linux-headers-{abi}")
    into.mkdir(parents=True, exist_ok=True)
    shutil.copy(sources / "gpio-sim.c", into / "gpio-sim-core.c")
    shutil.copy(sources / "gpiolib.h", into / "gpiolib.h")
    irq_sim = (sources / "irq_sim.c").read_text()
    old, new = IRQ_SIM_FIX
    if old not in irq_sim:
        raise BuildError(f"irq_sim.c no longer calls {old!r}: adapt IRQ_SIM_FIX in {__file__}")
    (into / "irq_sim.c").write_text(irq_sim.replace(old, new))
    (into / "Kbuild").write_text("obj-m := gpio-sim.o\ngpio-sim-y := gpio-sim-core.o irq_sim.o\n")
    log(f"building gpio-sim.ko against {headers.name}")
    run("make", "-s", "-C", str(headers), f"M={into}", "modules")
    if not module.exists():
        raise BuildError(f"the module build left no {module}")
    return module


def module_depends(ko: bytes) -> list[str]:
    match = re.search(rb"\x00depends=([^\x00]*)\x00", b"\x00" + ko)
    return [d for d in match.group(1).decode().split(",") if d] if match else []


def read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".xz"):
        return lzma.decompress(data)
    if path.name.endswith(".zst"):
        return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    if path.name.endswith(".gz"):
        return gzip.decompress(data)
    return data


def guest_modules(modules_dir: Path, extra: list[str]) -> list[tuple[str, bytes]]:
    """The guest's modules (and `extra` ones) in load order, dependencies first,
    uncompressed for busybox's insmod."""
    index: dict[str, Path] = {}
    for path in modules_dir.rglob("*.ko*"):
        name = re.sub(r"\.ko(\.\w+)?$", "", path.name).replace("-", "_")
        index[name] = path
    ordered: list[tuple[str, bytes]] = []
    seen: set[str] = set()

    def add(name: str) -> None:
        key = name.replace("-", "_")
        if key in seen:
            return
        seen.add(key)
        if key not in index:
            raise BuildError(f"module {name} is not in {modules_dir}")
        data = read_module(index[key])
        for dep in module_depends(data):
            add(dep)
        ordered.append((key, data))

    for name in (*GUEST_MODULES, *extra):
        add(name)
    return ordered


def cpio_newc(entries: list[tuple[str, int, bytes]]) -> bytes:
    """A newc cpio archive (the initramfs format) of (path, mode, data) entries."""
    out = io.BytesIO()

    def pad(n: int) -> None:
        out.write(b"\0" * ((4 - n % 4) % 4))

    for ino, (path, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], start=1):
        name = path.encode() + b"\0"
        header = "070701" + "".join(f"{v:08X}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name), 0))
        out.write(header.encode() + name)
        pad(110 + len(name))
        out.write(data)
        pad(len(data))
    return out.getvalue()


def build_initramfs(modules: Path, gpio_sim: Path, into: Path) -> Path:
    busybox = Path("/bin/busybox")
    if not busybox.exists() or b"ld-linux" in busybox.read_bytes()[:4096]:
        raise BuildError("/bin/busybox is missing or not static: apt-get install busybox-static")
    dirs = ["bin", "dev", "proc", "sys", "mnt", "mnt/root", "lib", "lib/modules"]
    entries: list[tuple[str, int, bytes]] = [(d, stat.S_IFDIR | 0o755, b"") for d in dirs]
    entries.append(("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes()))
    entries.append(("bin/sh", stat.S_IFLNK | 0o777, b"busybox"))  # init.sh adds the rest
    entries.append(("init", stat.S_IFREG | 0o755, (HERE / "guest" / "init.sh").read_bytes()))
    order = (modules / "order").read_text().split()
    for name in order:
        entries.append((f"lib/modules/{name}.ko", stat.S_IFREG | 0o644, (modules / f"{name}.ko").read_bytes()))
    entries.append(("lib/modules/gpio_sim.ko", stat.S_IFREG | 0o644, gpio_sim.read_bytes()))
    order.append("gpio_sim")
    entries.append(("lib/modules/order", stat.S_IFREG | 0o644, ("\n".join(order) + "\n").encode()))
    image = into / "initramfs.cpio.gz"
    tmp = image.with_suffix(".tmp")
    tmp.write_bytes(gzip.compress(cpio_newc(entries), compresslevel=6))
    tmp.replace(image)
    return image


def kernel_and_modules(abi: str, version: str, home: Path, gpio_sim: Path) -> tuple[Path, Path]:
    """vmlinuz and the guest's modules (in load order) out of the linux-image package;
    the 70 MB package and its 400 MB of modules are not kept."""
    kernel, modules = home / "vmlinuz", home / "modules"
    if kernel.exists() and (modules / "order").exists():
        return kernel, modules
    work = home / "work"
    shutil.rmtree(work, ignore_errors=True)
    deb = download(f"linux-image-{abi}={version}", work)
    log(f"unpacking {deb.name}")
    run("dpkg-deb", "-x", str(deb), str(work / "root"))
    shutil.rmtree(modules, ignore_errors=True)
    modules.mkdir(parents=True)
    ordered = guest_modules(work / "root" / "lib" / "modules" / abi, module_depends(gpio_sim.read_bytes()))
    for name, data in ordered:
        (modules / f"{name}.ko").write_bytes(data)
    shutil.copy(work / "root" / "boot" / f"vmlinuz-{abi}", kernel)
    (modules / "order").write_text("\n".join(name for name, _ in ordered) + "\n")
    shutil.rmtree(work)
    return kernel, modules


def gpio_sim_module(abi: str, version: str, home: Path) -> Path:
    module = home / "gpio-sim" / "gpio-sim.ko"
    if module.exists():
        return module
    work = home / "work-src"
    shutil.rmtree(work, ignore_errors=True)
    extract_sources(source_deb(version, work), work / "src")
    module = build_module(work / "src", abi, home / "gpio-sim")
    shutil.rmtree(work)
    return module


def build() -> Artifacts:
    """Everything the boot needs, from the cache when it is there. apt's lists may be older
    than the mirror (a package no longer there): then apt-get update and once more."""
    if os.geteuid() != 0:
        raise BuildError("the hardware-in-the-loop build needs root (apt-get, the kernel module build)")
    try:
        return _build()
    except DownloadError as error:
        log(f"{error}; running apt-get update and trying again")
        run("apt-get", "update", "-qq")
        return _build()


def _build() -> Artifacts:
    abi, version = kernel_abi()
    home = CACHE / abi
    install(*BUILD_TOOLS, f"linux-headers-{abi}")
    gpio_sim = gpio_sim_module(abi, version, home)
    kernel, modules = kernel_and_modules(abi, version, home, gpio_sim)
    initramfs = build_initramfs(modules, gpio_sim, home)  # cheap: always rebuilt, so init.sh edits count
    for old in CACHE.iterdir():  # an older kernel's build (after an apt upgrade) is not needed again
        if old.is_dir() and old.name != abi and old.name.endswith("-amd64"):
            shutil.rmtree(old, ignore_errors=True)
    return Artifacts(abi, kernel, initramfs)


def main() -> int:
    try:
        artifacts = build()
    except BuildError as error:
        print(f"hil-build: {error}", file=sys.stderr)
        return 2
    print(artifacts.abi, artifacts.kernel, artifacts.initramfs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
