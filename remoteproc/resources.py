"""Handling a firmware's resource table the way Linux's remoteproc core does, without I/O.

Order (Linux ``rproc_fw_boot`` / ``rproc_handle_resources``): work on a cached copy of the table; carveouts
the platform registered before boot (:class:`Registered`, Linux ``rproc_add_carveout``) are found by name,
checked against the entry (``rproc_check_carveout_da``) and their ``da``/``pa``/``len`` written back; other
carveouts with ``FW_RSC_ADDR_ANY`` are allocated from the platform's pool, fixed ones checked against the memory
map, and their real ``pa`` written back (``rproc_alloc_registered_carveouts``); devmem goes to the platform
(refused where it cannot map it: Linux refuses it without an IOMMU domain); trace buffers are noted for
reading; every vdev ``N`` (counted in table order) takes its vrings from carveouts named ``vdevNvring0/1`` and
its rpmsg buffers from ``vdevNbuffer`` when there are such, else from the pool; every vring gets a notify id,
counted from 0 across all vdevs (the firmware's values are ignored). The caller copies the resulting table over
the loaded one right before start and drives each vdev's status and features afterwards (:mod:`remoteproc.vdev`).
The rules and their kernel source lines: docs/remoteproc.md, "Resource handling".
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
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
class Registered:
    """A carveout the platform registers before boot, found by its name (Linux ``rproc_add_carveout``, as
    stm32_rproc/imx_rproc do from the device tree's memory-region): ``vdevNvring0``/``vdevNvring1`` hold vdev N's
    vrings, ``vdevNbuffer`` its rpmsg buffers, any other name a table carveout of that name. ``pa`` defaults to
    the platform's physical address of ``da``."""

    name: str
    da: int
    len: int
    pa: int | None = None


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
    registered: Sequence[Registered] = (),
    to_pa: Callable[[int], int] | None = None,
) -> Resources:
    """Allocate and assign everything; returns the negotiated table. Each vdev's buffer block holds
    ``rpmsg_buffer_count / 2`` receive buffers of ``buffer_size`` then as many send buffers of
    ``tx_buffer_size`` (Linux: one size, 512).

    ``registered``: the platform's named carveouts; ``to_pa``: the physical address the host sees at a device
    address (written into carveout entries' ``pa``; default: the same, memory shared 1:1)."""
    rx_size = buffer_size
    tx_size = buffer_size if tx_buffer_size is None else tx_buffer_size
    phys = to_pa or (lambda da: da)
    named: dict[str, _Named] = {r.name: _Named(r.da, r.len, phys(r.da) if r.pa is None else r.pa) for r in registered}
    entries: list[Entry] = []
    # Fixed carveouts and the registered ones are claimed first, so that ANY allocations do not land on them.
    for r in registered:
        pool.reserve(r.da, r.len)
    for e in table.entries:
        if isinstance(e, Carveout) and e.da not in ANY and e.name not in named:
            pool.reserve(e.da, e.len)
    res = Resources(table=table, data=data, spans=spans)
    notifyid = 0
    placed: list[tuple[int, int, str]] = []  # every vring's memory so far: (da, end, "vring N of entry I")
    for index, entry in enumerate(table.entries):
        if isinstance(entry, Carveout):
            entry = _carveout(index, entry, memory, pool, named, phys)
            res.carveouts.append(entry)
        elif isinstance(entry, Devmem):
            if not devmem_ok:
                # remoteproc_core.c rproc_handle_devmem: "no point in handling this resource without a valid
                # iommu domain" -> -EINVAL, and rproc_fw_boot fails ("Failed to process resources").
                raise ResourceError(
                    f"entry {index}: devmem {entry.name!r} at {entry.da:#x} cannot be mapped by this "
                    "platform (it has no IOMMU or device-register access; Linux refuses the firmware too "
                    "without an IOMMU domain)"
                )
        elif isinstance(entry, Trace):
            _check_inside(index, "trace", entry.da, entry.len, memory)
            res.traces.append(entry)
        elif isinstance(entry, Vdev):
            n_vdev = len(res.vdevs)
            rings = []
            for n, ring in enumerate(entry.vrings):
                size = vring_size(ring.num, ring.align)
                what = f"vdev{n_vdev}vring{n}"
                mem = named.get(what)
                if mem is not None:  # remoteproc_core.c rproc_alloc_vring: the platform's carveout, checked
                    _check_registered(index, what, mem, ring.da, _page_align(size))
                    da = mem.da  # remoteproc_virtio.c rp_find_vq: rsc->vring[id].da = mem->da
                else:
                    da = pool.allocate(size, max(ring.align, PAGE)) if ring.da in ANY else ring.da
                _check_inside(index, f"vring {n}", da, size, memory)
                _check_apart(index, n, da, size, placed)
                rings.append(dataclasses.replace(ring, da=da, notifyid=notifyid))
                notifyid += 1
            entry = dataclasses.replace(entry, vrings=tuple(rings))
            buffers = rpmsg_buffer_count(entry, rpmsg_buffers) // 2 * (rx_size + tx_size)
            half = buffers // (rx_size + tx_size)
            buffer_name = f"vdev{n_vdev}buffer"
            buffer_mem = named.get(buffer_name)
            if buffer_mem is not None and buffer_mem.len < _dma_pool_need(buffers):
                if any(r.name == buffer_name for r in registered):
                    # remoteproc_virtio.c rproc_add_virtio_dev makes the carveout the vdev's only DMA pool
                    # (dma_declare_coherent_memory), which hands out power-of-two page blocks and never falls
                    # back (kernel/dma/coherent.c dma_alloc_from_dev_coherent: "return 1" with NULL):
                    # rpmsg_probe's dma_alloc_coherent fails with -ENOMEM and the vdev gets no rpmsg device.
                    raise ResourceError(
                        f"entry {index}: vdev {n_vdev} needs {buffers:#x} bytes of rpmsg buffers "
                        f"({half} x {rx_size} B + {half} x {tx_size} B), a block of {_dma_pool_need(buffers):#x} "
                        f"in the DMA pool its carveout {buffer_name} makes; that carveout has {buffer_mem.len:#x}"
                    )
                # The firmware's own carveout, sized for other buffers than this host chose (Linux's are fixed,
                # 512 B): rproc places them in its pool and says so (docs/remoteproc.md).
                log.warning(
                    "entry %d: carveout %r holds %#x bytes, the rpmsg buffers need %#x (%d x %d B + %d x %d B): "
                    "placed in the carveout pool instead",
                    index,
                    buffer_name,
                    buffer_mem.len,
                    buffers,
                    half,
                    rx_size,
                    half,
                    tx_size,
                )
                buffer_mem = None
            if buffer_mem is not None:
                buffers_da = buffer_mem.da
            else:
                try:
                    buffers_da = pool.allocate(buffers)
                except ResourceError as exc:
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


@dataclass
class _Named:
    """A carveout found by name: registered by the platform, or an earlier table carveout."""

    da: int
    len: int
    pa: int
    taken: bool = False  # associated with a table entry already


def _dma_pool_need(size: int) -> int:
    """The bytes a device's coherent pool must have to give ``size`` (kernel/dma/coherent.c
    __dma_alloc_from_coherent: ``bitmap_find_free_region(..., get_order(size))``, a power of two of pages)."""
    pages = max(1, -(-size // PAGE))
    return PAGE << (pages - 1).bit_length()


def _page_align(size: int) -> int:
    return (size + PAGE - 1) // PAGE * PAGE


def _check_registered(index: int, what: str, mem: _Named, da: int, size: int) -> None:
    """remoteproc_core.c rproc_check_carveout_da: the request fits the registered carveout, in length and,
    unless ANY, in device address."""
    if size > mem.len:
        raise ResourceError(
            f"entry {index}: {what} needs {size:#x} bytes, the carveout {what} has {mem.len:#x} "
            '(Linux: "Registered carveout doesn\'t fit len request")'
        )
    if da not in ANY and not (mem.da <= da and da + size <= mem.da + mem.len):
        raise ResourceError(
            f"entry {index}: {what} at {da:#x}..{da + size:#x} is not inside the carveout {what} "
            f'({mem.da:#x}..{mem.da + mem.len:#x}; Linux: "Registered carveout doesn\'t fit da request")'
        )


def _carveout(
    index: int, entry: Carveout, memory: RegionMemory, pool: Pool, named: dict[str, _Named], phys: Callable[[int], int]
) -> Carveout:
    """Linux rproc_handle_carveout + rproc_alloc_registered_carveouts: a registered carveout of the entry's name
    gives da, pa and len (checked first); else ANY is allocated and a fixed da taken as it is; pa is always
    written, the real one."""
    mem = named.get(entry.name) if entry.name else None
    if mem is not None:
        if mem.taken:
            raise ResourceError(
                f'entry {index}: carveout {entry.name!r} is declared twice (Linux: "Carveout already associated '
                'to resource table")'
            )
        _check_registered(index, f"carveout {entry.name!r}", mem, entry.da, entry.len)
        mem.taken = True
        entry = dataclasses.replace(entry, da=mem.da, pa=mem.pa, len=mem.len)
    else:
        da = pool.allocate(entry.len) if entry.da in ANY else entry.da
        entry = dataclasses.replace(entry, da=da, pa=phys(da))
        if entry.name:
            named[entry.name] = _Named(entry.da, entry.len, entry.pa, taken=True)
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
