"""Linux's remoteproc core as a peer, its lifecycle (issue 19 item 5): coredumps through devcoredump after a crash
the remote reports (recovery on and off), the inline coredump, and the vdev status bytes in the order Linux writes
them, next to the order rproc's own ``RemoteProc`` writes them (vdev_status.py). The catalogue's boots
``lifecycle-crashes``, ``da-not-pa`` (driver_params.py) and ``inline-coredump``.

The checks take a :class:`~remoteproc.conformance.linux.guest_run.Run` of one of the guest scripts below and
return their evidence or raise AssertionError saying what differs (docs/linux-conformance.md, "Lifecycle against
the real core").
"""

from __future__ import annotations

import contextlib
import re
import struct
from dataclasses import dataclass
from pathlib import Path

from remoteproc.conformance.linux import driver_params
from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.catalogue_types import Boot, Break, Scenario, only
from remoteproc.conformance.linux.guest_run import (
    CHANNELS,
    GUEST_MEM,
    Run,
    boot_with,
    expect_results,
    remote_command,
)
from remoteproc.conformance.linux.rproc_uml import Layout
from remoteproc.conformance.linux.vdev_status import (
    LINUX_START,
    LINUX_STOP,
    linux_status_writes,
    rproc_vdev_events,
    stop_first,
)
from remoteproc.elf import read_elf

LIFECYCLE_TIMEOUT = 180.0

# ---- crashes, recovery and coredumps --------------------------------------------------------------------------

LIFECYCLE_SCRIPT = (
    CHANNELS
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
channel 1
rpmsg-probe echo $DEV 8
rpmsg-probe send $DEV crash
channel 2
echo "rproc-coredump crash-1 conf=$(cat $D/coredump) state=$(cat $R/state) dumps=$(dumps)"
echo enabled > $D/coredump
rpmsg-probe send $DEV crash
channel 3
echo "rproc-coredump crash-2 conf=$(cat $D/coredump) state=$(cat $R/state) dumps=$(dumps)"
take_dump coredump.2
echo disabled > $R/recovery
rpmsg-probe send $DEV crash
i=0
while [ "$(cat $R/state)" != crashed ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done
sleep 0.5
echo "rproc-coredump crash-3 conf=$(cat $D/coredump) state=$(cat $R/state) dumps=$(dumps)"
echo recover > $R/recovery
channel 4
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
    results = expect_results(run, [])
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
        ours = stop_first(ours)
    assert ours == linux, f"rproc writes {ours}, Linux {linux}"
    return f"{len(writes) - 2 * (recoveries + 1)} status writes in Linux's order; rproc's RemoteProc the same"


# ---- the inline coredump: recovery waits until the dump is read and freed -------------------------------------

INLINE_SCRIPT = (
    CHANNELS
    + """
R=/sys/class/remoteproc/remoteproc0
D=/sys/kernel/debug/remoteproc/remoteproc0
C=/sys/class/devcoredump
mount -t debugfs none /sys/kernel/debug
echo start > $R/state
channel 1
echo inline > $D/coredump
rpmsg-probe send $DEV crash
i=0
while [ "$(ls $C | grep -c '^devcd')" -lt 1 ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done
sleep 1
echo "rproc-inline waiting conf=$(cat $D/coredump) state=$(cat $R/state) dumps=$(ls $C | grep -c '^devcd')\
 announced=$(dmesg | grep -c 'creating channel rpmsg-raw')"
for d in $C/devcd*; do cat $d/data > /host/coredump.inline; echo 1 > $d/data; done
channel 2
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
    results = expect_results(run, [])
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


# ---- the catalogue's entries -----------------------------------------------------------------------------------


def _lifecycle(images: UmlImages, remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
    layout = Layout.for_guest_mem(GUEST_MEM)
    command = remote_command(remote, tmp / "remote")
    return boot_with(images, command, tmp, LIFECYCLE_SCRIPT, layout, layout.kernel_args, LIFECYCLE_TIMEOUT)


def _da_not_pa(images: UmlImages, remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
    layout = driver_params.params_layout()
    command = remote_command(remote, tmp / "remote")
    return boot_with(
        images, command, tmp, driver_params.PARAMS_SCRIPT, layout, driver_params.carveouts_kernel_args(layout)
    )


def _inline(images: UmlImages, remote: str, tmp: Path, _break: str) -> contextlib.AbstractContextManager[Run]:
    layout = Layout.for_guest_mem(GUEST_MEM)
    command = remote_command(remote, tmp / "remote")
    return boot_with(images, command, tmp, INLINE_SCRIPT, layout, layout.kernel_args)


BOOTS = (
    Boot(
        "lifecycle-crashes",
        "three crashes with coredumps enabled, dynamic debug on the status bytes",
        runner=_lifecycle,
    ),
    Boot("da-not-pa", "uml_rproc.da=0x10000000, the vdev0 carveouts given through carveouts=", runner=_da_not_pa),
    Boot("inline-coredump", "a crash with the coredump mode 'inline'", runner=_inline),
)

SCENARIOS = (
    Scenario(
        "coredump",
        "a crash's devcoredump is an ELF core of the remote's memory, byte for byte",
        "lifecycle-crashes",
        check_coredump,
    ),
    Scenario(
        "status-sequence",
        "the vdev status bytes in Linux's order (0 1 3 7; 0 1 before STOP), and rproc's",
        "lifecycle-crashes",
        check_status_sequence,
    ),
    Scenario(
        "da-not-pa",
        "carveouts= found by name, da != pa, descriptors at physical addresses",
        "da-not-pa",
        driver_params.check_da_is_not_pa,
        applies=only("python"),
    ),
    Scenario(
        "inline-coredump",
        "an inline coredump holds recovery until it is read",
        "inline-coredump",
        check_inline_coredump,
    ),
)

BREAKS = {
    "stop-after-remote": Break(
        "rproc's stop stops the remote before the vdev reset (its old order)", frozenset({"status-sequence"})
    ),
}
