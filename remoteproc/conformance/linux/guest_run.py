"""One boot of the Linux guest next to a host remote: the way every scenario of Linux's remoteproc core as a peer
runs (docs/linux-conformance.md, "remoteproc core").

:func:`run_guest` writes a fresh memory file, starts the host remote (the firmware's C library,
``host/uml_remote.c``, rproc's Python remote, ``uml_py_remote.py``, or the emulated Cortex-M33, ``uml_qemu.py``;
:func:`remote_command`), boots UML with the guest's script and yields once UML has exited; the remote copies the
file at each DRIVER_OK and STOP. :func:`boot_firmware` wraps it for a firmware ELF into a :class:`Run`, what the
checks read: the console, the remote's lines and those copies. :data:`CHANNELS` is the guest's shell for waiting
for the rpmsg channel, shared by every script that needs it.
"""

from __future__ import annotations

import contextlib
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from remoteproc.conformance.linux import uml_qemu
from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, REPO, Layout, build_firmware, build_remote
from remoteproc.conformance.linux.uml import UmlGuest
from remoteproc.elf import read_elf

GUEST_MEM = "64M"
FILL = 0xA5  # the memory file's bytes before boot: zero-fill and untouched bytes both show
BOOT_TIMEOUT = 90.0
REMOTES = ("c", "python")
QEMU = "qemu"  # the Cortex-M33 remote: its own firmware and memory map (uml_qemu.py), booted with m33=True
REMOTE_CHOICES = (*REMOTES, QEMU)

# The channel comes back under the same name after a stop or a recovery: count the kernel's announcements
# (virtio_rpmsg_bus.c rpmsg_create_channel via the name service: "creating channel"), then look it up again.
CHANNELS = """
wait_channels() {
    i=0
    while [ "$(dmesg | grep -c 'creating channel rpmsg-raw')" -lt $1 ] && [ $i -lt 600 ]; do
        sleep 0.05; i=$((i+1))
    done
}
channel() {  # the $1th announcement of rpmsg-raw: DEV=its /dev/rpmsgN
    wait_channels $1
    rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
    DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
    echo "rproc-channels announced=$(dmesg | grep -c 'creating channel rpmsg-raw') dev=$DEV"
}
"""
"""Shell functions for the guest's scripts: ``wait_channels N`` until rpmsg-raw was announced N times,
``channel N`` then looks it up (``DEV=``) and prints ``rproc-channels announced=N dev=/dev/rpmsgM``."""


def remote_command(kind: str, out_dir: Path) -> list[str]:
    """The host remote: ``c`` (host/uml_remote.c, built into ``out_dir``) or ``python`` (uml_py_remote.py); or
    ``qemu``, the emulated Cortex-M33 running ARM firmware from the file (uml_qemu.py: boot it with ``m33=True``)."""
    if kind == "c":
        return [str(build_remote(out_dir))]
    if kind == "python":
        return [sys.executable, "-m", "remoteproc.conformance.linux.uml_py_remote"]
    if kind == QEMU:
        return [sys.executable, "-m", "remoteproc.conformance.linux.uml_qemu"]
    raise ValueError(f"no remote {kind!r}: {', '.join((*REMOTES, QEMU))}")


@dataclass
class HostRemote:
    """host/uml_remote.c running, its output lines collected."""

    proc: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                with self.cond:
                    self.lines.append(line.rstrip("\n"))
                    self.cond.notify_all()

        threading.Thread(target=read, name="uml-remote", daemon=True).start()

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        regex = re.compile(pattern)
        with self.cond:
            found: list[re.Match[str]] = []

            def seen() -> bool:
                found[:] = [m for m in map(regex.search, self.lines) if m is not None]
                return bool(found)

            if not self.cond.wait_for(seen, timeout):
                raise AssertionError(f"uml-remote printed no /{pattern}/ in {timeout} s: {self.lines}")
            return found[0]


@dataclass
class Run:
    layout: Layout
    firmware: Path
    guest: UmlGuest
    remote: HostRemote
    snapshot: Path

    def results(self) -> list[str]:
        return [line for line in self.guest.lines if re.match(r"^(rproc-[a-z]+ |[a-z-]+ .*\b(ok|fail)\b)", line)]

    def boot_image(self, n: int) -> bytes:
        """The memory file as it was when DRIVER_OK appeared in the ``n``th boot."""
        return Path(f"{self.snapshot}.{n}").read_bytes()

    def stop_image(self, n: int) -> bytes:
        """The memory file when the ``n``th STOP arrived."""
        return Path(f"{self.snapshot}.stop.{n}").read_bytes()


@dataclass
class Guest:
    """A guest that ran its script next to a host remote (:func:`run_guest`): what the checks read."""

    guest: UmlGuest
    remote: HostRemote
    snapshot: Path


@contextlib.contextmanager
def run_guest(
    images: UmlImages,
    remote_command: list[str],
    tmp: Path,
    layout: Layout,
    table_da: int,
    script: str,
    kernel_args: Callable[[Path, Path], list[str]] | None = None,
    timeout: float = BOOT_TIMEOUT,
    end_remote: bool = False,
) -> Iterator[Guest]:
    """The one way every boot of this catalogue runs: a fresh memory file (``FILL``), the host remote
    (``remote_command MEMFILE SOCKET RSC_DA SNAPSHOT``), UML with ``kernel_args(memfile, socket)`` (default:
    ``layout.kernel_args``: iomem= and the uml_rproc carveouts) and ``firmware_class.path=/host`` (the share,
    ``tmp/share``, is the guest's /host), the script; yields once UML has exited. ``end_remote``: terminate a
    remote still running then (a refused firmware never started it), else it must end by itself (the socket's
    end)."""
    memfile = tmp / "rproc-mem"
    memfile.write_bytes(bytes([FILL]) * layout.size)
    sock = tmp / "rproc.sock"
    snapshot = tmp / "snapshot"
    proc = subprocess.Popen(
        [*remote_command, str(memfile), str(sock), hex(table_da), str(snapshot)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    remote = HostRemote(proc)
    remote.start_reader()
    guest = UmlGuest(
        images,
        tmp / "share",
        mem=GUEST_MEM,
        aslr=False,
        extra_args=[*(kernel_args or layout.kernel_args)(memfile, sock), "firmware_class.path=/host"],
    )
    try:
        remote.wait_for(r"uml-remote: listening", 10)
        guest.start(script)
        guest.wait_for(r"rproc-guest: exit \d+", timeout)
        guest.wait_exit(30)
        if end_remote and proc.poll() is None:
            proc.terminate()
        proc.wait(timeout=10)
        yield Guest(guest, remote, snapshot)
    finally:
        guest.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def expect_results(run: Run, patterns: list[str]) -> list[str]:
    """The console is clean, no result line says ``fail`` and each pattern matches a result line; the results."""
    run.guest.check_console_clean()
    results = run.results()
    failed = [line for line in results if re.search(r"\bfail\b", line)]
    assert not failed, "\n".join(failed + run.guest.lines[-60:])
    for pattern in patterns:
        assert any(re.search(pattern, line) for line in results), f"no line matches {pattern!r}:\n" + "\n".join(results)
    return results


@contextlib.contextmanager
def boot_firmware(
    images: UmlImages,
    remote_command: list[str] | None,
    tmp: Path,
    script: str,
    layout: Layout,
    firmware: Path,
    kernel_args: Callable[[Path, Path], list[str]] | None = None,
    timeout: float = BOOT_TIMEOUT,
    end_remote: bool = False,
) -> Iterator[Run]:
    """:func:`run_guest` for ``firmware`` (its resource table's da told to the remote) as a :class:`Run`;
    ``remote_command`` None: no remote listens (the driver must refuse its parameters before it connects)."""
    section = read_elf(firmware).resource_table
    assert section is not None
    command = remote_command or [sys.executable, "-c", "print('uml-remote: listening', flush=True)"]
    with run_guest(images, command, tmp, layout, section.addr, script, kernel_args, timeout, end_remote) as ran:
        yield Run(layout, firmware, ran.guest, ran.remote, ran.snapshot)


def boot_with(
    images: UmlImages,
    remote_command: list[str] | None,
    tmp: Path,
    script: str,
    layout: Layout,
    kernel_args: Callable[[Path, Path], list[str]],
    timeout: float = BOOT_TIMEOUT,
) -> contextlib.AbstractContextManager[Run]:
    """Like :func:`boot`, with host/uml_fw.c linked for ``layout`` and the kernel arguments
    ``kernel_args(memfile, socket)`` (iomem=, uml_rproc.*)."""
    firmware = build_firmware(layout, tmp / "share")
    return boot_firmware(images, remote_command, tmp, script, layout, firmware, kernel_args, timeout)


def boot(
    images: UmlImages,
    remote_command: list[str],
    tmp: Path,
    script: str,
    timeout: float = BOOT_TIMEOUT,
    firmware_subdir: str = "",
    m33: bool = False,
) -> contextlib.AbstractContextManager[Run]:
    """Boot the guest with ``script`` against a fresh remote and memory file; yields once UML has exited.

    The firmware is built into the share (the guest's /host, where firmware_class.path points) or into
    ``firmware_subdir`` of it, from where the guest has to put it in place itself."""
    layout = uml_qemu.m33_layout() if m33 else Layout.for_guest_mem(GUEST_MEM)
    share = tmp / "share"
    if m33:  # ARM firmware at the M33's addresses; the table's da are the M33's (uml_rproc.da=)
        firmware = uml_qemu.build_firmware(layout, share / firmware_subdir, FIRMWARE_NAME)
    else:
        firmware = build_firmware(layout, share / firmware_subdir)
    extra = uml_qemu.kernel_args(layout) if m33 else []
    args = lambda memfile, sock: [*layout.kernel_args(memfile, sock), *extra]  # noqa: E731
    return boot_firmware(images, remote_command, tmp, script, layout, firmware, args, timeout)
