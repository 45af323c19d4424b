"""Resource tables rproc emits, loaded by Linux's remoteproc core (issue 19, item 4): accepted or refused as rproc's
loader accepts or refuses them, and the memory after Linux booted them equal byte for byte to what rproc's loader
(:func:`remoteproc.loader.load_segments`, :func:`remoteproc.resources.handle_resources`) and vdev sequence write.

Each table (:data:`TABLES`) is a :class:`resource_table.ResourceTable` turned into C by rproc's own emitter
(:func:`resource_table.emit_c.emit_c`) and linked with a small firmware (:data:`FIRMWARE_C`) at the addresses of
:class:`~remoteproc.conformance.linux.rproc_uml.Layout`. One boot per table (:func:`boot_table`) runs a guest
script against a host remote (the C or the Python one, as in remoteproc_peer.py); the checks below read what the
remote copied of the memory file and the kernel's console, and return their evidence or raise AssertionError.
Every rule they check is in docs/linux-conformance.md, "What Linux and rproc still do differently", with its
kernel source line.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.remoteproc_peer import BOOT_TIMEOUT, FILL, GUEST_MEM, Run, run_guest
from remoteproc.conformance.linux.rproc_uml import FIRMWARE_NAME, Layout, _compile
from remoteproc.elf import read_bytes, read_elf
from remoteproc.firmware import firmware_info
from remoteproc.loader import load_segments
from remoteproc.resources import Pool, Registered, ResourceError, Resources, handle_resources
from remoteproc.rproc import RPMSG_DRIVER_FEATURES
from remoteproc.vdev import VdevControl
from resource_table import (
    FW_RSC_ADDR_ANY,
    Carveout,
    Devmem,
    RawEntry,
    ResourceTable,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
    write_back,
)
from resource_table.emit_c import emit_c
from transports.memory import MappedRegion, RegionMemory

# The firmware around an emitted table: initialised data and zero-fill, as host/uml_fw.c (its code never runs).
FIRMWARE_C = """\
#include <stdint.h>
const char uml_fw_banner[] = "rproc uml_rproc table firmware";
volatile uint32_t uml_fw_counter = 0x12345678u;
uint8_t uml_fw_zero[4096];
void _start(void)
{
\tfor (;;)
\t\tuml_fw_counter += uml_fw_zero[uml_fw_counter & 4095] + (uint8_t)uml_fw_banner[0];
}
"""

CONFIG = bytes(range(0x10, 0x20))  # the rpmsg vdev's config space (Linux's virtio_rpmsg_bus never reads it)
FIXED_CARVEOUT = (0x30000, 0x1000)  # a carveout with a fixed da inside the file, not registered by the driver
ANY_CARVEOUT_LEN = 0x2000


def _rpmsg_vdev(layout: Layout, config: bytes = b"") -> Vdev:
    ring = Vring(align=layout.vring_align, num=layout.vring_num)
    return Vdev(
        id=7,
        notifyid=layout.vdev_notifyid,
        dfeatures=1,
        vrings=(
            Vring(da=layout.da(layout.vring0[0]), align=ring.align, num=ring.num),
            Vring(da=layout.da(layout.vring1[0]), align=ring.align, num=ring.num),
        ),
        config=config,
    )


def table_vendor(layout: Layout) -> ResourceTable:
    """Two trace buffers, a vendor entry (128), reserved types (5, and 600 past the vendor range), an rpmsg vdev
    with 16 bytes of config space: no carveout, so the driver's three registered ones suffice."""
    return ResourceTable(
        entries=(
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1] // 2, name="trace0"),
            VendorEntry(type=128, data=b"rproc-vendor-128"),
            RawEntry(type=5, data=bytes(range(8))),
            Trace(da=layout.da(layout.trace[0] + layout.trace[1] // 2), len=layout.trace[1] // 2, name="trace1"),
            RawEntry(type=600, data=b"\xff" * 4),
            _rpmsg_vdev(layout, CONFIG),
        )
    )


def table_carveouts(layout: Layout) -> ResourceTable:
    """Carveouts uml_rproc does not register: one with a fixed da inside the memory file, one with da ANY."""
    return ResourceTable(
        entries=(
            Carveout(da=layout.da(FIXED_CARVEOUT[0]), pa=0, len=FIXED_CARVEOUT[1], name="fw-fixed"),
            Carveout(da=FW_RSC_ADDR_ANY, pa=FW_RSC_ADDR_ANY, len=ANY_CARVEOUT_LEN, name="fw-any"),
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
        )
    )


def table_devmem(layout: Layout) -> ResourceTable:
    """A devmem entry: Linux maps it only through an IOMMU domain, which uml_rproc has not."""
    return ResourceTable(
        entries=(
            Devmem(da=0x50000000, pa=0x50000000, len=0x1000, name="regs"),
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
        )
    )


# Extra carveouts uml_rproc registers for the two-vdev table (uml_rproc.carveouts=NAME@DA+LEN): name, offset, len.
EXTRA_CARVEOUTS = (
    ("vdev1vring0", 0x24000, 0x2000),
    ("vdev1vring1", 0x26000, 0x2000),
    ("fw-carveout", 0x28000, 0x4000),
    ("vdev1buffer", 0x30000, 0x10000),  # 2 * 64 buffers of 512 bytes
)
FW_CARVEOUT_LEN = 0x1000  # what the table asks of fw-carveout: Linux writes the registered 0x4000 back


def table_two_vdevs(layout: Layout) -> ResourceTable:
    """Two rpmsg vdevs, the second on the driver's vdev1vring0/1 and vdev1buffer carveouts (its vrings at ANY),
    and a carveout "fw-carveout" at ANY the driver registered: Linux gives it the registered da, pa and len."""
    ring = Vring(align=layout.vring_align, num=layout.vring_num)
    return ResourceTable(
        entries=(
            Carveout(da=FW_RSC_ADDR_ANY, pa=FW_RSC_ADDR_ANY, len=FW_CARVEOUT_LEN, name="fw-carveout"),
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
            Vdev(id=7, notifyid=layout.vdev_notifyid + 1, dfeatures=1, vrings=(ring, ring)),
        )
    )


TABLES: dict[str, Callable[[Layout], ResourceTable]] = {
    "vendor": table_vendor,
    "carveouts": table_carveouts,
    "devmem": table_devmem,
    "two-vdevs": table_two_vdevs,
}
DA_BASE = 0x10000000  # the "da-not-pa" table: uml_rproc.da= puts the file's offset 0 here for the remote
DA_CARVEOUTS = (("fw-carveout", 0x28000, 0x4000),)


def table_da_not_pa(layout: Layout) -> ResourceTable:
    """The memory at device address :data:`DA_BASE`, not at its guest-physical address: a carveout the driver
    registered ("fw-carveout", asked for at ANY) gets its da and, as pa, the physical address."""
    return ResourceTable(
        entries=(
            Carveout(da=FW_RSC_ADDR_ANY, pa=FW_RSC_ADDR_ANY, len=FW_CARVEOUT_LEN, name="fw-carveout"),
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
        )
    )


TABLES["da-not-pa"] = table_da_not_pa
UNBOUND_ID = 42  # a virtio device id no Linux driver takes


def table_unbound_vdev(layout: Layout) -> ResourceTable:
    """The rpmsg vdev, then a vdev of an id no driver binds, its vrings at ANY (no vdev1 carveouts registered)."""
    ring = Vring(align=layout.vring_align, num=layout.vring_num)
    return ResourceTable(
        entries=(
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            _rpmsg_vdev(layout),
            Vdev(id=UNBOUND_ID, notifyid=layout.vdev_notifyid + 1, vrings=(ring, ring)),
        )
    )


TABLES["unbound-vdev"] = table_unbound_vdev
EXTRA: dict[str, tuple[tuple[str, int, int], ...]] = {"two-vdevs": EXTRA_CARVEOUTS, "da-not-pa": DA_CARVEOUTS}
"""Per table, the carveouts uml_rproc registers besides vdev0vring0/1 and vdev0buffer."""
DEVICE_BASE = {"da-not-pa": DA_BASE}
"""Per table, the device address of the file's offset 0 when it is not the guest-physical one (uml_rproc.da=)."""


def table_layout(table: str) -> Layout:
    """The memory map of ``table``'s boot: at the guest-physical address of the iomem region, or at
    :data:`DEVICE_BASE` for the device."""
    physical = Layout.for_guest_mem(GUEST_MEM)
    return Layout(base=DEVICE_BASE[table]) if table in DEVICE_BASE else physical


def carveouts_arg(layout: Layout, extra: tuple[tuple[str, int, int], ...]) -> list[str]:
    """``uml_rproc.carveouts=NAME@DA+LEN,...`` (DRIVER_CONTRACT.md), or nothing."""
    if not extra:
        return []
    return ["uml_rproc.carveouts=" + ",".join(f"{n}@{layout.da(off):#x}+{size:#x}" for n, off, size in extra)]


def build_table_firmware(layout: Layout, out_dir: Path, table: ResourceTable, name: str = FIRMWARE_NAME) -> Path:
    """``out_dir/name``: :data:`FIRMWARE_C` with ``table`` as rproc emits it (emit_c), linked at ``layout``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "uml_fw.ld").write_text(layout.linker_script())
    (out_dir / "fw.c").write_text(FIRMWARE_C)
    (out_dir / "table.c").write_text(emit_c(table))
    elf = out_dir / name
    _compile(
        [
            "gcc",
            "-std=c11",
            "-O1",
            "-Wall",
            "-Werror",
            "-ffreestanding",
            "-fno-pic",
            "-fno-asynchronous-unwind-tables",
            "-fno-stack-protector",
            "-nostdlib",
            "-static",
            "-no-pie",
            f"-Wl,-T,{out_dir / 'uml_fw.ld'}",
            "-Wl,--build-id=none",
            "-o",
            str(elf),
            str(out_dir / "fw.c"),
            str(out_dir / "table.c"),
        ],
        "building a uml_rproc table firmware",
    )
    return elf


# The guest: start; if Linux took the firmware, an echo over the channel, every trace buffer, stop.
GUEST_SCRIPT = """
R=/sys/class/remoteproc/remoteproc0
if echo start > $R/state; then echo "rproc-table start accepted"; else echo "rproc-table start refused"; fi
echo "rproc-table state=$(cat $R/state)"
if [ "$(cat $R/state)" = running ]; then
    rpmsg-probe wait-channel rpmsg-raw 30000 | tee /host/channel.txt
    DEV=$(sed -n 's/.* dev=\\([^ ]*\\).*/\\1/p' /host/channel.txt)
    rpmsg-probe echo $DEV 1 496
    mount -t debugfs none /sys/kernel/debug
    for t in /sys/kernel/debug/remoteproc/remoteproc0/trace*; do
        echo "rproc-table trace $(basename $t) bytes=$(wc -c < $t) [$(head -c 64 $t | tr -cd 'a-zA-Z0-9 :-')]"
    done
    echo stop > $R/state
    echo "rproc-table stopped state=$(cat $R/state)"
fi
"""


@contextlib.contextmanager
def boot_table(
    images: UmlImages, remote_command: list[str], tmp: Path, table: str, timeout: float = BOOT_TIMEOUT
) -> Iterator[Run]:
    """Boot the guest with :data:`GUEST_SCRIPT` and the firmware carrying :data:`TABLES`\\ [``table``]; yields once
    UML has exited (the same remote protocol and snapshots as remoteproc_peer.boot)."""
    layout = table_layout(table)
    share = tmp / "share"
    firmware = build_table_firmware(layout, share, TABLES[table](layout))
    section = read_elf(firmware).resource_table
    assert section is not None
    extra = [
        *carveouts_arg(layout, EXTRA.get(table, ())),
        *([f"uml_rproc.da={layout.base:#x}"] if table in DEVICE_BASE else []),
    ]
    args = lambda memfile, sock: [*layout.kernel_args(memfile, sock), *extra]  # noqa: E731
    # a refused firmware never started the remote: end_remote ends it
    with run_guest(images, remote_command, tmp, layout, section.addr, GUEST_SCRIPT, args, timeout, True) as ran:
        yield Run(layout, firmware, ran.guest, ran.remote, ran.snapshot)


# ---- what rproc's loader does with the same ELF and map ------------------------------------------------------


def registered(layout: Layout, extra: tuple[tuple[str, int, int], ...] = ()) -> list[Registered]:
    """The carveouts uml_rproc registers before boot (uml_rproc.vring0=, vring1=, buffer=, carveouts=)."""
    return [
        Registered("vdev0vring0", layout.da(layout.vring0[0]), layout.vring0[1]),
        Registered("vdev0vring1", layout.da(layout.vring1[0]), layout.vring1[1]),
        Registered("vdev0buffer", layout.da(layout.buffer[0]), layout.buffer[1]),
        *(Registered(name, layout.da(off), size) for name, off, size in extra),
    ]


@dataclass
class Expected:
    memory: RegionMemory
    resources: Resources
    table_da: int
    controls: list[VdevControl]

    def bytes(self) -> bytes:
        region = self.memory.regions[0]
        return self.memory.read(region.da, region.size)


def rproc_load(
    layout: Layout,
    firmware: Path,
    extra: tuple[tuple[str, int, int], ...] = (),
    to_pa: Callable[[int], int] | None = None,
    *,
    devmem_ok: bool = False,
    keep_pa: bool = False,
) -> Expected:
    """rproc's loader, resource handling (with uml_rproc's registered carveouts) and, for every rpmsg vdev, the
    status sequence Linux's virtio_rpmsg_bus drives, on a memory like the file before boot. Raises
    :class:`~remoteproc.resources.ResourceError` where rproc refuses the table."""
    memory = RegionMemory([MappedRegion("rproc", layout.base, layout.size, bytearray([FILL]) * layout.size)])
    info = firmware_info(firmware)
    section = info.elf.resource_table
    assert info.table is not None and section is not None
    data = read_bytes(firmware, section.offset, section.size)
    pool = Pool([(layout.base, layout.base + layout.size)])
    for seg in load_segments(firmware, info.elf, memory):
        pool.reserve(seg.da, seg.memsz)
    res = handle_resources(
        data,
        info.table,
        info.spans,
        memory,
        pool,
        registered=registered(layout, extra),
        to_pa=to_pa,
        devmem_ok=devmem_ok,
    )
    if keep_pa:  # BREAKS["firmware-pa"]: what rproc did before, the firmware's pa left in fixed carveouts
        asked = iter(e for e in info.table.entries if isinstance(e, Carveout))
        entries = [
            dataclasses.replace(e, pa=a.pa)
            if isinstance(e, Carveout) and (a := next(asked)).da != FW_RSC_ADDR_ANY
            else e
            for e in res.table.entries
        ]
        res.table = dataclasses.replace(res.table, entries=tuple(entries))
        res.carveouts = [e for e in entries if isinstance(e, Carveout)]
        res.data = write_back(data, res.spans, res.table)
    memory.write(section.addr, res.data)
    controls = []
    for placement in res.vdevs:
        control = VdevControl(
            memory, section.addr + res.spans[placement.index].offset, res.table.version, len(placement.vrings)
        )
        if placement.vdev.id == 7:
            control.negotiate(RPMSG_DRIVER_FEATURES)
            control.driver_ok()
        else:  # no driver binds it: drivers/virtio/virtio.c register_virtio_device, reset then ACKNOWLEDGE
            control.set_status(0)
            control.set_status(1)
        controls.append(control)
    return Expected(memory, res, section.addr, controls)


def _differences(run: Run, linux: bytes, ours: bytes) -> list[str]:
    start, size = run.layout.firmware
    return [hex(run.layout.da(i)) for i in range(start, start + size) if linux[i] != ours[i]]


def _started(run: Run) -> None:
    results = run.results()
    assert "rproc-table start accepted" in results and "rproc-table state=running" in results, "\n".join(
        run.guest.lines[-40:]
    )
    assert any(re.search(r"echo size=496 ok", line) for line in results), "\n".join(results)
    assert "rproc-table stopped state=offline" in results, "\n".join(results)


# ---- the checks ----------------------------------------------------------------------------------------------


def check_vendor_table(run: Run, break_mode: str = "") -> str:
    """Linux hands a vendor type (128..512) to the driver's handle_rsc and, without one, warns "unsupported vendor
    resource" and goes on; any other type it does not know (4..127, above 512) it warns "unsupported resource"
    about and skips (remoteproc_core.c rproc_handle_rsc_entry). rproc's handle_resources skips them with a
    warning too: the firmware runs, both trace buffers show, and the memory (segments, the table with its vendor
    bytes and config space as negotiated) equals rproc's loader byte for byte."""
    run.guest.check_console_clean()
    _started(run)
    console = "\n".join(run.guest.lines)
    for warning in ("unsupported vendor resource 128", "unsupported resource 5", "unsupported resource 600"):
        assert warning in console, f"no {warning!r} from Linux:\n{console[-3000:]}"
    traces = [line for line in run.results() if line.startswith("rproc-table trace ")]
    assert [t.split()[2] for t in traces] == ["trace0", "trace1"], traces
    assert "uml-remote: rpmsg-raw announced" in traces[0], traces
    ours = rproc_load(run.layout, run.firmware)
    linux = run.boot_image(1)
    differences = _differences(run, linux, ours.bytes())
    assert not differences, f"{len(differences)} bytes differ, first at {differences[:8]}"
    [vdev] = [e for e in ours.resources.table.entries if isinstance(e, Vdev)]
    assert vdev.config == CONFIG
    return "vendor 128, types 5 and 600 skipped with Linux's warnings; two traces; every firmware byte equal"


def check_unregistered_carveouts(run: Run, break_mode: str = "") -> str:
    """A carveout no platform carveout of its name covers is allocated by Linux with dma_alloc_coherent() in its
    own RAM (remoteproc_core.c rproc_alloc_carveout): da ANY becomes that address, a fixed da stays as it was
    with the warning "Allocated carveout doesn't fit device address request" (no IOMMU domain), and pa is the
    RAM's (rproc_alloc_registered_carveouts writes pa, da, len). rproc places both in the remote's memory (the
    fixed one at its da) and writes pa = da. Every other byte of the firmware's memory is equal."""
    run.guest.check_console_clean()
    _started(run)
    console = "\n".join(run.guest.lines)
    assert "Allocated carveout doesn't fit device address request" in console, console[-3000:]
    ours = rproc_load(run.layout, run.firmware, keep_pa=break_mode == "firmware-pa")
    linux = run.boot_image(1)
    table_off = ours.table_da - run.layout.base
    spans = ours.resources.spans
    layout = run.layout
    fixed_at, any_at = (table_off + spans[i].offset for i in (0, 1))
    fixed = struct.unpack_from("<IIII", linux, fixed_at)
    anyc = struct.unpack_from("<IIII", linux, any_at)
    in_file = range(layout.base, layout.base + layout.size)
    assert fixed[1] == layout.da(FIXED_CARVEOUT[0]) and fixed[3] == FIXED_CARVEOUT[1], fixed
    assert fixed[2] not in in_file and fixed[2] != 0, f"fixed carveout pa {fixed[2]:#x}: expected Linux's RAM"
    assert anyc[1] not in in_file and anyc[2] == anyc[1] and anyc[3] == ANY_CARVEOUT_LEN, anyc
    # rproc: the fixed one at its da, pa = da; the ANY one from the file's pool, pa = da
    [ofixed, oany] = ours.resources.carveouts
    assert (ofixed.da, ofixed.pa) == (fixed[1], fixed[1]), (
        f"rproc's fixed carveout: da {ofixed.da:#x} pa {ofixed.pa:#x}"
    )
    assert oany.da in in_file and oany.pa == oany.da, f"rproc's ANY carveout: da {oany.da:#x} pa {oany.pa:#x}"
    # With Linux's da and pa written into rproc's table, every byte is equal.
    expected = bytearray(ours.bytes())
    for at, values in ((fixed_at, fixed), (any_at, anyc)):
        struct.pack_into("<IIII", expected, at, *values)
    differences = _differences(run, linux, bytes(expected))
    assert not differences, f"{len(differences)} bytes differ, first at {differences[:8]}"
    return (
        f"fixed da {fixed[1]:#x} kept with pa {fixed[2]:#x} (Linux RAM, warned); ANY got {anyc[1]:#x}; rproc: "
        f"{ofixed.da:#x}/{oany.da:#x} in the remote's memory; the rest equal"
    )


def check_devmem_refused(run: Run, break_mode: str = "") -> str:
    """Without an IOMMU domain Linux refuses a devmem entry and with it the boot (remoteproc_core.c
    rproc_handle_devmem: -EINVAL; rproc_fw_boot: "Failed to process resources"); the write to sysfs state fails
    and the remote is never started. rproc's handle_resources refuses it too, naming the entry."""
    results = run.results()
    console = "\n".join(run.guest.lines)
    assert "rproc-table start refused" in results and "rproc-table state=offline" in results, console[-3000:]
    assert "Failed to process resources: -22" in console, console[-3000:]
    assert not any(line.startswith("uml-remote: start ") for line in run.remote.lines), run.remote.lines
    try:
        rproc_load(run.layout, run.firmware, devmem_ok=break_mode == "devmem-ok")
    except ResourceError as exc:
        ours = str(exc)
    else:
        raise AssertionError("rproc's loader took the devmem entry Linux refused")
    assert "entry 0: devmem 'regs'" in ours, ours
    return f"Linux: Failed to process resources: -22; rproc: {ours}"


def check_two_vdevs(run: Run, break_mode: str = "") -> str:
    """Linux handles every vdev entry (remoteproc_core.c rproc_handle_vdev: index rproc->nb_vdev++): vdev 1 takes
    the driver's vdev1vring0/1 carveouts (rproc_alloc_vring; rp_find_vq writes their da) and vdev1buffer
    (rproc_add_virtio_dev), its vrings get notify ids 2 and 3 from the one IDR, virtio_rpmsg_bus drives it to
    DRIVER_OK too; the table carveout "fw-carveout" gets the registered carveout's da, pa and len
    (rproc_handle_carveout, rproc_alloc_registered_carveouts). rproc's loader with the same registered carveouts
    writes the same bytes."""
    run.guest.check_console_clean()
    _started(run)
    layout = run.layout
    ours = rproc_load(layout, run.firmware, () if break_mode == "unregistered" else EXTRA_CARVEOUTS)
    linux = run.boot_image(1)
    table_off = ours.table_da - layout.base
    spans = ours.resources.spans
    carveout = struct.unpack_from("<IIII", linux, table_off + spans[0].offset)
    fw = layout.da(EXTRA_CARVEOUTS[2][1])
    assert carveout[1:] == (fw, fw, EXTRA_CARVEOUTS[2][2]), [hex(v) for v in carveout]
    vdev1 = table_off + spans[3].offset
    # The boot copy is taken at vdev 0's DRIVER_OK; Linux then probes vdev 1 (rproc_start_subdevices, in order),
    # so its gfeatures, status and vring da (written by rp_find_vq) may not be there yet: every other byte is
    # compared. Its notify ids are (rproc_alloc_vring, at rproc_handle_resources time).
    moving = (
        {vdev1 + 16 + i for i in range(4)} | {vdev1 + 24} | {vdev1 + 28 + 20 * n + i for n in (0, 1) for i in range(4)}
    )
    differences = [d for d in _differences(run, linux, ours.bytes()) if int(d, 16) - layout.base not in moving]
    assert not differences, f"{len(differences)} bytes differ at boot, first at {differences[:8]}"
    # Both vdevs were negotiated before `echo start` returned (virtio_rpmsg_bus probes synchronously) and reset
    # + acknowledged on stop (status 1; gfeatures and vring da/notifyid kept): the stop copy, every byte.
    stopped = run.stop_image(1)
    assert (stopped[vdev1 + 24], struct.unpack_from("<I", stopped, vdev1 + 16)[0]) == (1, 1), "vdev 1 after stop"
    rings = [struct.unpack_from("<IIIII", stopped, vdev1 + 28 + 20 * n) for n in range(2)]
    assert [(r[0], r[3]) for r in rings] == [(layout.da(0x24000), 2), (layout.da(0x26000), 3)], rings
    for control in ours.controls:
        control.reset_for_stop()
    differences = _differences(run, stopped, ours.bytes())
    assert not differences, f"{len(differences)} bytes differ after stop, first at {differences[:8]}"
    return "vdev 1 on vdev1vring0/1 with notify ids 2/3, negotiated (gfeatures 1); fw-carveout registered; bytes equal"


def check_da_not_pa(run: Run, break_mode: str = "") -> str:
    """With the memory at another device address than its physical one (uml_rproc.da=), Linux writes a carveout's
    da and, as pa, the physical address (rproc_alloc_registered_carveouts: pa from entry->dma); vring da stay
    device addresses (rp_find_vq: mem->da). rproc's loader with ``to_pa`` (the platform's physical address of a
    device address) writes the same bytes; the remote, told the physical address (PHYS), serves Linux's
    descriptors."""
    run.guest.check_console_clean()
    _started(run)
    layout = run.layout
    physical = Layout.for_guest_mem(GUEST_MEM).base
    run.remote.wait_for(rf"uml-remote: phys pa={physical:#x}", 1)
    to_pa = None if break_mode == "pa-is-da" else (lambda da: da - layout.base + physical)
    ours = rproc_load(layout, run.firmware, DA_CARVEOUTS, to_pa=to_pa)
    linux = run.boot_image(1)
    carveout = struct.unpack_from("<IIII", linux, ours.table_da - layout.base + ours.resources.spans[0].offset)
    off, size = DA_CARVEOUTS[0][1:]
    assert carveout[1:] == (layout.da(off), physical + off, size), [hex(v) for v in carveout]
    differences = _differences(run, linux, ours.bytes())
    assert not differences, f"{len(differences)} bytes differ, first at {differences[:8]}"
    return f"carveout da {carveout[1]:#x}, pa {carveout[2]:#x}; every byte equal with to_pa"


def check_unbound_vdev(run: Run, break_mode: str = "") -> str:
    """A vdev no driver binds: Linux assigns its vrings' notify ids while handling the table (rproc_alloc_vring)
    but writes their da only in rp_find_vq, which only a driver calls, so a vring asked at ANY stays ANY in the
    table; register_virtio_device resets it and sets ACKNOWLEDGE, and that is all (status 1, also after stop:
    no driver, no virtio_dev_remove). rproc's loader writes the da it allocated: the one difference, every other
    byte of the stop copy is equal."""
    run.guest.check_console_clean()
    _started(run)
    layout = run.layout
    ours = rproc_load(layout, run.firmware)
    stopped = run.stop_image(1)
    vdev1 = ours.table_da - layout.base + ours.resources.spans[2].offset
    rings = [struct.unpack_from("<IIIII", stopped, vdev1 + 28 + 20 * n) for n in range(2)]
    assert stopped[vdev1 + 24] == 1, f"unbound vdev status {stopped[vdev1 + 24]}"
    assert [(r[0], r[3]) for r in rings] == [(FW_RSC_ADDR_ANY, 2), (FW_RSC_ADDR_ANY, 3)], rings
    for control in ours.controls[:1]:
        control.reset_for_stop()
    ours_rings = [r.da for r in ours.resources.vdevs[1].vrings]
    assert FW_RSC_ADDR_ANY not in ours_rings, ours_rings  # rproc writes what it allocated
    expected = bytearray(ours.bytes())
    if break_mode != "unbound-da":
        for n in range(2):
            struct.pack_into("<I", expected, vdev1 + 28 + 20 * n, FW_RSC_ADDR_ANY)
    differences = _differences(run, stopped, bytes(expected))
    assert not differences, f"{len(differences)} bytes differ after stop, first at {differences[:8]}"
    return f"unbound vdev: status 1, vring da ANY with notify ids 2/3 (rproc: {[hex(d) for d in ours_rings]})"


BREAKS = {
    "unbound-da": ("unbound-vdev", "the comparison without putting Linux's ANY into rproc's vring da"),
    "firmware-pa": ("carveouts", "rproc keeps the firmware's pa in a fixed carveout, as it did before"),
    "devmem-ok": ("devmem", "rproc's loader takes the devmem entry"),
    "unregistered": ("two-vdevs", "rproc's loader without uml_rproc's registered carveouts"),
    "pa-is-da": ("da-not-pa", "rproc's loader writes pa = da"),
}
"""Break modes: rproc's side wrong on purpose (name -> (table, what)); the table's check must then fail."""

CHECKS: dict[str, Callable[[Run, str], str]] = {
    "unbound-vdev": check_unbound_vdev,
    "da-not-pa": check_da_not_pa,
    "two-vdevs": check_two_vdevs,
    "vendor": check_vendor_table,
    "carveouts": check_unregistered_carveouts,
    "devmem": check_devmem_refused,
}
