"""Build (once, then cached) a User-Mode-Linux kernel with the kernel's own rpmsg drivers and its initramfs.

The kernel is Debian's ``linux-source-6.1`` (or ``linux-source-6.12``: ``--kernel 6.12``), configured from
``make ARCH=um tinyconfig`` plus ``kernel.config``, with the files under ``kernel-tree/`` copied into its tree (new
kernel source files, e.g. drivers/remoteproc/uml_rproc.c) and patched with the ``*.patch`` files next to this
module (each replaced by its rebase in ``patches-<kernel>/`` where that kernel needs one). The initramfs holds
static busybox, ``guest/init`` as ``/init`` and ``guest/rpmsg_probe.c`` compiled (static) to ``/bin/rpmsg-probe``.

Both are cached under ``${XDG_CACHE_HOME:-~/.cache}/rproc/uml/``, each in a directory named after a hash of
everything it is built from, so changing the guest program rebuilds only the initramfs (seconds), while a
change to the kernel inputs rebuilds the kernel (minutes). A build happens in a temporary directory next to
the cache entry and is renamed into place at the end: a cache entry that exists is complete.

    python -m remoteproc.conformance.linux.build [--kernel 6.1|6.12] [--force]    # prints the two paths
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
CONFIG_FRAGMENT = HERE / "kernel.config"
KERNEL_TREE = HERE / "kernel-tree"
GUEST = HERE / "guest"
INIT_SCRIPT = GUEST / "init"
PROBE_SOURCE = GUEST / "rpmsg_probe.c"

KERNELS = ("6.1", "6.12")
"""The kernels this builds, each from Debian's linux-source-<version> package."""
DEFAULT_KERNEL = "6.1"
BUSYBOX_PACKAGE = "busybox-static"
BUSYBOX = Path("/bin/busybox")
# Everything the build runs besides the kernel's source: its build dependencies, busybox, and a static libc for
# rpmsg-probe.
APT_PACKAGES = (
    BUSYBOX_PACKAGE,
    "bc",
    "bison",
    "flex",
    "libelf-dev",
    "gcc",
    "libc6-dev",
    "make",
    "patch",
    "xz-utils",
)

KERNEL_FILE = "linux"
INITRAMFS_FILE = "initramfs.cpio"
GEN_INIT_CPIO = "gen_init_cpio"

Progress = Callable[[str], None]


class BuildError(RuntimeError):
    """The kernel or the initramfs could not be built; the message says which step and why."""


@dataclass(frozen=True)
class UmlImages:
    """A bootable UML kernel (an executable) and its initramfs."""

    linux: Path
    initramfs: Path


def _stderr_progress(message: str) -> None:
    print(f"rproc-uml: {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "rproc" / "uml"


# ---- packages ---------------------------------------------------------------------------------------------


def _missing_packages(packages: Sequence[str]) -> list[str]:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Package} ${Status}\n", *packages], capture_output=True, text=True, check=False
    )
    installed = {line.split()[0] for line in result.stdout.splitlines() if line.strip().endswith(" installed")}
    return [p for p in packages if p not in installed]


def ensure_packages(progress: Progress = _stderr_progress, packages: Sequence[str] = APT_PACKAGES) -> None:
    """Install the Debian packages the build needs that are missing (apt-get, with sudo when not root)."""
    missing = _missing_packages(packages)
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo"]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    install = [*sudo, "apt-get", "install", "-y", "-q", "--no-install-recommends", *missing]
    progress(f"installing Debian packages: {' '.join(missing)}")
    if subprocess.run(install, env=env, check=False).returncode != 0:
        # Perhaps the package lists are stale or absent: refresh them once and try again.
        subprocess.run([*sudo, "apt-get", "update", "-q"], env=env, check=False)
        if subprocess.run(install, env=env, check=False).returncode != 0:
            raise BuildError(f"could not install the Debian packages {', '.join(missing)}")
    still = _missing_packages(missing)
    if still:
        raise BuildError(f"Debian packages still missing after apt-get install: {', '.join(still)}")


def _package_version(package: str) -> str:
    result = subprocess.run(["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not result.stdout.strip():
        raise BuildError(f"Debian package {package} is not installed")
    return result.stdout.strip()


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


def _digest(parts: Sequence[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for name, data in parts:
        h.update(name.encode())
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.hexdigest()[:16]


def kernel_key(kernel: str = DEFAULT_KERNEL) -> str:
    parts = [
        ("linux-source", f"{source_package(kernel)} {_package_version(source_package(kernel))}".encode()),
        ("kernel.config", CONFIG_FRAGMENT.read_bytes()),
        ("build.py", Path(__file__).read_bytes()),
    ]
    parts += [(f"tree:{p}", (KERNEL_TREE / p).read_bytes()) for p in tree_files()]
    parts += [(f"patch:{p.name}", p.read_bytes()) for p in patches(kernel)]
    return _digest(parts)


def _tool_version(command: Sequence[str]) -> bytes:
    result = subprocess.run(list(command), capture_output=True, check=False)
    return result.stdout.splitlines()[0] if result.stdout else b""


def initramfs_key(kernel: str = DEFAULT_KERNEL) -> str:
    package = source_package(kernel)
    return _digest(
        [
            ("linux-source", f"{package} {_package_version(package)}".encode()),  # gen_init_cpio comes from it
            ("busybox", _package_version(BUSYBOX_PACKAGE).encode()),
            ("busybox-binary", hashlib.sha256(BUSYBOX.read_bytes()).digest()),
            ("libc6-dev", _package_version("libc6-dev").encode()),
            ("gcc", _tool_version(["gcc", "--version"])),
            ("init", INIT_SCRIPT.read_bytes()),
            ("rpmsg_probe.c", PROBE_SOURCE.read_bytes()),
            ("build.py", Path(__file__).read_bytes()),
        ]
    )


# ---- cache entries ----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(root: Path, name: str) -> Iterator[None]:
    """Serialise builders of one cache entry (several pytest processes may start at once)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _remove_abandoned(root: Path) -> None:
    """Remove the scratch directories of builds that were killed (``.tmp-<name>-*`` whose lock is free)."""
    for tmp in root.glob(".tmp-*-*"):
        name = tmp.name[len(".tmp-") :].rsplit("-", 1)[0]
        with open(root / f".{name}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # being built right now
            shutil.rmtree(tmp, ignore_errors=True)


def _build_entry(root: Path, name: str, force: bool, build: Callable[[Path, Path, Path], None]) -> Path:
    """The cache directory ``root/name``, made by ``build(result_dir, scratch_dir, log)`` unless it exists.

    ``build`` fills ``result_dir``, which is renamed to ``root/name`` only when it returned; scratch space
    and leftovers of interrupted builds (``.tmp-<name>-*``) are removed. The build log ends up in
    ``root/name/build.log``, or stays in ``root/.name.log`` when the build failed.
    """
    final = root / name
    if final.is_dir() and not force:
        os.utime(final)  # most recently used: kept by _prune
        return final
    with _locked(root, name):
        if final.is_dir() and not force:
            return final  # another process built it while we waited
        for stale in root.glob(f".tmp-{name}-*"):
            shutil.rmtree(stale, ignore_errors=True)  # we hold the lock: nobody is using these
        _remove_abandoned(root)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=root))
        try:
            result = tmp / "result"
            scratch = tmp / "scratch"
            result.mkdir()
            scratch.mkdir()
            log = root / f".{name}.log"
            log.unlink(missing_ok=True)
            build(result, scratch, log)
            log.rename(result / "build.log")
            if final.exists():  # --force: replace the old entry
                old = tmp / "old"
                final.rename(old)
            result.rename(final)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    _prune(root, name.split("-", 1)[0], keep=KEEP_ENTRIES)
    return final


KEEP_ENTRIES = 8
"""Cache entries of each kind kept, most recently used first: a new build input (config, patch, package
version) makes a new entry, and older ones would otherwise pile up (a kernel entry is about 5 MB). Two kernels
(6.1, 6.12) and several checkouts with different driver sources share the cache: fewer would evict an entry
another checkout is about to use and make it build again."""


def _prune(root: Path, kind: str, keep: int) -> None:
    entries = sorted((p for p in root.glob(f"{kind}-*") if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[keep:]:
        shutil.rmtree(old, ignore_errors=True)


# ---- running the build ------------------------------------------------------------------------------------


def _build_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ARCH", "CROSS_COMPILE", "O", "KBUILD_OUTPUT")}
    env.update(
        LC_ALL="C",
        KBUILD_BUILD_USER="rproc",
        KBUILD_BUILD_HOST="rproc",
        KBUILD_BUILD_TIMESTAMP="2000-01-01",
    )
    return env


def _run(
    command: Sequence[str | Path],
    cwd: Path,
    log: Path,
    what: str,
    progress: Progress | None = None,
    stdout: Path | None = None,
) -> None:
    """Run a build step; its output goes to ``log``; on failure raise with the log's last lines.

    With ``progress``, report every 15 s how far it got (the last line of output).
    """
    tail: collections.deque[bytes] = collections.deque(maxlen=40)
    with contextlib.ExitStack() as stack:
        log_file = stack.enter_context(open(log, "ab"))
        log_file.write(f"$ {' '.join(map(str, command))}\n".encode())
        log_file.flush()
        out_file = stack.enter_context(open(stdout, "wb")) if stdout is not None else None
        proc = subprocess.Popen(
            [str(c) for c in command],
            cwd=cwd,
            env=_build_env(),
            stdin=subprocess.DEVNULL,
            stdout=out_file if out_file is not None else subprocess.PIPE,
            stderr=subprocess.STDOUT if out_file is None else log_file,
        )
        try:
            lines = 0
            last_report = time.monotonic()
            if proc.stdout is not None:
                for line in proc.stdout:
                    log_file.write(line)
                    tail.append(line)
                    lines += 1
                    if progress is not None and time.monotonic() - last_report >= 15:
                        last_report = time.monotonic()
                        progress(f"{what}: {lines} steps, at {line.decode(errors='replace').strip()}")
            returncode = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            if proc.stdout is not None:
                proc.stdout.close()
    if returncode != 0:
        shown = b"".join(tail).decode(errors="replace") if tail else log.read_text(errors="replace")[-4000:]
        raise BuildError(f"{what} failed (exit status {returncode}); full log: {log}\n{shown}")


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
    _run(["tar", "-xf", tarball, "-C", scratch], scratch, log, "extracting the kernel source")
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
        _run(["patch", "-p1", "--forward", "--batch", "-i", patch], src, log, f"applying {patch.name}")
    progress("configuring: tinyconfig + kernel.config")
    _run(["make", "ARCH=um", "tinyconfig"], src, log, "make tinyconfig")
    _run(["scripts/kconfig/merge_config.sh", "-m", ".config", CONFIG_FRAGMENT], src, log, "merge_config.sh")
    _run(["make", "ARCH=um", "olddefconfig"], src, log, "make olddefconfig")
    verify_config(src / ".config")
    jobs = len(os.sched_getaffinity(0))
    progress(f"compiling the kernel with make -j{jobs} (a few minutes)")
    _run(["make", "ARCH=um", f"-j{jobs}", "linux"], src, log, "compiling the kernel", progress)
    progress("compiling gen_init_cpio")
    _run(
        ["gcc", "-O2", "-o", result / GEN_INIT_CPIO, src / "usr" / "gen_init_cpio.c"],
        src,
        log,
        "compiling usr/gen_init_cpio.c",
    )
    shutil.copy2(src / "linux", result / KERNEL_FILE)
    shutil.copy2(src / ".config", result / "config")
    (result / "source").write_text(
        f"{source_package(kernel)} {_package_version(source_package(kernel))}\n"
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
    _run(
        ["gcc", "-static", "-O2", "-Wall", "-Werror", "-o", probe, PROBE_SOURCE],
        scratch,
        log,
        f"compiling {PROBE_SOURCE.name}",
    )
    listing = scratch / "initramfs.list"
    listing.write_text(_cpio_list(probe))
    _run([gen_init_cpio, listing], scratch, log, "gen_init_cpio", stdout=result / INITRAMFS_FILE)
    shutil.copy2(listing, result / "initramfs.list")


def ensure_uml(progress: Progress | None = None, force: bool = False, kernel: str = DEFAULT_KERNEL) -> UmlImages:
    """The UML kernel (Linux ``kernel``: one of KERNELS) and initramfs, built first if they are not in the cache
    (or with ``force``)."""
    report = progress or _stderr_progress
    ensure_packages(report, (*APT_PACKAGES, source_package(kernel)))
    root = cache_root()
    kernel_dir = _build_entry(
        root,
        f"kernel-{kernel_key(kernel)}",
        force,
        lambda result, scratch, log: _build_kernel(result, scratch, log, report, kernel),
    )
    gen_init_cpio = kernel_dir / GEN_INIT_CPIO
    initramfs_dir = _build_entry(
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
