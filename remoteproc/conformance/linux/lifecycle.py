"""Linux's remoteproc core as a peer, its lifecycle (issue 19 item 5): coredumps through devcoredump after a crash
the remote reports (recovery on and off), and the vdev status bytes in the order Linux writes them, next to the
order rproc's own ``RemoteProc`` writes them.

The checks take a :class:`~remoteproc.conformance.linux.remoteproc_peer.Run` of one of the guest scripts below and
return their evidence or raise AssertionError saying what differs, like those of ``remoteproc_peer.py``
(docs/linux-conformance.md, "Lifecycle against the real core").
"""

from __future__ import annotations

import contextlib
import os
import re
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.remoteproc_peer import BOOT_TIMEOUT, FILL, GUEST_MEM, Run, run_guest
from remoteproc.conformance.linux.rproc_uml import Layout, build_firmware
from remoteproc.elf import ElfImage, read_elf
from remoteproc.loader import LoadedSegment, Progress, load_segments
from remoteproc.resources import Pool
from remoteproc.rproc import RemoteProc
from resource_table import vdev_field_offset
from transports.doorbell import Doorbell, EventfdDoorbell
from transports.memory import MappedRegion, RegionMemory

# ---- the vdev status sequence ---------------------------------------------------------------------------------

START, STOP = "start", "stop"
"""Events of a status sequence besides the status bytes: the platform started / stopped the remote."""

Event = str | int


class _StatusSpy(RegionMemory):
    """The platform's memory, recording every write of the status byte at ``status_da`` into ``events`` (a write
    of that byte alone: the table copied over the loaded one before start, which Linux does too, is not a status
    write)."""

    def __init__(self, base: RegionMemory, status_da: int, events: list[Event]) -> None:
        super().__init__(base.regions)
        self.status_da = status_da
        self.events = events

    def write(self, da: int, data: bytes | bytearray | memoryview) -> None:
        super().write(da, data)
        if da == self.status_da and len(data) == 1:
            self.events.append(bytes(data)[0])


def record_vdev_events(rp: RemoteProc) -> list[Event]:
    """From now on, what ``rp`` does to its (first) vdev's status byte and to the remote, in order: each status
    byte written (an int) and each ``platform.start`` / ``platform.stop`` (:data:`START`, :data:`STOP`).
    ``rp`` must have loaded its firmware; the list grows as ``rp`` runs."""
    if rp.resources is None or rp.image is None or rp.image.resource_table is None or not rp.resources.vdevs:
        raise ValueError("record_vdev_events: load a firmware with a vdev first")
    res = rp.resources
    span = res.spans[res.vdevs[0].index]
    status_da = rp.image.resource_table.addr + span.offset + vdev_field_offset(res.table.version, "status")
    events: list[Event] = []
    platform: Any = rp.platform
    platform.memory = _StatusSpy(platform.memory, status_da, events)
    start, stop = platform.start, platform.stop

    def recorded_start(table_da: int, table_size: int) -> None:
        events.append(START)
        start(table_da, table_size)

    def recorded_stop() -> None:
        events.append(STOP)
        stop()

    platform.start, platform.stop = recorded_start, recorded_stop
    return events


LINUX_START: tuple[Event, ...] = (START, 0, 1, 3, 7)
"""Linux's start: ``ops->start`` (START to the remote), then the vdev (remoteproc_core.c ``rproc_start``:
``rproc->ops->start`` before ``rproc_start_subdevices``): reset (0), ACKNOWLEDGE (1), DRIVER (3), DRIVER_OK (7)
(drivers/virtio/virtio.c ``register_virtio_device``, ``virtio_dev_probe``; no FEATURES_OK for a legacy device,
``virtio_features_ok``)."""
LINUX_STOP: tuple[Event, ...] = (0, 1, STOP)
"""Linux's stop: the vdev first (remoteproc_core.c ``rproc_stop``: ``rproc_stop_subdevices`` before
``rproc->ops->stop``): the driver's reset (0), ACKNOWLEDGE again (1) (virtio.c ``virtio_dev_remove``), then STOP."""


class LayoutPlatform:
    """rproc's side of the comparison: the memory map of ``layout`` in a bytearray, a remote that never answers
    (its doorbell is one end of an eventfd pair). Enough for RemoteProc to load, start, recover and stop."""

    name = "uml-layout"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.memory = RegionMemory([MappedRegion("rproc", layout.base, layout.size, bytearray([FILL]) * layout.size)])
        self._doorbells: tuple[EventfdDoorbell, EventfdDoorbell] | None = None

    def pool(self) -> Pool:
        return Pool([(self.layout.base, self.layout.base + self.layout.size)])

    def load(self, path: str | os.PathLike[str], image: ElfImage, progress: Progress | None) -> list[LoadedSegment]:
        return load_segments(path, image, self.memory, progress=progress)

    def prepare(self) -> None:
        pass

    def start(self, table_da: int, table_size: int) -> None:
        pass

    def connect(self, timeout: float = 10.0) -> Doorbell:
        self._doorbells = EventfdDoorbell.pair()
        return self._doorbells[0]

    def crashed(self) -> bool:
        return False

    def stop(self) -> None:
        self._close_doorbells()

    def _close_doorbells(self) -> None:
        if self._doorbells is not None:
            for doorbell in self._doorbells:
                doorbell.close()
            self._doorbells = None

    def close(self) -> None:
        self._close_doorbells()
        self.memory.release()


def rproc_vdev_events(firmware: Path, layout: Layout, recoveries: int) -> list[Event]:
    """What rproc's RemoteProc writes to the vdev's status byte, and when it starts and stops the remote, for
    start, ``recoveries`` times recover(), stop — on the same ELF and memory map as the guest."""
    rp = RemoteProc(LayoutPlatform(layout))
    try:
        rp.load(firmware)
        events = record_vdev_events(rp)
        rp.start()
        for _ in range(recoveries):
            rp.recover()
        rp.stop()
        return events
    finally:
        rp.close()


# ---- booting the guest with a chosen memory map and kernel arguments ------------------------------------------


def boot_with(
    images: UmlImages,
    remote_command: list[str] | None,
    tmp: Path,
    script: str,
    layout: Layout,
    kernel_args: Callable[[Path, Path], list[str]],
    timeout: float = BOOT_TIMEOUT,
) -> contextlib.AbstractContextManager[Run]:
    """Like remoteproc_peer.boot, with the firmware linked for ``layout`` and the kernel arguments
    ``kernel_args(memfile, socket)`` (iomem=, uml_rproc.*); ``remote_command`` None: no remote listens (the
    driver must refuse its parameters before it connects)."""

    @contextlib.contextmanager
    def run() -> Iterator[Run]:
        share = tmp / "share"
        firmware = build_firmware(layout, share)
        table_da = read_elf(firmware).resource_table
        assert table_da is not None
        command = remote_command or [sys.executable, "-c", "print('uml-remote: listening', flush=True)"]
        with run_guest(images, command, tmp, layout, table_da.addr, script, kernel_args, timeout) as ran:
            yield Run(layout, firmware, ran.guest, ran.remote, ran.snapshot)

    return run()


# ---- crashes, recovery and coredumps --------------------------------------------------------------------------

# The recovered channel comes back under the same name: count the kernel's announcements (virtio_rpmsg_bus.c
# rpmsg_create_channel via the name service: "creating channel"), then look the channel up again.
_CHANNELS = """
wait_channels() {
    i=0
    while [ "$(dmesg | grep -c 'creating channel rpmsg-raw')" -lt $1 ] && [ $i -lt 600 ]; do
        sleep 0.05; i=$((i+1))
    done
    rpmsg-probe wait-channel rpmsg-raw 30000 > /host/channel.txt
    DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
    echo "rproc-channels announced=$(dmesg | grep -c 'creating channel rpmsg-raw') dev=$DEV"
}
"""

LIFECYCLE_SCRIPT = (
    _CHANNELS
    + """
R=/sys/class/remoteproc/remoteproc0
D=/sys/kernel/debug/remoteproc/remoteproc0
C=/sys/class/devcoredump
mount -t debugfs none /sys/kernel/debug
# remoteproc_virtio.c's dev_dbg of every status byte it writes (rproc_virtio_set_status, rproc_virtio_reset)
echo 'func rproc_virtio_set_status +p' > /sys/kernel/debug/dynamic_debug/control
echo 'func rproc_virtio_reset +p' > /sys/kernel/debug/dynamic_debug/control
dumps() { ls $C | grep -c '^devcd'; }
take_dump() {  # copy the one dump there is to /host/$1, then free it (devcoredump: any write to data)
    for d in $C/devcd*; do cat $d/data > /host/$1; echo 1 > $d/data; done
}
echo "rproc-coredump initial conf=$(cat $D/coredump) recovery=$(cat $R/recovery) dumps=$(dumps)"
echo start > $R/state
wait_channels 1
rpmsg-probe echo $DEV 8
rpmsg-probe send $DEV crash
wait_channels 2
echo "rproc-coredump crash-1 conf=$(cat $D/coredump) state=$(cat $R/state) dumps=$(dumps)"
echo enabled > $D/coredump
rpmsg-probe send $DEV crash
wait_channels 3
echo "rproc-coredump crash-2 conf=$(cat $D/coredump) state=$(cat $R/state) dumps=$(dumps)"
take_dump coredump.2
echo disabled > $R/recovery
rpmsg-probe send $DEV crash
i=0
while [ "$(cat $R/state)" != crashed ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
sleep 0.5
echo "rproc-coredump crash-3 conf=$(cat $D/coredump) state=$(cat $R/state) dumps=$(dumps)"
echo recover > $R/recovery
wait_channels 4
echo "rproc-coredump recovered-3 state=$(cat $R/state) dumps=$(dumps)"
take_dump coredump.3
rpmsg-probe echo $DEV 16
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
dmesg > /host/dmesg.txt
"""
)
LIFECYCLE_RECOVERIES = 3
"""The crashes of LIFECYCLE_SCRIPT, each ending in Linux's recovery (stop, coredump, start)."""


def check_crash_recovery(run: Run, break_mode: str = "") -> str:
    """Three crashes the remote reports: recovered at once with recovery enabled (twice), left "crashed" with it
    disabled until ``recover``; each time the channel comes back and echoes; the remote sees start, crash, stop
    three times, then start and the final stop (remoteproc_core.c rproc_crash_handler_work,
    rproc_boot_recovery; remoteproc_sysfs.c recovery_store)."""
    run.guest.check_console_clean()
    results = run.results()
    failed = [line for line in results if re.search(r"\bfail\b", line)]
    assert not failed, "\n".join(run.guest.lines[-60:])
    for n in (1, 2, 3, 4):
        assert any(line.startswith(f"rproc-channels announced={n} dev=/dev/rpmsg") for line in results), results
    assert any(re.search(r"rproc-coredump crash-3 .*state=crashed", line) for line in results), results
    assert any(re.search(r"rproc-coredump recovered-3 state=running", line) for line in results), results
    assert "rproc-sysfs stopped state=offline" in results, results
    lines = run.remote.lines
    assert not [line for line in lines if "error" in line], lines
    # PHYS right after HELLO; without uml_rproc.da= the two addresses are the same
    hello = [n for n, line in enumerate(lines) if line.startswith("uml-remote: hello ")]
    assert len(hello) == 1 and lines[hello[0] + 1] == f"uml-remote: phys pa={run.layout.base:#x}", lines
    events = [line.split()[1] for line in lines if line.split()[1] in ("start", "crash", "stop")]
    assert events == ["start", "crash", "stop"] * LIFECYCLE_RECOVERIES + ["start", "stop"], lines
    assert run.remote.proc.returncode == 0
    return f"{LIFECYCLE_RECOVERIES} crashes recovered (2 at once, 1 by hand); the remote saw {' '.join(events)}, PHYS"


ET_CORE, EM_NONE, PT_LOAD, PF_RWX = 4, 0, 1, 7


@dataclass(frozen=True)
class CoreSegment:
    vaddr: int
    paddr: int
    memsz: int
    flags: int
    data: bytes


@dataclass(frozen=True)
class Core:
    """An ELF core file as remoteproc_coredump.c rproc_coredump writes it."""

    elf_class: int
    machine: int
    entry: int
    segments: tuple[CoreSegment, ...]


def parse_core(data: bytes) -> Core:
    """The ELF header and PT_LOAD segments of a coredump; AssertionError saying what is wrong with it."""
    assert len(data) >= 52 and data[:4] == b"\x7fELF", f"not an ELF file: {data[:16].hex()}"
    elf_class, endian = data[4], data[5]
    assert elf_class in (1, 2) and endian == 1, f"ELF class {elf_class}, data {endian}: want 32/64-bit LSB"
    if elf_class == 1:
        e_type, machine, _version, entry, phoff, _sh, _fl, _eh, phentsize, phnum = struct.unpack_from(
            "<HHIIIIIHHH", data, 16
        )
        ph = "<IIIIIIII"
    else:
        e_type, machine, _version, entry, phoff, _sh, _fl, _eh, phentsize, phnum = struct.unpack_from(
            "<HHIQQQIHHH", data, 16
        )
        ph = "<IIQQQQQQ"
    assert e_type == ET_CORE, f"e_type {e_type}, want ET_CORE"
    assert phentsize == struct.calcsize(ph), f"e_phentsize {phentsize}"
    segments = []
    for n in range(phnum):
        fields = struct.unpack_from(ph, data, phoff + n * phentsize)
        if elf_class == 1:
            p_type, offset, vaddr, paddr, filesz, memsz, flags, _align = fields
        else:
            p_type, flags, offset, vaddr, paddr, filesz, memsz, _align = fields
        assert p_type == PT_LOAD, f"segment {n}: p_type {p_type}"
        assert offset + filesz <= len(data), f"segment {n}: {filesz:#x} bytes at {offset:#x} past the end"
        segments.append(CoreSegment(vaddr, paddr, memsz, flags, data[offset : offset + filesz]))
    return Core(elf_class, machine, entry, tuple(segments))


def check_coredump(run: Run, break_mode: str = "") -> str:
    """Coredumps through devcoredump: none while debugfs ``coredump`` is "disabled" (the default,
    remoteproc_debugfs.c), one per recovery once "enabled" — taken by rproc_boot_recovery after rproc_stop, so
    none while the state stays "crashed" with recovery disabled, one after ``recover``. Each is an ELF32 core
    (remoteproc_coredump.c rproc_coredump: ET_CORE, the driver's EM_NONE, e_entry the boot address) with one
    PT_LOAD segment per registered dump segment: uml_rproc's whole memory at its da, RWX, whose bytes are the
    memory file as the remote copied it when STOP came."""
    results = run.results()

    def counted(tag: str) -> str:
        line = next((line for line in results if line.startswith(f"rproc-coredump {tag} ")), None)
        assert line is not None, f"no rproc-coredump {tag} line: {results}"
        return line

    assert counted("initial").endswith("conf=disabled recovery=enabled dumps=0"), counted("initial")
    assert counted("crash-1").endswith("conf=disabled state=running dumps=0"), counted("crash-1")
    assert counted("crash-2").endswith("conf=enabled state=running dumps=1"), counted("crash-2")
    assert counted("crash-3").endswith("conf=enabled state=crashed dumps=0"), counted("crash-3")
    assert counted("recovered-3").endswith("state=running dumps=1"), counted("recovered-3")
    share = run.firmware.parent
    entry = read_elf(run.firmware).entry
    layout = run.layout
    sizes = []
    for n in (2, 3):
        core = parse_core((share / f"coredump.{n}").read_bytes())
        assert (core.elf_class, core.machine, core.entry) == (1, EM_NONE, entry), core
        assert len(core.segments) == 1, core.segments
        [seg] = core.segments
        assert (seg.vaddr, seg.paddr, seg.memsz, seg.flags) == (layout.base, layout.base, layout.size, PF_RWX)
        # the remote's copy when the nth STOP came: Linux stopped it, then dumped (rproc_boot_recovery)
        memory = run.stop_image(n)
        differences = [hex(layout.da(i)) for i in range(layout.size) if seg.data[i] != memory[i]]
        assert not differences, f"coredump {n}: {len(differences)} bytes differ from the memory, first at " + str(
            differences[:8]
        )
        # and it is the remote's memory, not anything equal by chance: the trace line, the loaded firmware
        trace = seg.data[layout.trace[0] : layout.trace[0] + layout.trace[1]]
        assert trace.startswith(b"uml-remote: rpmsg-raw announced\n"), trace[:40]
        sizes.append(len(seg.data))
    return f"no dump while disabled; 2 ELF32 cores of {sizes[0]:#x} bytes at da {layout.base:#x}, equal to memory"


# ---- the vdev status bytes, as Linux writes them ----------------------------------------------------------------

_STATUS_LINE = re.compile(r"virtio\d+: (?:status: (\d+)|reset !)$")
_CORE_LINE = re.compile(r"remoteproc\d+: (remote processor \S+ is now up|stopped remote processor \S+)$")


def linux_status_writes(dmesg: str) -> list[Event]:
    """The status bytes remoteproc_virtio.c wrote (``rproc_virtio_reset``: 0, ``rproc_virtio_set_status``: the
    value), with "up" / "stopped" where rproc_start / rproc_stop printed that they were done."""
    events: list[Event] = []
    for line in dmesg.splitlines():
        if m := _STATUS_LINE.search(line):
            events.append(int(m.group(1)) if m.group(1) is not None else 0)
        elif m := _CORE_LINE.search(line):
            events.append("up" if m.group(1).endswith("is now up") else "stopped")
    return events


def check_status_sequence(run: Run, break_mode: str = "", recoveries: int = LIFECYCLE_RECOVERIES) -> str:
    """Linux writes the vdev status 0, 1, 3, 7 on each start (after START) and 0, 1 on each stop (before STOP):
    seen in remoteproc_virtio.c's dev_dbg lines, and by the remote, which finds 0x01 at each STOP. rproc's
    RemoteProc, doing the same (start, recover, stop) on the same ELF and map, writes the same bytes around its
    start and stop of the remote."""
    writes = linux_status_writes((run.firmware.parent / "dmesg.txt").read_text(errors="replace"))
    start = [0, 1, 3, 7, "up"]
    stop = [0, 1, "stopped"]
    assert writes == start + (stop + start) * recoveries + stop, writes
    # At STOP the kernel waits for the remote's answer (uml_rproc_stop): the byte it finds is the last one Linux
    # wrote before STOP. (At START it goes on at once: the byte found then is a race, not checked.)
    remote = [
        int(m.group(1), 16)
        for line in run.remote.lines
        if (m := re.match(r"uml-remote: stop status=0x([0-9a-f]{2})", line))
    ]
    assert remote == [1] * (recoveries + 1), run.remote.lines
    linux = list(LINUX_START) + (list(LINUX_STOP) + list(LINUX_START)) * recoveries + list(LINUX_STOP)
    ours = rproc_vdev_events(run.firmware, run.layout, recoveries)
    if break_mode == "stop-after-remote":  # rproc's order before it was checked: the remote stopped first
        ours = _stop_first(ours)
    assert ours == linux, f"rproc writes {ours}, Linux {linux}"
    return f"{len(writes) - 2 * (recoveries + 1)} status writes in Linux's order; rproc's RemoteProc the same"


def _stop_first(events: list[Event]) -> list[Event]:
    """``events`` with each stop of the remote moved before the vdev reset that precedes it."""
    out: list[Event] = []
    for event in events:
        if event == STOP and out[-2:] == [0, 1]:
            out[-2:] = [STOP, 0, 1]
        else:
            out.append(event)
    return out


# ---- the driver's parameters: carveouts=, da= (da != pa), PHYS -------------------------------------------------

PARAMS_DA = 0x1000_0000
"""The device address of the memory's offset 0 in the da != pa boot (its pa stays 0x4001000 with mem=64M)."""


def params_layout() -> Layout:
    return Layout(base=PARAMS_DA)


def carveouts_kernel_args(layout: Layout) -> Callable[[Path, Path], list[str]]:
    """``uml_rproc.da=`` the layout's base and the three vdev0 carveouts given through ``uml_rproc.carveouts=``
    only (not vring0=/vring1=/buffer=): the core finds them by name or places the vrings elsewhere."""

    def args(memfile: Path, sock: Path) -> list[str]:
        def carveout(name: str, span: tuple[int, int]) -> str:
            return f"{name}@{layout.da(span[0]):#x}+{span[1]:#x}"

        spans = [("vdev0vring0", layout.vring0), ("vdev0vring1", layout.vring1), ("vdev0buffer", layout.buffer)]
        return [
            f"iomem=rproc,{memfile}",
            f"uml_rproc.socket={sock}",
            f"uml_rproc.da={layout.base:#x}",
            "uml_rproc.carveouts=" + ",".join(carveout(name, span) for name, span in spans),
        ]

    return args


PARAMS_SCRIPT = (
    _CHANNELS
    + """
P=/sys/module/uml_rproc/parameters
echo "rproc-params da=$(cat $P/da) carveouts=$(cat $P/carveouts)"
R=/sys/class/remoteproc/remoteproc0
echo start > $R/state
wait_channels 1
rpmsg-probe echo $DEV 1 16 300 496
rpmsg-probe stream $DEV 100 496 16
mount -t debugfs none /sys/kernel/debug
echo "rproc-trace $(cat /sys/kernel/debug/remoteproc/remoteproc0/trace0)"
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


def check_da_is_not_pa(run: Run, break_mode: str = "") -> str:
    """With ``uml_rproc.da=`` the remote is told the da of offset 0 (HELLO) and its physical address (PHYS); the
    ELF is loaded and the trace read at device addresses (da_to_va), the table gets the vring carveouts' da
    (registered through ``carveouts=`` only, found by name: remoteproc_core.c rproc_alloc_vring), and the
    receive buffers Linux posts come from the ``vdev0buffer`` carveout (the vdev's DMA pool:
    remoteproc_virtio.c rproc_add_virtio_dev) at physical addresses (virtio_rpmsg_bus.c rpmsg_sg_init:
    sg_phys), which the Python remote resolves through PHYS: rpmsg works."""
    run.guest.check_console_clean()
    layout = run.layout
    results = run.results()
    failed = [line for line in results if re.search(r"\bfail\b", line)]
    assert not failed, "\n".join(run.guest.lines[-60:])
    for pattern in (
        rf"rproc-params da={layout.base} carveouts=vdev0vring0@{layout.da(layout.vring0[0]):#x}\+",
        r"rproc-channels announced=1 dev=/dev/rpmsg",
        r"echo size=496 ok",
        r"stream .*ok",
        r"rproc-trace uml-remote: rpmsg-raw announced",
        r"rproc-sysfs stopped state=offline",
    ):
        assert any(re.search(pattern, line) for line in results), f"no line matches {pattern!r}: {results}"
    hello = run.remote.wait_for(r"uml-remote: hello da=(0x[0-9a-f]+) size=(0x[0-9a-f]+)", 1)
    phys = int(run.remote.wait_for(r"uml-remote: phys pa=(0x[0-9a-f]+)", 1).group(1), 16)
    assert (int(hello.group(1), 16), int(hello.group(2), 16)) == (layout.base, layout.size), hello.group(0)
    pa = Layout.for_guest_mem(GUEST_MEM).base  # where UML put the file: one page above the end of its RAM
    assert phys == pa != layout.base, (hex(phys), hex(pa))
    assert not [line for line in run.remote.lines if "error" in line], run.remote.lines
    assert run.remote.proc.returncode == 0, run.remote.lines
    image = run.boot_image(1)
    section = read_elf(run.firmware).resource_table
    assert section is not None and layout.base <= section.addr < layout.base + layout.size
    vdev = _vdev_entry(image, section.addr - layout.base)
    rings = [struct.unpack_from("<IIIII", image, vdev + 28 + 20 * n) for n in range(2)]
    assert [(r[0], r[3]) for r in rings] == [(layout.da(layout.vring0[0]), 0), (layout.da(layout.vring1[0]), 1)]
    assert image[vdev + 24] == 0x07
    # Linux's receive buffers (the first half of the pool, 512 bytes each) in vring 0's descriptors: physical
    descriptors = [struct.unpack_from("<QIHH", image, layout.vring0[0] + 16 * i) for i in range(layout.vring_num)]
    buffers = pa + layout.buffer[0]
    assert [(d[0], d[1]) for d in descriptors] == [(buffers + 512 * i, 512) for i in range(layout.vring_num)], [
        hex(d[0]) for d in descriptors[:4]
    ]
    return (
        f"da {layout.base:#x}, pa {phys:#x}: vrings at da {rings[0][0]:#x}/{rings[1][0]:#x}, "
        f"receive buffers at pa {buffers:#x}.., rpmsg echoes"
    )


def _vdev_entry(image: bytes, table_off: int) -> int:
    _ver, num = struct.unpack_from("<II", image, table_off)
    for off in struct.unpack_from(f"<{num}I", image, table_off + 16):
        if struct.unpack_from("<I", image, table_off + off)[0] == 3:
            return table_off + int(off)
    raise AssertionError("no vdev entry in the table")


BAD_PARAMS = {
    "outside": (
        "uml_rproc.carveouts=vdev0vring0@0x10+0x2000",
        "carveout vdev0vring0 0x10+0x2000 is outside the memory",
    ),
    "syntax": (
        "uml_rproc.carveouts=vdev0vring0:0x4021000",
        'carveouts: "vdev0vring0:0x4021000" is not NAME@DA+LEN (a name of 1 to 31 characters)',
    ),
    "twice": (
        "uml_rproc.carveouts=fw@0x4001000+0x1000,fw@0x4002000+0x1000",
        "carveout fw is given twice",
    ),
}
"""Parameters uml_rproc refuses at probe (before it connects), and what it says."""

BAD_PARAMS_SCRIPT = """
echo "rproc-count $(ls /sys/class/remoteproc | wc -l)"
"""


def bad_params_kernel_args(param: str) -> Callable[[Path, Path], list[str]]:
    def args(memfile: Path, sock: Path) -> list[str]:
        return [f"iomem=rproc,{memfile}", f"uml_rproc.socket={sock}", param]

    return args


def check_bad_params(run: Run, message: str) -> str:
    """The driver refuses the parameter with ``message`` and registers no remote processor."""
    lines = run.guest.lines
    said = [line for line in lines if message in line]
    assert said, f"the kernel did not say {message!r}:\n" + "\n".join(lines[-40:])
    assert "rproc-count 0" in run.results(), run.results()
    return said[0]


# ---- the inline coredump: recovery waits until the dump is read and freed -------------------------------------

INLINE_SCRIPT = (
    _CHANNELS
    + """
R=/sys/class/remoteproc/remoteproc0
D=/sys/kernel/debug/remoteproc/remoteproc0
C=/sys/class/devcoredump
mount -t debugfs none /sys/kernel/debug
echo start > $R/state
wait_channels 1
echo inline > $D/coredump
rpmsg-probe send $DEV crash
i=0
while [ "$(ls $C | grep -c '^devcd')" -lt 1 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
sleep 1
echo "rproc-inline waiting conf=$(cat $D/coredump) state=$(cat $R/state) dumps=$(ls $C | grep -c '^devcd')\
 announced=$(dmesg | grep -c 'creating channel rpmsg-raw')"
for d in $C/devcd*; do cat $d/data > /host/coredump.inline; echo 1 > $d/data; done
wait_channels 2
echo "rproc-inline recovered state=$(cat $R/state)"
rpmsg-probe echo $DEV 8
echo stop > $R/state
echo "rproc-sysfs stopped state=$(cat $R/state)"
"""
)


def check_inline_coredump(run: Run, break_mode: str = "") -> str:
    """With debugfs ``coredump`` set to "inline", rproc_coredump hands devcoredump a reader of the device memory
    (dev_coredumpm) and waits until the dump is freed (remoteproc_coredump.c 316-327 ``wait_for_completion``),
    holding the recovery between stop and start: the state is "offline", no new channel, until the guest has read
    the dump and written to it; then the remote starts again. The dump read that way is the same ELF core, its
    segment read from the memory at read time: the remote's copy when STOP came."""
    run.guest.check_console_clean()
    results = run.results()
    assert not [line for line in results if re.search(r"\bfail\b", line)], "\n".join(run.guest.lines[-60:])
    waiting = next((line for line in results if line.startswith("rproc-inline waiting ")), "")
    assert waiting.endswith("conf=inline state=offline dumps=1 announced=1"), waiting or results
    assert "rproc-inline recovered state=running" in results, results
    assert "rproc-sysfs stopped state=offline" in results, results
    events = [line.split()[1] for line in run.remote.lines if line.split()[1] in ("start", "crash", "stop")]
    assert events == ["start", "crash", "stop", "start", "stop"], run.remote.lines
    core = parse_core((run.firmware.parent / "coredump.inline").read_bytes())
    layout = run.layout
    assert (core.elf_class, core.machine, core.entry) == (1, EM_NONE, read_elf(run.firmware).entry), core
    [seg] = core.segments
    assert (seg.vaddr, seg.memsz, seg.flags) == (layout.base, layout.size, PF_RWX)
    memory = run.stop_image(1)
    differences = [hex(layout.da(i)) for i in range(layout.size) if seg.data[i] != memory[i]]
    assert not differences, f"inline coredump: {len(differences)} bytes differ, first at {differences[:8]}"
    return "recovery held (offline, no channel) until the inline dump was read and freed; its bytes = memory"
