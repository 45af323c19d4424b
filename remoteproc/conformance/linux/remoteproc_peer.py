"""Linux's remoteproc core (6.1 or 6.12, in UML) as a peer, the checks shared by the pytest scenarios
(tests/conformance/linux/test_remoteproc_linux.py) and ``rproc conformance --peer linux-remoteproc``.

One boot (:func:`boot`) runs a guest script against a fresh memory file and a host remote (the firmware's C
library, ``host/uml_remote.c``, or rproc's Python remote, ``uml_py_remote.py``); the remote copies the file at
each DRIVER_OK and STOP. The checks read the console, the remote's lines and those copies, and compare them with
what rproc's own loader and vdev sequence write for the same ELF and memory map (:func:`rproc_image`). Each check
returns its evidence or raises AssertionError saying what differs. ``break_mode`` makes rproc's side wrong on
purpose (:data:`BREAKS`), to show that a check can fail.
"""

from __future__ import annotations

import contextlib
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remoteproc.conformance.linux import uml_qemu
from remoteproc.conformance.linux.build import UmlImages, ensure_uml
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, REPO, Layout, build_firmware, build_remote
from remoteproc.conformance.linux.uml import UmlGuest
from remoteproc.conformance.report import Outcome, Report, Result
from remoteproc.elf import read_bytes, read_elf
from remoteproc.firmware import firmware_info
from remoteproc.loader import load_segments
from remoteproc.resources import Pool, handle_resources
from remoteproc.rproc import RPMSG_DRIVER_FEATURES
from remoteproc.vdev import VdevControl
from rpmsg.protocol import LINUX_BUFFER_SIZE
from transports.memory import MappedRegion, RegionMemory

GUEST_MEM = "64M"
FILL = 0xA5  # the memory file's bytes before boot: zero-fill and untouched bytes both show
BOOT_TIMEOUT = 90.0
RSC_TRACE, RSC_VDEV = 2, 3
REMOTES = ("c", "python")
QEMU = "qemu"  # the Cortex-M33 remote: its own firmware and memory map (uml_qemu.py), booted with m33=True

REMOTE_CHOICES = (*REMOTES, "qemu")
QEMU_OTHER_FIRMWARE = (
    "made for the host remotes' firmware and memory map; the Cortex-M33 runs the m33 scenarios "
    "(its own ARM firmware at its own addresses, and it writes its own bss: no image comparison)"
)


@dataclass(frozen=True)
class Break:
    """A way to make rproc's side wrong on purpose, and the scenarios it must make fail. ``in_boot``: the break
    changes what runs in the guest (the boot is made with it), else only what the checks compare with."""

    what: str
    fails: frozenset[str]
    in_boot: bool = False


BREAKS: dict[str, Break] = {
    "no-zero-fill": Break(
        "rproc's side leaves memsz - filesz unwritten",
        frozenset({"image-equals-rproc-loader", "recovery-reloads-the-image", "firmware-change-image"}),
    ),
    "stop-reset-vrings": Break("rproc's stop also writes vring da 0 / notifyid -1", frozenset({"table-after-stop"})),
    "stale-firmware": Break(
        "rproc's loader is given the first firmware after the change", frozenset({"firmware-change-image"})
    ),
    "send-waits-for-pollout": Break(
        "in the guest, RpmsgCharEndpoint.send waits for POLLOUT first (as before it met the real rpmsg_char)",
        frozenset({"guest-linux-platform"}),
        in_boot=True,
    ),
}

GUEST_SCRIPT = """
R=/sys/class/remoteproc/remoteproc0
echo "rproc-sysfs name=$(cat $R/name) state=$(cat $R/state) firmware=$(cat $R/firmware)"
echo start > $R/state
echo "rproc-sysfs started state=$(cat $R/state)"
rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
rpmsg-probe echo $DEV 1 16 300 496
rpmsg-probe write-expect-errno $DEV 497 EMSGSIZE
rpmsg-probe stream $DEV 300 496 32
rpmsg-probe ctrl-ept /dev/rpmsg_ctrl0 rpmsg-raw any 1024
mount -t debugfs none /sys/kernel/debug
echo "rproc-trace $(cat /sys/kernel/debug/remoteproc/remoteproc0/trace0)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
echo start > $R/state
echo "rproc-sysfs restarted state=$(cat $R/state)"
rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
rpmsg-probe echo $DEV 2 496
echo stop > $R/state
echo "rproc-sysfs stopped-again state=$(cat $R/state)"
"""


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


@contextlib.contextmanager
def boot(
    images: UmlImages,
    remote_command: list[str],
    tmp: Path,
    script: str,
    timeout: float = BOOT_TIMEOUT,
    firmware_subdir: str = "",
    m33: bool = False,
) -> Iterator[Run]:
    """Boot the guest with ``script`` against a fresh remote and memory file; yields once UML has exited.

    The firmware is built into the share (the guest's /host, where firmware_class.path points) or into
    ``firmware_subdir`` of it, from where the guest has to put it in place itself."""
    layout = uml_qemu.m33_layout() if m33 else Layout.for_guest_mem(GUEST_MEM)
    share = tmp / "share"
    if m33:  # ARM firmware at the M33's addresses; the table's da are the M33's (uml_rproc.da=)
        firmware = uml_qemu.build_firmware(layout, share / firmware_subdir, FIRMWARE_NAME)
    else:
        firmware = build_firmware(layout, share / firmware_subdir)
    table_da = read_elf(firmware).resource_table
    assert table_da is not None
    extra = uml_qemu.kernel_args(layout) if m33 else []
    args = lambda memfile, sock: [*layout.kernel_args(memfile, sock), *extra]  # noqa: E731
    with run_guest(images, remote_command, tmp, layout, table_da.addr, script, args, timeout) as ran:
        yield Run(layout, firmware, ran.guest, ran.remote, ran.snapshot)


# ---- the checks ----------------------------------------------------------------------------------------------


def check_boot_and_rpmsg(run: Run, break_mode: str = "") -> str:
    """sysfs start/stop twice, the channel announced, echoes, EMSGSIZE, a stream, rpmsg_ctrl, the trace buffer;
    the remote saw HELLO at the region's da, START at the ELF's entry, DRIVER_OK 0x07, every message echoed."""
    run.guest.check_console_clean()
    results = run.results()
    failed = [line for line in results if re.search(r"\bfail\b", line)]
    assert not failed, "\n".join(run.guest.lines[-60:])
    expected = [
        rf"rproc-sysfs name=uml-rproc state=offline firmware={FIRMWARE_NAME}",
        r"rproc-sysfs started state=running",
        r"wait-channel name=rpmsg-raw dev=/dev/rpmsg\d+ src=1024 dst=1024 ok",
        r"echo size=1 ok",
        r"echo size=496 ok",
        r"write-expect-errno size=497 .*ok",
        r"stream .*ok",
        r"ctrl-ept .*ok",
        r"rproc-trace uml-remote: rpmsg-raw announced",
        r"rproc-sysfs stopped state=offline",
        r"rproc-sysfs restarted state=running",
        r"echo size=2 ok",
        r"rproc-sysfs stopped-again state=offline",
    ]
    for pattern in expected:
        assert any(re.search(pattern, line) for line in results), f"no line matches {pattern!r}:\n" + "\n".join(results)
    # The remote saw the driver's messages in order, and the exit after STOP is clean.
    assert run.remote.proc.returncode == 0, run.remote.lines
    base = run.layout.base
    entry = read_elf(run.firmware).entry
    run.remote.wait_for(rf"uml-remote: hello da={base:#x} size={run.layout.size:#x}", 1)
    run.remote.wait_for(rf"uml-remote: start boot={entry:#x}", 1)
    run.remote.wait_for(r"uml-remote: driver-ok status=0x07", 1)
    assert not [line for line in run.remote.lines if "error" in line], run.remote.lines
    stops = [line for line in run.remote.lines if line.startswith("uml-remote: stop ")]
    assert len(stops) == 2, run.remote.lines
    assert all(line.endswith(" dropped=0") for line in stops if "dropped=" in line), stops  # the C library's count
    echoed = [int(re.sub(r".* echoed=(\d+)( .*)?$", r"\1", line)) for line in stops]
    assert echoed[0] >= 4 + 300 + 1 and echoed[1] == echoed[0] + 2
    return f"{len(results)} guest checks passed; the remote echoed {echoed[1]} messages over two boots"


def table_entries(image: bytes, table_off: int) -> dict[int, int]:
    """type -> offset (in ``image``) of the first entry of that type in the table at ``table_off``."""
    _ver, num = struct.unpack_from("<II", image, table_off)
    offsets = struct.unpack_from(f"<{num}I", image, table_off + 16)
    found: dict[int, int] = {}
    for off in offsets:
        (kind,) = struct.unpack_from("<I", image, table_off + off)
        found.setdefault(kind, table_off + off)
    return found


@dataclass
class RprocImage:
    """What rproc's loader and vdev sequence leave in the same memory map."""

    memory: RegionMemory
    control: VdevControl

    def bytes(self) -> bytes:
        return self.memory.read(self.memory.regions[0].da, self.memory.regions[0].size)

    def stop(self, break_mode: str = "") -> None:
        """RemoteProc.stop's write to the table (VdevControl.reset_for_stop)."""
        self.control.reset_for_stop()
        if break_mode == "stop-reset-vrings":  # what rproc did before it was checked against Linux
            for n in range(self.control.num_vrings):
                at = self.control.entry_da + 28 + 20 * n
                self.memory.write(at, bytes(4))
                self.memory.write(at + 12, struct.pack("<I", 0xFFFFFFFF))


def rproc_image(run: Run, firmware: Path | None = None, break_mode: str = "") -> RprocImage:
    """rproc's loader, resource handling and vdev sequence on a memory like the file before boot."""
    layout = run.layout
    elf = firmware or run.firmware
    memory = RegionMemory([MappedRegion("rproc", layout.base, layout.size, bytearray([FILL]) * layout.size)])
    info = firmware_info(elf)
    section = info.elf.resource_table
    assert info.table is not None and section is not None
    data = read_bytes(elf, section.offset, section.size)
    pool = Pool([(layout.base, layout.base + layout.size)])
    for seg in load_segments(elf, info.elf, memory):
        pool.reserve(seg.da, seg.memsz)
        if break_mode == "no-zero-fill" and seg.memsz > seg.filesz:
            memory.write(seg.da + seg.filesz, bytes([FILL]) * (seg.memsz - seg.filesz))
    res = handle_resources(data, info.table, info.spans, memory, pool)
    memory.write(section.addr, res.data)  # RemoteProc.start: the negotiated copy over the loaded table
    placement = res.vdevs[0]
    control = VdevControl(
        memory, section.addr + res.spans[placement.index].offset, res.table.version, len(placement.vrings)
    )
    control.negotiate(RPMSG_DRIVER_FEATURES)
    control.driver_ok()
    # Linux's virtio_rpmsg_bus takes 2 * 64 buffers of 512 bytes (rpmsg_probe) from the vdev0buffer carveout.
    assert placement.buffers_size == 2 * layout.vring_num * LINUX_BUFFER_SIZE
    return RprocImage(memory, control)


def check_table_after_boot(run: Run, break_mode: str = "") -> str:
    """Vring da and notify ids, gfeatures, status, trace and the vdev's own notifyid, as Linux left them."""
    layout = run.layout
    image = run.boot_image(1)
    section = read_elf(run.firmware).resource_table
    assert section is not None
    entries = table_entries(image, section.addr - layout.base)
    vdev = entries[RSC_VDEV]
    _type, vid, notifyid, dfeatures, gfeatures, config_len, status, nvrings = struct.unpack_from(
        "<IIIIIIBB", image, vdev
    )
    assert (vid, dfeatures, config_len, nvrings) == (7, 1, 0, 2)
    assert status == 0x07  # ACKNOWLEDGE | DRIVER | DRIVER_OK: Linux sets no FEATURES_OK for a legacy device
    assert gfeatures == 1  # VIRTIO_RPMSG_F_NS, what both offer
    assert notifyid == layout.vdev_notifyid  # remoteproc_core.c rproc_alloc_vring: "TODO: assign a notifyid for rvdev"
    rings = [struct.unpack_from("<IIIII", image, vdev + 28 + 20 * n) for n in range(2)]
    assert rings == [
        (layout.da(layout.vring0[0]), layout.vring_align, layout.vring_num, 0, 0),
        (layout.da(layout.vring1[0]), layout.vring_align, layout.vring_num, 1, 0),
    ]
    trace = entries[RSC_TRACE]
    assert struct.unpack_from("<III", image, trace + 4) == (layout.da(layout.trace[0]), layout.trace[1], 0)
    return f"status 0x07, gfeatures 1, vrings at {rings[0][0]:#x}/{rings[1][0]:#x} with notify ids 0/1"


def check_image(run: Run, break_mode: str = "") -> str:
    """The firmware's part of the file (segments, zero-fill, the table as negotiated, bytes no segment covers)
    after Linux booted it equals what rproc's loader and vdev sequence write for the same ELF and map."""
    layout = run.layout
    linux = run.boot_image(1)
    ours = rproc_image(run, break_mode=break_mode).bytes()
    start, size = layout.firmware
    differences = [hex(layout.da(i)) for i in range(start, start + size) if linux[i] != ours[i]]
    assert not differences, f"{len(differences)} bytes differ, first at {differences[:8]}"
    # and the image is not trivially equal: segments, zero-fill and untouched bytes are all there
    elf = read_elf(run.firmware)
    bss = next(s for s in elf.segments if s.loadable and s.memsz > s.filesz)
    zero_at = bss.paddr + bss.filesz - layout.base
    assert linux[zero_at : zero_at + bss.memsz - bss.filesz] == bytes(bss.memsz - bss.filesz)
    assert linux[start + size - 1] == FILL
    # Linux leaves the trace buffer alone and zeroes vring_size() bytes of each vring (rp_find_vq).
    assert linux[layout.trace[0] : layout.trace[0] + layout.trace[1]] == bytes([FILL]) * layout.trace[1]
    return f"{size} bytes equal, {bss.memsz - bss.filesz} of them zero-fill"


def check_table_after_stop(run: Run, break_mode: str = "") -> str:
    """On stop Linux resets the vdev and acknowledges it again (status 1 in device memory: drivers/virtio/virtio.c
    virtio_dev_remove), then works on its cached copy of the table: the vring da and notify ids stay in device
    memory as they were (remoteproc_core.c rproc_stop, rproc_reset_rsc_table_on_stop, rproc_free_vring).
    rproc's stop (VdevControl.reset_for_stop) leaves the same bytes."""
    layout = run.layout
    image = run.stop_image(1)
    section = read_elf(run.firmware).resource_table
    assert section is not None
    vdev = table_entries(image, section.addr - layout.base)[RSC_VDEV]
    status = image[vdev + 24]
    rings = [struct.unpack_from("<IIIII", image, vdev + 28 + 20 * n) for n in range(2)]
    assert status == 0x01
    assert [(r[0], r[3]) for r in rings] == [(layout.da(layout.vring0[0]), 0), (layout.da(layout.vring1[0]), 1)]
    ours = rproc_image(run)
    ours.stop(break_mode)
    start, size = layout.firmware
    theirs = image[start : start + size]
    mine = ours.bytes()[start : start + size]
    differences = [hex(layout.da(i)) for i in range(size) if theirs[i] != mine[i]]
    assert not differences, f"{len(differences)} bytes differ after stop, first at {differences[:8]}"
    return "status 0x01, vrings kept; rproc's stop leaves the same bytes"


def check_restart(run: Run, break_mode: str = "") -> str:
    """A second start reloads the segments and the table: the firmware's memory at the second DRIVER_OK is what
    it was at the first, and the second stop leaves what the first did."""
    start, size = run.layout.firmware
    assert run.boot_image(2)[start : start + size] == run.boot_image(1)[start : start + size]
    assert run.stop_image(2)[start : start + size] == run.stop_image(1)[start : start + size]
    return "the second boot and stop leave the bytes of the first"


# ---- a crash reported by the remote: Linux's recovery, on and off ---------------------------------------------

# The recovered channel gets the same /dev/rpmsgN (and virtioN) again, so count the kernel's announcements
# (virtio_rpmsg_bus.c rpmsg_create_channel via the name service: "creating channel").
WAIT_CHANNELS = """
wait_channels() {
    i=0
    while [ "$(dmesg | grep -c 'creating channel rpmsg-raw')" -lt $1 ] && [ $i -lt 600 ]; do
        sleep 0.05; i=$((i+1))
    done
    echo "rproc-channels announced=$(dmesg | grep -c 'creating channel rpmsg-raw')"
}
"""


def _wait_new_channel(n: int) -> str:
    return f"""wait_channels {n}
rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
"""


CRASH_SCRIPT = (
    WAIT_CHANNELS
    + """
R=/sys/class/remoteproc/remoteproc0
echo start > $R/state
rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
echo "rproc-sysfs recovery=$(cat $R/recovery)"
rpmsg-probe send $DEV crash
"""
    + _wait_new_channel(2)
    + """rpmsg-probe echo $DEV 8
echo "rproc-sysfs recovered state=$(cat $R/state)"
echo disabled > $R/recovery
rpmsg-probe send $DEV crash
i=0
while [ "$(cat $R/state)" != crashed ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
echo "rproc-sysfs crashed state=$(cat $R/state) recovery=$(cat $R/recovery)"
echo recover > $R/recovery
"""
    + _wait_new_channel(3)
    + """rpmsg-probe echo $DEV 16
echo "rproc-sysfs recovered-by-hand state=$(cat $R/state)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


def _expect_lines(run: Run, patterns: list[str]) -> None:
    run.guest.check_console_clean()
    results = run.results()
    failed = [line for line in results if re.search(r"\bfail\b", line)]
    assert not failed, "\n".join(failed + run.guest.lines[-40:])
    for pattern in patterns:
        assert any(re.search(pattern, line) for line in results), f"no line matches {pattern!r}:\n" + "\n".join(results)


def check_crash_recovery(run: Run, break_mode: str = "") -> str:
    """CRASH -> rproc_report_crash: with recovery enabled (the default) Linux stops the remote, reloads the
    firmware and starts it again at once (remoteproc_core.c rproc_crash_handler_work, rproc_boot_recovery);
    disabled, the state stays "crashed" until "recover" is written to the recovery file."""
    _expect_lines(
        run,
        [
            r"rproc-sysfs recovery=enabled",
            r"rproc-channels announced=2",
            r"echo size=8 ok",
            r"rproc-sysfs recovered state=running",
            r"rproc-sysfs crashed state=crashed recovery=disabled",
            r"rproc-channels announced=3",
            r"echo size=16 ok",
            r"rproc-sysfs recovered-by-hand state=running",
            r"rproc-sysfs stopped state=offline",
        ],
    )
    lines = run.remote.lines
    assert not [line for line in lines if "error" in line], lines
    events = [line.split()[1] for line in lines if line.split()[1] in ("start", "crash", "stop")]
    # two crashes, each followed by Linux's stop and a new start; then the final stop
    assert events == ["start", "crash", "stop", "start", "crash", "stop", "start", "stop"], lines
    assert run.remote.proc.returncode == 0
    assert any(re.search(r"crash detected in uml-rproc: type fatal error", line) for line in run.guest.lines)
    return "recovered at once with recovery enabled; 'crashed' with it disabled until 'recover'; " + " ".join(events)


def check_recovery_image(run: Run, break_mode: str = "") -> str:
    """Each recovery reloads the firmware: the memory at the recovered boots' DRIVER_OK equals what rproc's
    loader and vdev sequence write for the ELF, as the first boot's does."""
    start, size = run.layout.firmware
    ours = rproc_image(run, break_mode=break_mode).bytes()
    for n in (1, 2, 3):
        image = run.boot_image(n)
        differences = [hex(run.layout.da(i)) for i in range(start, start + size) if image[i] != ours[i]]
        assert not differences, f"boot {n}: {len(differences)} bytes differ, first at {differences[:8]}"
    return f"the first boot and both recoveries: {size} bytes equal to rproc's loader"


# ---- a firmware change through sysfs -------------------------------------------------------------------------

SECOND_FIRMWARE = "rproc-uml-fw2.elf"
FIRMWARE_CHANGE_SCRIPT = (
    WAIT_CHANNELS
    + f"""
R=/sys/class/remoteproc/remoteproc0
echo start > $R/state
rpmsg-probe wait-channel rpmsg-raw 30000
if echo {SECOND_FIRMWARE} > $R/firmware; then echo "rproc-sysfs firmware-while-running accepted"
else echo "rproc-sysfs firmware-while-running refused"; fi
echo "rproc-sysfs firmware=$(cat $R/firmware)"
echo stop > $R/state
echo {SECOND_FIRMWARE} > $R/firmware
echo "rproc-sysfs firmware=$(cat $R/firmware)"
echo start > $R/state
"""
    + _wait_new_channel(2)
    + """rpmsg-probe echo $DEV 8
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


def prepare_second_firmware(share: Path) -> None:
    build_firmware(Layout.for_guest_mem(GUEST_MEM), share, SECOND_FIRMWARE, banner=2)


def check_firmware_change(run: Run, break_mode: str = "") -> str:
    """The firmware file can only be changed while offline (remoteproc_sysfs.c firmware_store ->
    rproc_set_firmware: EBUSY); the next start loads the new one and the channel comes back."""
    _expect_lines(
        run,
        [
            "rproc-sysfs firmware-while-running refused",
            f"rproc-sysfs firmware={FIRMWARE_NAME}",
            f"rproc-sysfs firmware={SECOND_FIRMWARE}",
            "echo size=8 ok",
            "rproc-sysfs stopped state=offline",
        ],
    )
    start, size = run.layout.firmware
    assert run.boot_image(1)[start : start + size] != run.boot_image(2)[start : start + size]  # the banner differs
    return f"EBUSY while running, {SECOND_FIRMWARE} taken offline and booted"


def check_firmware_change_image(run: Run, break_mode: str = "") -> str:
    """The second firmware's memory after Linux booted it: byte for byte what rproc's loader writes for it."""
    second = run.firmware.parent / SECOND_FIRMWARE
    start, size = run.layout.firmware
    image = run.boot_image(2)
    ours = rproc_image(run, run.firmware if break_mode == "stale-firmware" else second, break_mode).bytes()
    differences = [hex(run.layout.da(i)) for i in range(start, start + size) if image[i] != ours[i]]
    assert not differences, f"{len(differences)} bytes differ, first at {differences[:8]}"
    return f"{size} bytes of {SECOND_FIRMWARE} equal to rproc's loader"


# ---- rproc inside the guest: the `linux` platform and the CLI against the real sysfs -------------------------

# The host's Python runs in the guest from a read-only hostfs mount of the host's root, through the host's
# dynamic loader (its libraries, not the guest's: the guest has busybox only), with the project on PYTHONPATH.
PY_VERSION = f"python{sys.version_info.major}.{sys.version_info.minor}"
HOST_PYTHON = Path(sys.base_prefix) / "bin" / PY_VERSION
HOST_LOADER = Path("/lib64/ld-linux-x86-64.so.2").resolve()  # the host's dynamic loader, symlinks resolved
SITE_PACKAGES = Path(sys.prefix) / "lib" / PY_VERSION / "site-packages"


def guest_python_script(break_mode: str = "") -> str:
    """The guest's script: in_guest.py (the platform classes), then the CLI a user runs on a Linux host."""
    libs = f"$H{sys.base_prefix}/lib:$H{HOST_LOADER.parent}"
    fw = f"/host/build/{FIRMWARE_NAME}"
    exported = f"export RPROC_BREAK={break_mode}\n" if BREAKS.get(break_mode, Break("", frozenset())).in_boot else ""
    return f"""
mkdir -p /hostroot && mount -r -t hostfs none /hostroot -o /
H=/hostroot
R=/sys/class/remoteproc/remoteproc0
export PYTHONHOME=$H{sys.base_prefix} PYTHONDONTWRITEBYTECODE=1 PYTHONPATH=$H{REPO}:$H{SITE_PACKAGES}
export PYTHONHASHSEED=0  # no urandom read at start-up (the guest's pool is not initialised: a kernel message)
{exported}rpy() {{ $H{HOST_LOADER} --library-path {libs} $H{HOST_PYTHON} "$@"; }}
cli() {{ name=$1; shift; echo "rproc-cli $name"; rpy -m remoteproc "$@" 2>&1; echo "rproc-cli $name exit=$?"; }}
cli status status
cli status-json status --json
cli doctor doctor
cli info info {fw}
rpy -m remoteproc.conformance.linux.in_guest {fw} rpmsg-raw
cli stop-offline stop 0
echo rproc-missing.elf > $R/firmware
cli start-missing start uml-rproc
cli start start uml-rproc {fw}
cli start-again start 0
cli sessions status --sessions
cli stop stop 0 --json
cli status-after status
"""


def host_python_missing() -> str | None:
    if not HOST_PYTHON.exists() or not HOST_LOADER.exists():
        return f"needs the host's Python ({HOST_PYTHON}) and dynamic loader ({HOST_LOADER}) to run in the guest"
    return None


def cli_sections(run: Run) -> dict[str, tuple[list[str], int]]:
    """``rproc-cli NAME`` ... ``rproc-cli NAME exit=N`` blocks of the console: name -> (output lines, N)."""
    kernel = ("random: ", "remoteproc remoteproc", "rproc-virtio ", "virtio_rpmsg_bus ", "rpmsg_")
    lines = [line for line in run.guest.lines if not line.startswith(kernel)]
    sections: dict[str, tuple[list[str], int]] = {}
    current: str | None = None
    body: list[str] = []
    for line in lines:
        m = re.fullmatch(r"rproc-cli (\S+)( exit=(\d+))?", line)
        if m and m.group(2) is None:
            current, body = m.group(1), []
        elif m and current is not None and current == m.group(1):
            sections[current] = (body, int(m.group(3)))
            current = None
        elif current is not None:
            body.append(line)
    return sections


def check_guest_platform(run: Run, break_mode: str = "") -> str:
    """rproc's ``linux`` platform classes in the guest (remoteproc/conformance/linux/in_guest.py): every step
    ok, from listing and errors while offline to rpmsg_ctrl endpoints and a stop with an endpoint open."""
    from remoteproc.conformance.linux.in_guest import STEPS

    run.guest.check_console_clean()
    steps = {}
    for line in run.guest.lines:
        m = re.match(r"in-guest (\S+) (ok|fail)\b ?(.*)", line)
        if m:
            steps[m.group(1)] = (m.group(2), m.group(3))
    missing = [name for name in STEPS if name not in steps]
    assert not missing, f"no line for {missing}:\n" + "\n".join(run.guest.lines[-40:])
    failed = [f"{name}: {steps[name][1]}" for name in STEPS if steps[name][0] != "ok"]
    assert not failed, f"{len(failed)} of {len(STEPS)} steps failed: " + " || ".join(failed)
    return f"{len(STEPS)} steps ok (" + ", ".join(STEPS) + ")"


def check_guest_cli(run: Run, break_mode: str = "") -> str:
    """The CLI a user runs on a Linux host, in the guest: status (text, JSON), doctor, info, start with a
    firmware, stop, and the clear errors (stop while offline, missing firmware, start while running)."""
    sections = cli_sections(run)
    text = "\n".join(run.guest.lines[-80:])

    def section(name: str, code: int) -> str:
        assert name in sections, f"no rproc-cli {name} block:\n{text}"
        body, got = sections[name]
        assert got == code, f"rproc {name} exited {got}, not {code}: {body}"
        return "\n".join(body)

    assert re.search(r"^remoteproc0\s+uml-rproc\s+offline$", section("status", 0), re.M)
    assert '"state": "offline"' in section("status-json", 0)
    doctor = section("doctor", 0)
    assert re.search(r"ok remoteproc devices +remoteproc0 \(uml-rproc, offline\)", doctor), doctor
    info = section("info", 0)
    assert f"firmware /host/build/{FIRMWARE_NAME}" in info and ".resource_table: address" in info, info
    stop_offline = section("stop-offline", 1)
    assert "rproc: error: remoteproc0 (uml-rproc) is offline: nothing to stop" in stop_offline, stop_offline
    missing = section("start-missing", 1)
    assert "found no firmware file 'rproc-missing.elf'" in missing, missing
    started = section("start", 0)
    assert f"firmware {FIRMWARE_NAME} -> /host" in started and "remoteproc0 (uml-rproc): running" in started
    again = section("start-again", 1)
    assert "is already running: stop it first" in again, again
    assert "no rproc sessions running" in section("sessions", 0)
    assert '"state": "offline"' in section("stop", 0)
    assert re.search(r"^remoteproc0\s+uml-rproc\s+offline$", section("status-after", 0), re.M)
    events = [line.split()[1] for line in run.remote.lines if line.split()[1] in ("start", "stop", "driver-ok")]
    assert events == ["start", "driver-ok", "stop"] * 2, run.remote.lines
    return f"{len(sections)} commands as expected, errors included: {again.splitlines()[-1]}"


# ---- the catalogue -------------------------------------------------------------------------------------------

Check = Callable[[Any, str], str]
Runner = Callable[[UmlImages, str, Path, str], contextlib.AbstractContextManager[Any]]
"""A boot of its own kind: ``runner(images, remote, tmp, break_mode)`` yields what its scenarios judge."""


def host_remotes_only(remote: str) -> str | None:
    return QEMU_OTHER_FIRMWARE if remote == QEMU else None


@dataclass(frozen=True)
class Boot:
    """One guest boot that some scenarios are judged on. ``script(break_mode)`` is the guest's script;
    ``prepare(share)`` puts more files in the guest's /host before it boots; ``unavailable()`` says why this
    host cannot run the boot (its scenarios are then n/a)."""

    name: str
    what: str
    script: Callable[[str], str]
    timeout: float = BOOT_TIMEOUT
    firmware_subdir: str = ""
    prepare: Callable[[Path], None] | None = None
    unavailable: Callable[[], str | None] = lambda: None
    runner: Runner | None = None  # instead of ``script`` with this module's boot() (more_scenarios.py)


@dataclass(frozen=True)
class Scenario:
    """One catalogue entry: ``check(run, break_mode)`` on a run of ``boot`` returns its evidence or raises
    AssertionError saying what differs. ``applies(remote)`` gives the reason it is n/a for that remote."""

    name: str
    rule: str
    boot: str
    check: Check
    applies: Callable[[str], str | None] = host_remotes_only


BOOTS: dict[str, Boot] = {
    b.name: b
    for b in (
        Boot("lifecycle", "start, rpmsg, trace, stop, start, stop", lambda _break: GUEST_SCRIPT),
        Boot("crash", "two crashes: recovery enabled, then disabled and 'recover'", lambda _break: CRASH_SCRIPT),
        Boot(
            "firmware-change",
            "the firmware changed through sysfs",
            lambda _break: FIRMWARE_CHANGE_SCRIPT,
            prepare=prepare_second_firmware,
        ),
        Boot(
            "rproc-in-the-guest",
            "the host's Python runs rproc's linux platform and CLI inside the guest",
            guest_python_script,
            timeout=300,
            firmware_subdir="build",
            unavailable=host_python_missing,
        ),
    )
}

CATALOGUE: tuple[Scenario, ...] = (
    Scenario(
        "boot-and-rpmsg",
        "Linux boots the firmware via sysfs and talks rpmsg to the remote",
        "lifecycle",
        check_boot_and_rpmsg,
    ),
    Scenario(
        "table-after-boot",
        "the table Linux negotiated: vring da, notify ids, gfeatures, status",
        "lifecycle",
        check_table_after_boot,
    ),
    Scenario(
        "image-equals-rproc-loader",
        "the loaded memory equals rproc's loader on the same ELF and map",
        "lifecycle",
        check_image,
    ),
    Scenario(
        "table-after-stop",
        "stop leaves status 1 and the vrings, as rproc's stop does",
        "lifecycle",
        check_table_after_stop,
    ),
    Scenario("restart", "a second start and stop leave the same bytes", "lifecycle", check_restart),
    Scenario(
        "crash-recovery",
        "a crash the remote reports is recovered (recovery on) or waits for 'recover' (off)",
        "crash",
        check_crash_recovery,
    ),
    Scenario(
        "recovery-reloads-the-image",
        "each recovery loads what rproc's loader writes",
        "crash",
        check_recovery_image,
    ),
    Scenario(
        "firmware-change",
        "sysfs refuses a firmware change while running (EBUSY), takes it offline",
        "firmware-change",
        check_firmware_change,
    ),
    Scenario(
        "firmware-change-image",
        "the second firmware's memory equals rproc's loader on it",
        "firmware-change",
        check_firmware_change_image,
    ),
    Scenario(
        "guest-linux-platform",
        "rproc's linux platform classes against the real sysfs, rpmsg_ctrl and rpmsg char",
        "rproc-in-the-guest",
        check_guest_platform,
    ),
    Scenario(
        "guest-cli",
        "rproc status/doctor/info/start/stop in the guest, with clear errors",
        "rproc-in-the-guest",
        check_guest_cli,
    ),
)
# An unprompted message from the remote (RpmsgCharEndpoint.recv without a request) is not a scenario: both
# remotes only answer (uml_remote.c, uml_py_remote.py).


def complete_registry() -> None:
    """Add the boots of lifecycle.py, tables.py, rsc_mutations.py and the Cortex-M33 (more_scenarios.py, which
    registers them when imported: it imports this module, so this one cannot import it at its top). Import
    more_scenarios before taking BOOTS, CATALOGUE or BREAKS by name; the functions here call this first."""
    from remoteproc.conformance.linux import more_scenarios  # noqa: F401


def scenario(name: str) -> Scenario:
    complete_registry()
    for s in CATALOGUE:
        if s.name == name:
            return s
    raise ValueError(f"no scenario {name!r}: {', '.join(s.name for s in CATALOGUE)}")


def not_applicable(entry: Scenario, remote: str) -> str | None:
    """Why ``entry`` cannot be judged with ``remote`` on this host, or None."""
    return entry.applies(remote) or BOOTS[entry.boot].unavailable()


@contextlib.contextmanager
def boot_for(images: UmlImages, which: str, remote: str, tmp: Path, break_mode: str = "") -> Iterator[Any]:
    """A run of the boot ``which`` (:data:`BOOTS`) with ``remote`` (``c`` or ``python``)."""
    complete_registry()
    spec = BOOTS[which]
    if spec.runner is not None:
        with spec.runner(images, remote, tmp, break_mode) as made:
            yield made
        return
    if spec.prepare is not None:
        spec.prepare(tmp / "share")
    with boot(
        images,
        remote_command(remote, tmp / "remote"),
        tmp,
        spec.script(break_mode),
        timeout=spec.timeout,
        firmware_subdir=spec.firmware_subdir,
    ) as run:
        yield run


def judge(entry: Scenario, run: Run, break_mode: str = "") -> Result:
    t0 = time.monotonic()
    try:
        outcome, evidence = Outcome.PASS, entry.check(run, break_mode)
    except AssertionError as exc:
        outcome, evidence = Outcome.FAIL, (str(exc) or "assertion failed").splitlines()[0][:300]
    return Result(entry.name, entry.rule, outcome, evidence, time.monotonic() - t0)


def run_catalogue(
    kernel: str = "6.1",
    remote: str = "c",
    *,
    break_mode: str = "",
    only: list[str] | None = None,
    progress: Callable[[str], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Report:
    """Every scenario of :data:`CATALOGUE` (or those named in ``only``) with ``kernel`` and ``remote``: one
    boot of each :data:`BOOTS` entry they need, the scenarios judged on it; n/a with the reason where they
    cannot be judged (``--remote qemu``, a host without what a boot needs)."""
    complete_registry()
    if break_mode and break_mode not in BREAKS:
        raise ValueError(f"no break mode {break_mode!r}: {', '.join(sorted(BREAKS))}")
    if remote not in REMOTE_CHOICES:
        raise ValueError(f"no remote {remote!r}: {', '.join(REMOTE_CHOICES)}")
    selected = [scenario(name) for name in only] if only else list(CATALOGUE)
    broken = f" (break {break_mode})" if break_mode else ""
    report = Report(f"Linux {kernel}'s remoteproc core in UML, {remote} remote{broken}")

    def record(result: Result) -> None:
        report.results.append(result)
        if on_result is not None:
            on_result(result)

    judged = []
    for entry in selected:
        reason = not_applicable(entry, remote)
        if reason is not None:
            record(Result(entry.name, entry.rule, Outcome.NOT_APPLICABLE, reason, 0.0))
        else:
            judged.append(entry)
    if not judged:
        return report
    images: UmlImages = ensure_uml(progress, kernel=kernel)
    for name in BOOTS:
        entries = [e for e in judged if e.boot == name]
        if not entries:
            continue
        if progress is not None:
            progress(f"boot {name}: {BOOTS[name].what}")
        with tempfile.TemporaryDirectory(prefix="rproc-linux-remoteproc-") as tmp, contextlib.ExitStack() as stack:
            started = time.monotonic()
            try:
                run = stack.enter_context(boot_for(images, name, remote, Path(tmp), break_mode))
            except Exception as exc:  # the boot itself failed: each of its scenarios says so
                evidence = f"the boot {name!r} failed: {(str(exc) or type(exc).__name__).splitlines()[0][:300]}"
                for entry in entries:
                    record(Result(entry.name, entry.rule, Outcome.FAIL, evidence, time.monotonic() - started))
                continue
            for entry in entries:
                record(judge(entry, run, break_mode))
    return report


CORE_BOOTS = frozenset(BOOTS)
"""This module's own boots (tests/conformance/linux/test_remoteproc_linux.py runs their scenarios per kernel
and remote; the others have their own pytest files)."""
