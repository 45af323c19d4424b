"""Handling a firmware's resource table the way Linux's remoteproc core does, without I/O.

Order (Linux ``rproc_fw_boot`` / ``rproc_handle_resources``): work on a cached copy of the table; carveouts
with ``FW_RSC_ADDR_ANY`` are allocated from the platform's pool and ``pa``/``da``/``len`` written back (fixed
ones are checked against the memory map); devmem goes to the platform (refused where it cannot map it); trace
buffers are noted for reading; every vring gets memory and a notify id, counted from 0 across the table (the
firmware's values are ignored). The caller copies the resulting table over the loaded one right before start
and drives each vdev's status and features afterwards (:mod:`remoteproc.vdev`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from remoteproc.errors import RemoteprocError
from resource_table import (
    FW_RSC_ADDR_ANY,
    FW_RSC_ADDR_ANY64,
    Carveout,
    Devmem,
    Entry,
    RawEntry,
    ResourceTable,
    Span,
    Trace,
    Vdev,
    VendorEntry,
    vring_size,
    write_back,
)
from rpmsg.protocol import LINUX_BUFFER_SIZE
from transports.errors import AddressError
from transports.memory import RegionMemory

log = logging.getLogger(__name__)
ANY = (FW_RSC_ADDR_ANY, FW_RSC_ADDR_ANY64)
PAGE = 0x1000


class ResourceError(RemoteprocError):
    """A resource the platform cannot provide; names the entry."""


class Pool:
    """Free device memory for carveouts and vrings: a list of free ranges, first fit."""

    def __init__(self, ranges: list[tuple[int, int]]) -> None:
        self.free = sorted((s, e) for s, e in ranges if e > s)

    def reserve(self, start: int, size: int) -> None:
        end = start + size
        out = []
        for s, e in self.free:
            if e <= start or s >= end:
                out.append((s, e))
                continue
            if s < start:
                out.append((s, start))
            if e > end:
                out.append((end, e))
        self.free = out

    def allocate(self, size: int, align: int = PAGE) -> int:
        for s, e in self.free:
            start = (s + align - 1) // align * align
            if start + size <= e:
                self.reserve(start, size)
                return start
        largest = max((e - s for s, e in self.free), default=0)
        raise ResourceError(
            f"no {size:#x} bytes (aligned {align:#x}) left in the carveout pool; the largest "
            f"free range is {largest:#x} bytes"
        )


@dataclass(frozen=True)
class VringPlacement:
    da: int
    num: int
    align: int
    notifyid: int


@dataclass(frozen=True)
class VdevPlacement:
    index: int  # entry index in the table
    vdev: Vdev
    vrings: tuple[VringPlacement, ...]
    buffers_da: int
    buffers_size: int
    rx_size: int = LINUX_BUFFER_SIZE  # bytes per host receive buffer (the first half of the block)
    tx_size: int = LINUX_BUFFER_SIZE  # bytes per host send buffer (the second half)

    @property
    def buffers_per_direction(self) -> int:
        return self.buffers_size // (self.rx_size + self.tx_size)


@dataclass
class Resources:
    """What the table asked for, as placed. ``table``/``data``: the negotiated copy to write before start."""

    table: ResourceTable
    data: bytes
    spans: tuple[Span, ...]
    carveouts: list[Carveout] = field(default_factory=list)
    traces: list[Trace] = field(default_factory=list)
    vdevs: list[VdevPlacement] = field(default_factory=list)


def rpmsg_buffer_count(vdev: Vdev, most: int = 512) -> int:
    """How many rpmsg buffers Linux allocates for ``vdev`` (half for each direction): twice the size of vring 0
    when that is below ``most / 2``, else ``most`` (virtio_rpmsg_bus.c rpmsg_probe, MAX_RPMSG_NUM_BUFS = 512).
    Seen against Linux 6.1 by tests/conformance/linux/test_remoteproc_linux.py (64-entry vrings: 128)."""
    if not vdev.vrings:
        return most
    num = vdev.vrings[0].num
    return num * 2 if num < most // 2 else most


def handle_resources(
    data: bytes,
    table: ResourceTable,
    spans: tuple[Span, ...],
    memory: RegionMemory,
    pool: Pool,
    *,
    rpmsg_buffers: int = 512,  # the most per vdev (MAX_RPMSG_NUM_BUFS); fewer for small vrings, as Linux
    buffer_size: int = LINUX_BUFFER_SIZE,  # bytes per receive buffer (Linux: 512 both ways)
    tx_buffer_size: int | None = None,  # bytes per send buffer; None: as buffer_size
    devmem_ok: bool = False,
    vendor_hook: Callable[[int, VendorEntry | RawEntry], bool] | None = None,
) -> Resources:
    """Allocate and assign everything; returns the negotiated table. Each vdev's buffer block holds
    ``rpmsg_buffer_count / 2`` receive buffers of ``buffer_size`` then as many send buffers of
    ``tx_buffer_size`` (Linux: one size, 512)."""
    rx_size = buffer_size
    tx_size = buffer_size if tx_buffer_size is None else tx_buffer_size
    entries: list[Entry] = []
    # Fixed carveouts are claimed first, so that ANY allocations do not land on them.
    for e in table.entries:
        if isinstance(e, Carveout) and e.da not in ANY:
            pool.reserve(e.da, e.len)
    res = Resources(table=table, data=data, spans=spans)
    notifyid = 0
    placed: list[tuple[int, int, str]] = []  # every vring's memory so far: (da, end, "vring N of entry I")
    for index, entry in enumerate(table.entries):
        if isinstance(entry, Carveout):
            entry = _carveout(index, entry, memory, pool)
            res.carveouts.append(entry)
        elif isinstance(entry, Devmem):
            if not devmem_ok:
                raise ResourceError(
                    f"entry {index}: devmem {entry.name!r} at {entry.da:#x} cannot be mapped by this "
                    "platform (it has no IOMMU or device-register access)"
                )
        elif isinstance(entry, Trace):
            _check_inside(index, "trace", entry.da, entry.len, memory)
            res.traces.append(entry)
        elif isinstance(entry, Vdev):
            rings = []
            for n, ring in enumerate(entry.vrings):
                size = vring_size(ring.num, ring.align)
                da = pool.allocate(size, max(ring.align, PAGE)) if ring.da in ANY else ring.da
                _check_inside(index, f"vring {n}", da, size, memory)
                _check_apart(index, n, da, size, placed)
                rings.append(dataclasses.replace(ring, da=da, notifyid=notifyid))
                notifyid += 1
            entry = dataclasses.replace(entry, vrings=tuple(rings))
            buffers = rpmsg_buffer_count(entry, rpmsg_buffers) // 2 * (rx_size + tx_size)
            named = next((c for c in res.carveouts if c.name == f"vdev{len(res.vdevs)}buffer"), None)
            # Linux platforms give the vdev its "vdevNbuffer" memory region when the firmware declares one.
            if named is not None and named.len >= buffers:
                buffers_da = named.da
            else:
                if named is not None:
                    log.warning(
                        "entry %d: carveout %r holds %#x bytes, the rpmsg buffers need %#x (%d x %d B + %d x %d B): "
                        "placed in the carveout pool instead",
                        index,
                        named.name,
                        named.len,
                        buffers,
                        buffers // (rx_size + tx_size),
                        rx_size,
                        buffers // (rx_size + tx_size),
                        tx_size,
                    )
                try:
                    buffers_da = pool.allocate(buffers)
                except ResourceError as exc:
                    half = buffers // (rx_size + tx_size)
                    raise ResourceError(
                        f"entry {index}: vdev's rpmsg buffers, {half} x {rx_size} B to receive and {half} x "
                        f"{tx_size} B to send ({buffers:#x} bytes): {exc} (smaller buffers need less)"
                    ) from None
            res.vdevs.append(
                VdevPlacement(
                    index,
                    entry,
                    tuple(VringPlacement(r.da, r.num, r.align, r.notifyid) for r in rings),
                    buffers_da,
                    buffers,
                    rx_size,
                    tx_size,
                )
            )
        # Linux: the platform driver's handle_rsc() first; what it does not know is skipped with a warning.
        elif isinstance(entry, VendorEntry | RawEntry) and (vendor_hook is None or not vendor_hook(index, entry)):
            log.warning("entry %d: type %d is not handled by this platform; ignored, as Linux does", index, entry.type)
        entries.append(entry)
    res.table = dataclasses.replace(table, entries=tuple(entries))
    res.data = write_back(data, spans, res.table)
    return res


def _carveout(index: int, entry: Carveout, memory: RegionMemory, pool: Pool) -> Carveout:
    if entry.da in ANY:
        da = pool.allocate(entry.len)
        entry = dataclasses.replace(entry, da=da, pa=da)  # the sim maps device addresses 1:1
    elif entry.pa in ANY:
        entry = dataclasses.replace(entry, pa=entry.da)
    _check_inside(index, f"carveout {entry.name!r}", entry.da, entry.len, memory)
    return entry


def _check_apart(index: int, n: int, da: int, size: int, placed: list[tuple[int, int, str]]) -> None:
    """A vring must not share bytes with another: each side would overwrite the other's descriptors and
    indices (Linux refuses such a table through the platform's vring carveouts, rproc_check_carveout_da)."""
    for start, end, what in placed:
        if da < end and start < da + size:
            raise ResourceError(
                f"entry {index}: vring {n} at {da:#x}..{da + size:#x} overlaps {what} ({start:#x}..{end:#x})"
            )
    placed.append((da, da + size, f"vring {n} of entry {index}"))


def _check_inside(index: int, what: str, da: int, size: int, memory: RegionMemory) -> None:
    try:
        memory.locate(da, size)
    except AddressError:
        regions = ", ".join(f"{r.name} {r.da:#x}..{r.end:#x}" for r in memory.regions)
        raise ResourceError(
            f"entry {index}: {what} at {da:#x}..{da + size:#x} is outside the remote's memory ({regions})"
        ) from None
