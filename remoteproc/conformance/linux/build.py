"""The recipe of the User-Mode-Linux kernel with the kernel's own rpmsg drivers and its initramfs: what is built,
from what, and the cache keys that name it.

The kernel is Debian's ``linux-source-6.1`` (or ``linux-source-6.12``: ``--kernel 6.12``), configured from
``make ARCH=um tinyconfig`` plus ``kernel.config``, with the files under ``kernel-tree/`` copied into its tree (new
kernel source files, e.g. drivers/remoteproc/uml_rproc.c) and patched with the ``*.patch`` files next to this
module (each replaced by its rebase in ``patches-<kernel>/`` where that kernel needs one). The initramfs holds
static busybox, ``guest/init`` as ``/init`` and the guest program, every ``guest/*.c`` compiled (static) into
``/bin/rpmsg-probe`` (``guest_sources``: main in rpmsg_probe.c, the commands in probe_data.c and probe_ctrl.c).

Both are cached (build_cache.py) under ``${XDG_CACHE_HOME:-~/.cache}/rproc/uml/``, each in a directory named after
a hash of everything it is built from (``kernel_key``, ``initramfs_key``), so changing the guest program rebuilds
only the initramfs (seconds), while a change to the kernel inputs rebuilds the kernel (minutes). Both keys hash
the bytes of the recipe modules, by name (``RECIPE_MODULES``: this one and build_steps.py, which runs each step in
a fixed environment), not those of the cache bookkeeping (build_cache.py), the package installer
(build_packages.py) or the error and progress types (build_report.py): changing those rebuilds nothing. The Debian
packages the build needs are installed first when missing (build_packages.py).

    python -m remoteproc.conformance.linux.build [--kernel 6.1|6.12] [--force]    # prints the two paths
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from remoteproc.conformance.linux.build_cache import build_entry, cache_root
from remoteproc.conformance.linux.build_packages import (
    APT_PACKAGES,
    BUSYBOX_PACKAGE,
    ensure_packages,
    package_version,
)
from remoteproc.conformance.linux.build_report import BuildError, Progress, stderr_progress
from remoteproc.conformance.linux.build_steps import run_step

__all__ = [
    "APT_PACKAGES",
    "DEFAULT_KERNEL",
    "KERNELS",
    "RECIPE_MODULES",
    "BuildError",
    "Progress",
    "UmlImages",
    "cache_root",
    "ensure_packages",
    "ensure_uml",
    "guest_sources",
    "initramfs_inputs",
    "initramfs_key",
    "kernel_inputs",
    "kernel_key",
    "main",
    "patches",
    "probe_compile_command",
    "source_package",
    "source_tarball",
    "tree_files",
    "verify_config",
]

HERE = Path(__file__).resolve().parent
CONFIG_FRAGMENT = HERE / "kernel.config"
KERNEL_TREE = HERE / "kernel-tree"
GUEST = HERE / "guest"
INIT_SCRIPT = GUEST / "init"

KERNELS = ("6.1", "6.12")
"""The kernels this builds, each from Debian's linux-source-<version> package."""
DEFAULT_KERNEL = "6.1"
BUSYBOX = Path("/bin/busybox")

KERNEL_FILE = "linux"
INITRAMFS_FILE = "initramfs.cpio"
GEN_INIT_CPIO = "gen_init_cpio"

RECIPE_MODULES = ("build.py", "build_steps.py")
"""The Python modules (in this directory) that shape what gets built: the steps and their order, the config check,
the initramfs listing (build.py), each command's environment (build_steps.py). Their bytes go into both cache
keys, each under its name (``recipe:build.py``, ``recipe:build_steps.py``); those of the cache bookkeeping
(build_cache.py), the package installer (build_packages.py) and the error and progress types (build_report.py) do
not, so changing them rebuilds nothing. A module that takes over part of the recipe is added here."""


@dataclass(frozen=True)
class UmlImages:
    """A bootable UML kernel (an executable) and its initramfs."""

    linux: Path
    initramfs: Path


# ---- cache keys -------------------------------------------------------------------------------------------


def source_package(kernel: str) -> str:
    if kernel not in KERNELS:
        raise BuildError(f"no kernel {kernel!r}: this builds {', '.join(KERNELS)}")
    return f"linux-source-{kernel}"


def source_tarball(kernel: str) -> Path:
    return Path("/usr/src") / f"{source_package(kernel)}.tar.xz"


def patches(kernel: str = DEFAULT_KERNEL) -> list[Path]:
    """The kernel patches, applied in name order: those next to this module, each replaced by the file of the same
    name in ``patches-<kernel>/`` (its rebase for that kernel), plus that directory's own."""
    chosen = {p.name: p for p in HERE.glob("*.patch")}
    chosen.update({p.name: p for p in (HERE / f"patches-{kernel}").glob("*.patch")})
    return [chosen[name] for name in sorted(chosen)]


def tree_files() -> list[Path]:
    """The files copied into the kernel tree (relative to ``kernel-tree/``), in name order."""
    return sorted(p.relative_to(KERNEL_TREE) for p in KERNEL_TREE.rglob("*") if p.is_file())


def guest_sources() -> list[Path]:
    """The guest program's sources (``guest/*.c``, ``guest/*.h``), in name order: each goes into the initramfs
    key under its name (``guest:<name>``), and every ``.c`` is compiled into ``/bin/rpmsg-probe``."""
    return sorted((p for p in GUEST.iterdir() if p.is_file() and p.suffix in (".c", ".h")), key=lambda p: p.name)


def probe_compile_command(output: Path) -> list[str | Path]:
    """The gcc command that builds ``/bin/rpmsg-probe`` (static) at ``output`` from every guest ``.c``."""
    sources = [p for p in guest_sources() if p.suffix == ".c"]
    return ["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", output, *sources]


def _digest(parts: Sequence[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode())
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def _recipe() -> list[tuple[str, bytes]]:
    """The recipe modules' bytes, by name, and the names of the Debian packages the build runs (their versions
    go into the keys where they shape the result)."""
    parts = [(f"recipe:{name}", (HERE / name).read_bytes()) for name in RECIPE_MODULES]
    parts.append(("apt-packages", " ".join(APT_PACKAGES).encode()))
    return parts


def kernel_inputs(kernel: str = DEFAULT_KERNEL) -> list[tuple[str, bytes]]:
    """What the kernel entry is built from, by name: the source package and its version, ``kernel.config``, the
    recipe (``RECIPE_MODULES``, the package names), the files of ``kernel-tree/`` and the patches."""
    package = source_package(kernel)
    parts = [
        ("linux-source", f"{package} {package_version(package)}".encode()),
        ("kernel.config", CONFIG_FRAGMENT.read_bytes()),
        *_recipe(),
    ]
    parts += [(f"tree:{p}", (KERNEL_TREE / p).read_bytes()) for p in tree_files()]
    parts += [(f"patch:{p.name}", p.read_bytes()) for p in patches(kernel)]
    return parts


def kernel_key(kernel: str = DEFAULT_KERNEL) -> str:
    """The hash naming the kernel's cache entry (``kernel-<key>``): of ``kernel_inputs``."""
    return _digest(kernel_inputs(kernel))


def _tool_version(command: Sequence[str]) -> bytes:
    result = subprocess.run(list(command), capture_output=True, check=False)
    return result.stdout.splitlines()[0] if result.stdout else b""


def initramfs_inputs(kernel: str = DEFAULT_KERNEL) -> list[tuple[str, bytes]]:
    """What the initramfs entry is built from, by name: the kernel source (gen_init_cpio comes from it), busybox
    (package version and binary), libc6-dev, gcc, ``/init``, the guest program's sources (``guest_sources``) and
    the recipe."""
    package = source_package(kernel)
    return [
        ("linux-source", f"{package} {package_version(package)}".encode()),  # gen_init_cpio comes from it
        ("busybox", package_version(BUSYBOX_PACKAGE).encode()),
        ("busybox-binary", hashlib.sha256(BUSYBOX.read_bytes()).digest()),
        ("libc6-dev", package_version("libc6-dev").encode()),
        ("gcc", _tool_version(["gcc", "--version"])),
        ("init", INIT_SCRIPT.read_bytes()),
        *((f"guest:{p.name}", p.read_bytes()) for p in guest_sources()),
        *_recipe(),
    ]


def initramfs_key(kernel: str = DEFAULT_KERNEL) -> str:
    """The hash naming the initramfs's cache entry (``initramfs-<key>``): of ``initramfs_inputs``."""
    return _digest(initramfs_inputs(kernel))


# ---- the build --------------------------------------------------------------------------------------------


def _read_fragment() -> tuple[dict[str, str], list[str]]:
    """The fragment's ``CONFIG_X=value`` settings and its ``# CONFIG_X is not set`` names."""
    wanted: dict[str, str] = {}
    unset: list[str] = []
    for raw in CONFIG_FRAGMENT.read_text().splitlines():
        line = raw.strip()
        if line.startswith("# CONFIG_") and line.endswith(" is not set"):
            unset.append(line[2 : -len(" is not set")])
        elif line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            wanted[key] = value
    return wanted, unset


def verify_config(config: Path) -> None:
    """Every setting of kernel.config made it into ``config`` (Kconfig silently drops unmet ones)."""
    have: dict[str, str] = {}
    for line in config.read_text().splitlines():
        if line.startswith("CONFIG_") and "=" in line:
            key, value = line.split("=", 1)
            have[key] = value
    wanted, unset = _read_fragment()
    problems = [
        f"{key}={value} (got {key}={have[key]})" if key in have else f"{key}={value} (not set)"
        for key, value in wanted.items()
        if have.get(key) != value and not (value == "n" and key not in have)
    ]
    problems += [f"{key} should not be set (got {key}={have[key]})" for key in unset if key in have]
    if problems:
        raise BuildError(
            f"kernel config: {len(problems)} option(s) of {CONFIG_FRAGMENT.name} did not end up in .config "
            "(unmet dependencies?):\n  " + "\n  ".join(problems)
        )


def _build_kernel(result: Path, scratch: Path, log: Path, progress: Progress, kernel: str = DEFAULT_KERNEL) -> None:
    started = time.monotonic()
    tarball = source_tarball(kernel)
    progress(f"extracting {tarball} (about 10-30 s)")
    run_step(["tar", "-xf", tarball, "-C", scratch], scratch, log, "extracting the kernel source")
    trees = [p for p in scratch.iterdir() if p.is_dir()]
    if len(trees) != 1:
        raise BuildError(f"{tarball} did not unpack to one directory: {trees}")
    src = trees[0]
    for rel in tree_files():
        progress(f"adding {rel}")
        (src / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(KERNEL_TREE / rel, src / rel)
    for patch in patches(kernel):
        progress(f"applying {patch.relative_to(HERE)}")
        run_step(["patch", "-p1", "--forward", "--batch", "-i", patch], src, log, f"applying {patch.name}")
    progress("configuring: tinyconfig + kernel.config")
    run_step(["make", "ARCH=um", "tinyconfig"], src, log, "make tinyconfig")
    run_step(["scripts/kconfig/merge_config.sh", "-m", ".config", CONFIG_FRAGMENT], src, log, "merge_config.sh")
    run_step(["make", "ARCH=um", "olddefconfig"], src, log, "make olddefconfig")
    verify_config(src / ".config")
    jobs = len(os.sched_getaffinity(0))
    progress(f"compiling the kernel with make -j{jobs} (a few minutes)")
    run_step(["make", "ARCH=um", f"-j{jobs}", "linux"], src, log, "compiling the kernel", progress)
    progress("compiling gen_init_cpio")
    run_step(
        ["gcc", "-O2", "-o", result / GEN_INIT_CPIO, src / "usr" / "gen_init_cpio.c"],
        src,
        log,
        "compiling usr/gen_init_cpio.c",
    )
    shutil.copy2(src / "linux", result / KERNEL_FILE)
    shutil.copy2(src / ".config", result / "config")
    (result / "source").write_text(
        f"{source_package(kernel)} {package_version(source_package(kernel))}\n"
        + "".join(f"file {p}\n" for p in tree_files())
        + "".join(f"patch {p.relative_to(HERE)}\n" for p in patches(kernel))
    )
    progress(f"kernel built in {time.monotonic() - started:.0f} s")


def _applets() -> list[str]:
    """busybox's applets as paths without the leading slash (bin/sh, sbin/poweroff, ...)."""
    result = subprocess.run([str(BUSYBOX), "--list-full"], capture_output=True, text=True, check=False)
    applets = [line.strip() for line in result.stdout.splitlines() if line.strip()]
    if result.returncode != 0 or "bin/sh" not in applets:
        raise BuildError(f"{BUSYBOX} --list-full failed or has no sh: {result.stderr.strip()}")
    return applets


def _cpio_list(probe: Path) -> str:
    lines = [
        "dir /dev 0755 0 0",
        "nod /dev/console 0600 0 0 c 5 1",  # init's stdin/stdout before devtmpfs is mounted
        "nod /dev/null 0666 0 0 c 1 3",
    ]
    directories = ["/bin", "/sbin", "/usr", "/usr/bin", "/usr/sbin", "/proc", "/sys", "/tmp", "/host", "/root"]
    lines += [f"dir {d} 0755 0 0" for d in directories]
    lines += [
        f"file /bin/busybox {BUSYBOX} 0755 0 0",
        f"file /init {INIT_SCRIPT} 0755 0 0",
        f"file /bin/rpmsg-probe {probe} 0755 0 0",
    ]
    lines += [f"slink /{applet} /bin/busybox 0777 0 0" for applet in _applets() if applet != "bin/busybox"]
    return "\n".join(lines) + "\n"


def _build_initramfs(result: Path, scratch: Path, log: Path, gen_init_cpio: Path, progress: Progress) -> None:
    progress("building the initramfs (busybox, /init, rpmsg-probe)")
    probe = scratch / "rpmsg-probe"
    run_step(probe_compile_command(probe), scratch, log, "compiling the guest program (guest/*.c)")
    listing = scratch / "initramfs.list"
    listing.write_text(_cpio_list(probe))
    run_step([gen_init_cpio, listing], scratch, log, "gen_init_cpio", stdout=result / INITRAMFS_FILE)
    shutil.copy2(listing, result / "initramfs.list")


def ensure_uml(progress: Progress | None = None, force: bool = False, kernel: str = DEFAULT_KERNEL) -> UmlImages:
    """The UML kernel (Linux ``kernel``: one of KERNELS) and initramfs, built first if they are not in the cache
    (or with ``force``)."""
    report = progress or stderr_progress
    ensure_packages(report, (*APT_PACKAGES, source_package(kernel)))
    root = cache_root()
    kernel_dir = build_entry(
        root,
        f"kernel-{kernel_key(kernel)}",
        force,
        lambda result, scratch, log: _build_kernel(result, scratch, log, report, kernel),
    )
    gen_init_cpio = kernel_dir / GEN_INIT_CPIO
    initramfs_dir = build_entry(
        root,
        f"initramfs-{initramfs_key(kernel)}",
        force,
        lambda result, scratch, log: _build_initramfs(result, scratch, log, gen_init_cpio, report),
    )
    return UmlImages(linux=kernel_dir / KERNEL_FILE, initramfs=initramfs_dir / INITRAMFS_FILE)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m remoteproc.conformance.linux.build",
        description="Build (or find in the cache) the UML kernel and initramfs of the Linux conformance tests.",
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when cached")
    parser.add_argument("--kernel", choices=KERNELS, default=DEFAULT_KERNEL, help="which Linux (default 6.1)")
    args = parser.parse_args(argv)
    try:
        images = ensure_uml(force=args.force, kernel=args.kernel)
    except BuildError as e:
        print(f"rproc-uml: {e}", file=sys.stderr)
        return 1
    print(images.linux)
    print(images.initramfs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
