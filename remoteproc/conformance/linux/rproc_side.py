"""rproc's side of every byte-for-byte comparison with Linux: what rproc's loader
(:func:`remoteproc.loader.load_segments`), resource handling (:func:`remoteproc.resources.handle_resources`) and
vdev sequence (:class:`remoteproc.vdev.VdevControl`) write for the same firmware ELF and memory map, on a memory
filled like the file before boot (:data:`~remoteproc.conformance.linux.guest_run.FILL`).
"""

from __future__ import annotations

import dataclasses
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from remoteproc.conformance.linux.guest_run import FILL, Run
from remoteproc.conformance.linux.rproc_uml import Layout
from remoteproc.elf import read_bytes
from remoteproc.firmware import FirmwareInfo, firmware_info
from remoteproc.loader import load_segments
from remoteproc.resources import Pool, Registered, Resources, handle_resources
from remoteproc.rproc import RPMSG_DRIVER_FEATURES
from remoteproc.vdev import VdevControl
from resource_table import FW_RSC_ADDR_ANY, Carveout, write_back
from rpmsg.protocol import LINUX_BUFFER_SIZE
from transports.memory import MappedRegion, RegionMemory

RSC_TRACE, RSC_VDEV = 2, 3


def layout_memory(layout: Layout) -> RegionMemory:
    """The memory map of ``layout`` in a bytearray, every byte :data:`FILL`, as the memory file before boot."""
    return RegionMemory([MappedRegion("rproc", layout.base, layout.size, bytearray([FILL]) * layout.size)])


def load_image(layout: Layout, firmware: Path, info: FirmwareInfo, unfilled: bool = False) -> tuple[RegionMemory, Pool]:
    """``firmware``'s segments loaded into :func:`layout_memory`, and the pool of what they leave free.
    ``unfilled``: memsz - filesz left as it was (the break mode "no-zero-fill")."""
    memory = layout_memory(layout)
    pool = Pool([(layout.base, layout.base + layout.size)])
    for seg in load_segments(firmware, info.elf, memory):
        pool.reserve(seg.da, seg.memsz)
        if unfilled and seg.memsz > seg.filesz:
            memory.write(seg.da + seg.filesz, bytes([FILL]) * (seg.memsz - seg.filesz))
    return memory, pool


def registered(layout: Layout, extra: tuple[tuple[str, int, int], ...] = ()) -> list[Registered]:
    """The carveouts uml_rproc registers before boot (uml_rproc.vring0=, vring1=, buffer=, carveouts=)."""
    return [
        Registered("vdev0vring0", layout.da(layout.vring0[0]), layout.vring0[1]),
        Registered("vdev0vring1", layout.da(layout.vring1[0]), layout.vring1[1]),
        Registered("vdev0buffer", layout.da(layout.buffer[0]), layout.buffer[1]),
        *(Registered(name, layout.da(off), size) for name, off, size in extra),
    ]


@dataclass
class RprocImage:
    """What rproc's loader and vdev sequence leave in the same memory map."""

    memory: RegionMemory
    resources: Resources
    table_da: int
    controls: list[VdevControl]

    def bytes(self) -> bytes:
        region = self.memory.regions[0]
        return self.memory.read(region.da, region.size)

    def stop(self, break_mode: str = "") -> None:
        """RemoteProc.stop's write to the (first) vdev's entry (VdevControl.reset_for_stop)."""
        control = self.controls[0]
        control.reset_for_stop()
        if break_mode == "stop-reset-vrings":  # what rproc did before it was checked against Linux
            for n in range(control.num_vrings):
                at = control.entry_da + 28 + 20 * n
                self.memory.write(at, bytes(4))
                self.memory.write(at + 12, struct.pack("<I", 0xFFFFFFFF))


def rproc_load(
    layout: Layout,
    firmware: Path,
    carveouts: Sequence[Registered] = (),
    to_pa: Callable[[int], int] | None = None,
    *,
    devmem_ok: bool = False,
    keep_pa: bool = False,
    unfilled: bool = False,
) -> RprocImage:
    """rproc's loader, resource handling (with the platform's registered ``carveouts``) and, for every rpmsg vdev,
    the status sequence Linux's virtio_rpmsg_bus drives. Raises :class:`~remoteproc.resources.ResourceError` where
    rproc refuses the table."""
    info = firmware_info(firmware)
    section = info.elf.resource_table
    assert info.table is not None and section is not None
    data = read_bytes(firmware, section.offset, section.size)
    memory, pool = load_image(layout, firmware, info, unfilled)
    res = handle_resources(
        data, info.table, info.spans, memory, pool, registered=carveouts, to_pa=to_pa, devmem_ok=devmem_ok
    )
    if keep_pa:  # tables.py's break "firmware-pa": what rproc did before, the firmware's pa left in fixed carveouts
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
    memory.write(section.addr, res.data)  # RemoteProc.start: the negotiated copy over the loaded table
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
    return RprocImage(memory, res, section.addr, controls)


def rproc_image(run: Run, firmware: Path | None = None, break_mode: str = "") -> RprocImage:
    """:func:`rproc_load` of ``firmware`` (default: the run's) on the run's memory map, no registered carveouts."""
    image = rproc_load(run.layout, firmware or run.firmware, unfilled=break_mode == "no-zero-fill")
    # Linux's virtio_rpmsg_bus takes 2 * 64 buffers of 512 bytes (rpmsg_probe) from the vdev0buffer carveout.
    assert image.resources.vdevs[0].buffers_size == 2 * run.layout.vring_num * LINUX_BUFFER_SIZE
    return image


def table_entries(image: bytes, table_off: int) -> dict[int, int]:
    """type -> offset (in ``image``) of the first entry of that type in the table at ``table_off``."""
    _ver, num = struct.unpack_from("<II", image, table_off)
    offsets = struct.unpack_from(f"<{num}I", image, table_off + 16)
    found: dict[int, int] = {}
    for off in offsets:
        (kind,) = struct.unpack_from("<I", image, table_off + off)
        found.setdefault(kind, table_off + off)
    return found


def vdev_entry(image: bytes, table_off: int) -> int:
    """The offset (in ``image``) of the table's first vdev entry; AssertionError when it has none."""
    found = table_entries(image, table_off)
    if RSC_VDEV not in found:
        raise AssertionError("no vdev entry in the table")
    return found[RSC_VDEV]


def differences(run: Run, linux: bytes, ours: bytes) -> list[str]:
    """The device addresses (hex) in the firmware's part of the memory where ``linux`` and ``ours`` differ."""
    start, size = run.layout.firmware
    return [hex(run.layout.da(i)) for i in range(start, start + size) if linux[i] != ours[i]]
