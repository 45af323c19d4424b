"""Where vrings and rpmsg buffers go in shared memory: compute a layout, or check one a user wrote.

Sizes follow Linux's ``vring_size()`` (include/uapi/linux/virtio_ring.h): the descriptor table (16 B each) and the
avail ring (flags, idx, ring[num], used_event) are followed, at the next ``align`` boundary, by the used ring
(flags, idx, ring[num] of 8 B, avail_event)::

    size = ALIGN(16 * num + 2 * (3 + num), align) + 2 * 3 + 8 * num

Buffers follow Linux's virtio_rpmsg_bus.c: one pool, the first half receives (posted to vring 0, remote -> host),
the second half sends (vring 1). Linux uses ``min(2 * num, 512)`` buffers of 512 bytes; rproc lets each direction
have its own count and size, as OpenAMP does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from resource_table.errors import ResourceTableError
from resource_table.findings import Finding, Severity
from resource_table.model import Carveout, Vring
from resource_table.validate import MAX_VRING_NUM

RPMSG_HEADER_SIZE = 16
DEFAULT_BUFFER_SIZE = 512  # Linux's fixed rpmsg buffer (virtio_rpmsg_bus.c MAX_RPMSG_BUF_SIZE); rproc: per direction
LINUX_MAX_BUFFERS = 512
MAX_VRINGS = 255  # fw_rsc_vdev.num_of_vrings is a u8


def align_up(value: int, align: int) -> int:
    return (value + align - 1) // align * align


def vring_size(num: int, align: int) -> int:
    """Bytes one split vring of ``num`` entries takes with the used ring aligned to ``align``."""
    _require_power_of_two(num, "num")
    _require_power_of_two(align, "align")
    return align_up(16 * num + 2 * (3 + num), align) + 2 * 3 + 8 * num


def _require_power_of_two(value: int, name: str) -> None:
    if value <= 0 or value & (value - 1):
        raise ResourceTableError(f"{value} is not a power of two", field=name)


@dataclass(frozen=True)
class Region:
    """A named byte range of device addresses. ``align`` is the alignment its start needs."""

    name: str
    start: int
    size: int
    align: int = 1

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class Layout:
    """A computed layout; every region is in device addresses."""

    base: int
    vring_num: int
    vring_align: int
    vrings: tuple[Region, ...]
    rx_buffers: Region
    tx_buffers: Region
    rx_count: int
    rx_size: int
    tx_count: int
    tx_size: int

    @property
    def regions(self) -> tuple[Region, ...]:
        return (*self.vrings, self.rx_buffers, self.tx_buffers)

    @property
    def end(self) -> int:
        return max(r.end for r in self.regions)

    @property
    def total(self) -> int:
        """Bytes from ``base`` to the end of the last region."""
        return self.end - self.base

    def buffer_carveout(self, vdev: int = 0) -> Carveout:
        """The resource-table carveout for this layout's buffer block (both pools), named ``vdev<N>buffer`` as
        Linux platforms name the vdev's buffer region: a host (Linux's platforms, ``rproc load``) places the
        buffers there when it is large enough for its buffer sizes, so a table made for big buffers says so."""
        start = self.rx_buffers.start
        return Carveout(da=start, pa=start, len=self.tx_buffers.end - start, name=f"vdev{vdev}buffer")

    def vring_entries(self, first_notifyid: int = 0) -> tuple[Vring, ...]:
        """The vdev's vring entries for this layout (notify ids numbered from ``first_notifyid``, as Linux does)."""
        return tuple(
            Vring(da=r.start, align=self.vring_align, num=self.vring_num, notifyid=first_notifyid + n)
            for n, r in enumerate(self.vrings)
        )


def plan_layout(
    *,
    base: int,
    vring_num: int = 256,
    vring_align: int = 0x1000,
    vring_count: int = 2,
    rx_count: int | None = None,
    tx_count: int | None = None,
    rx_size: int = DEFAULT_BUFFER_SIZE,
    tx_size: int = DEFAULT_BUFFER_SIZE,
    buffer_align: int = 64,
) -> Layout:
    """Place ``vring_count`` vrings from ``base``, then the RX and TX buffer pools.

    Counts default to Linux's: ``min(2 * vring_num, 512) / 2`` per direction. RX is the host's receive direction
    (vring 0, remote -> host).
    """
    if not 1 <= vring_count <= MAX_VRINGS:
        raise ResourceTableError(
            f"vring_count {vring_count} must be 1 to {MAX_VRINGS} (num_of_vrings is a u8 in the vdev entry)",
            field="vring_count",
        )
    if base < 0:
        raise ResourceTableError(f"base {base} is negative", field="base")
    if vring_num > MAX_VRING_NUM:
        raise ResourceTableError(
            f"{vring_num} entries: a vring has at most {MAX_VRING_NUM} (virtio 1.x 2.7, Queue Size)", field="num"
        )
    half = min(2 * vring_num, LINUX_MAX_BUFFERS) // 2
    rx_count = half if rx_count is None else rx_count
    tx_count = half if tx_count is None else tx_count
    for name, count in (("rx_count", rx_count), ("tx_count", tx_count)):
        if count < 0:
            raise ResourceTableError(f"{count} buffers: a count cannot be negative", field=name)
    for name, size in (("rx_size", rx_size), ("tx_size", tx_size)):
        if size <= RPMSG_HEADER_SIZE:
            raise ResourceTableError(
                f"{size} bytes leave no room for a payload after the {RPMSG_HEADER_SIZE}-byte rpmsg header",
                field=name,
            )
    if rx_count > vring_num:
        raise ResourceTableError(
            f"{rx_count} RX buffers cannot all be posted to a vring of {vring_num} entries", field="rx_count"
        )
    _require_power_of_two(buffer_align, "buffer_align")
    one = vring_size(vring_num, vring_align)
    pos = align_up(base, vring_align)
    vrings = []
    for n in range(vring_count):
        vrings.append(Region(f"vring{n}", pos, one, vring_align))
        pos = align_up(pos + one, vring_align)
    pos = align_up(vrings[-1].end, buffer_align)
    rx = Region("rx-buffers", pos, rx_count * rx_size, buffer_align)
    tx = Region("tx-buffers", align_up(rx.end, buffer_align), tx_count * tx_size, buffer_align)
    return Layout(
        base=base,
        vring_num=vring_num,
        vring_align=vring_align,
        vrings=tuple(vrings),
        rx_buffers=rx,
        tx_buffers=tx,
        rx_count=rx_count,
        rx_size=rx_size,
        tx_count=tx_count,
        tx_size=tx_size,
    )


def check_regions(regions: Sequence[Region], *, window: Region | None = None) -> list[Finding]:
    """Overlaps, misaligned starts and regions outside ``window`` (the shared memory), as ERROR findings."""
    findings: list[Finding] = []

    def error(message: str) -> None:
        findings.append(Finding(severity=Severity.ERROR, message=message))

    for r in regions:
        if r.size <= 0:
            error(f"{r.name}: size {r.size} is not positive")
        if r.align > 1 and r.start % r.align:
            error(f"{r.name}: start {r.start:#x} is not aligned to {r.align:#x}")
        if window is not None and (r.start < window.start or r.end > window.end):
            error(f"{r.name}: {r.start:#x}..{r.end:#x} is outside {window.name} ({window.start:#x}..{window.end:#x})")
    ordered = sorted(regions, key=lambda r: r.start)
    for a, b in pairwise(ordered):
        if a.end > b.start:
            error(f"{a.name} ({a.start:#x}..{a.end:#x}) overlaps {b.name} ({b.start:#x}..{b.end:#x})")
    return findings
