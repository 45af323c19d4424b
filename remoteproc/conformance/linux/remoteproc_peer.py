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

BREAKS = {
    "no-zero-fill": "rproc's side leaves memsz - filesz unwritten (image-equals-rproc-loader must fail)",
    "stop-reset-vrings": "rproc's stop also writes vring da 0 / notifyid -1 (table-after-stop must fail)",
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
    memfile = tmp / "rproc-mem"
    memfile.write_bytes(bytes([FILL]) * layout.size)
    sock = tmp / "rproc.sock"
    snapshot = tmp / "snapshot"
    proc = subprocess.Popen(
        [*remote_command, str(memfile), str(sock), hex(table_da.addr), str(snapshot)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    remote = HostRemote(proc)
    remote.start_reader()
    guest = UmlGuest(
        images,
        share,
        mem=GUEST_MEM,
        aslr=False,
        extra_args=[
            *layout.kernel_args(memfile, sock),
            *(uml_qemu.kernel_args(layout) if m33 else []),
            "firmware_class.path=/host",
        ],
    )
    try:
        remote.wait_for(r"uml-remote: listening", 10)
        guest.start(script)
        guest.wait_for(r"rproc-guest: exit \d+", timeout)
        guest.wait_exit(30)
        proc.wait(timeout=10)
        yield Run(layout, firmware, guest, remote, snapshot)
    finally:
        guest.kill()
        if proc.poll() is None:
            proc.kill()
            proc.wait()


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


# ---- the catalogue -------------------------------------------------------------------------------------------

Check = Callable[[Run, str], str]
CATALOGUE: tuple[tuple[str, str, Check], ...] = (
    ("boot-and-rpmsg", "Linux boots the firmware via sysfs and talks rpmsg to the remote", check_boot_and_rpmsg),
    ("table-after-boot", "the table Linux negotiated: vring da, notify ids, gfeatures, status", check_table_after_boot),
    ("image-equals-rproc-loader", "the loaded memory equals rproc's loader on the same ELF and map", check_image),
    ("table-after-stop", "stop leaves status 1 and the vrings, as rproc's stop does", check_table_after_stop),
    ("restart", "a second start and stop leave the same bytes", check_restart),
)


def run_catalogue(
    kernel: str = "6.1",
    remote: str = "c",
    *,
    break_mode: str = "",
    progress: Callable[[str], None] | None = None,
    on_result: Callable[[Result], None] | None = None,
) -> Report:
    """One boot of ``kernel`` against the ``remote``, every check of :data:`CATALOGUE` judged on it."""
    if break_mode and break_mode not in BREAKS:
        raise ValueError(f"no break mode {break_mode!r}: {', '.join(sorted(BREAKS))}")
    broken = f" (break {break_mode})" if break_mode else ""
    report = Report(f"Linux {kernel}'s remoteproc core in UML, {remote} remote{broken}")

    def record(result: Result) -> None:
        report.results.append(result)
        if on_result is not None:
            on_result(result)

    images: UmlImages = ensure_uml(progress, kernel=kernel)
    with tempfile.TemporaryDirectory(prefix="rproc-linux-remoteproc-") as tmp, contextlib.ExitStack() as stack:
        started = time.monotonic()
        try:
            run = stack.enter_context(
                boot(images, remote_command(remote, Path(tmp) / "remote"), Path(tmp), GUEST_SCRIPT)
            )
        except Exception as exc:  # the boot itself failed: every scenario says so
            for name, rule, _ in CATALOGUE:
                record(Result(name, rule, Outcome.FAIL, f"the boot failed: {exc}", time.monotonic() - started))
            return report
        for name, rule, check in CATALOGUE:
            t0 = time.monotonic()
            try:
                outcome, evidence = Outcome.PASS, check(run, break_mode)
            except AssertionError as exc:
                outcome, evidence = Outcome.FAIL, (str(exc) or "assertion failed").splitlines()[0][:300]
            record(Result(name, rule, outcome, evidence, time.monotonic() - t0))
    return report
