"""Memory maps as pictures: the diagram firmware engineers draw by hand, as SVG.

Addresses grow downwards. Each address interval between two region boundaries becomes a band whose height grows
with the logarithm of its size (a 1 MiB pool and a 6-byte avail ring both stay readable); unused stretches
between regions shrink to a short dashed gap. Regions that share addresses are put side by side in lanes. Where
that is by design (a segment holding the resource table, a carveout holding vrings: see :data:`CONTAINERS`) it
stays so; any other shared bytes are painted red with a red outline: an overlap is the first thing the eye finds.

This module only computes and formats (no I/O): :func:`plan` returns the geometry (which tests and other
renderers use), :func:`render_svg` the SVG text; the CLI writes the file.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from html import escape

from remoteproc.firmware import FirmwareInfo
from resource_table import Carveout, Devmem, Layout, Trace, Vdev, addr_any
from virtio.errors import LocalError
from virtio.layout import VringLayout, avail_size, desc_size, used_size

# fill colours by kind; OVERLAP marks shared bytes
COLOURS = {
    "segment": "#9ecae1",
    "bss": "#c6dbef",
    "carveout": "#a1d99b",
    "devmem": "#d9d9d9",
    "trace": "#fdd0a2",
    "table": "#fdae6b",
    "desc": "#bcbddc",
    "avail": "#9e9ac8",
    "used": "#807dba",
    "rx-buffers": "#c7e9c0",
    "tx-buffers": "#74c476",
    "window": "#f7f7f7",
}
DEFAULT_COLOUR = "#e0e0e0"
OVERLAP = "#e31a1c"

LEFT = 118  # the address column
LANE_WIDTH = 230
LANE_GAP = 8
MIN_BAND = 22.0
MAX_BAND = 90.0
GAP_BAND = 14.0
TOP = 40.0


@dataclass(frozen=True)
class MapRegion:
    """A named byte range to draw; ``kind`` picks the colour (see :data:`COLOURS`)."""

    name: str
    start: int
    size: int
    kind: str

    @property
    def end(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class Box:
    region: MapRegion
    lane: int
    x: float
    y: float
    width: float
    height: float
    fill: str


@dataclass(frozen=True)
class OverlapBox:
    start: int
    end: int
    names: tuple[str, ...]
    x: float
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class Drawing:
    boxes: tuple[Box, ...]
    overlaps: tuple[OverlapBox, ...]
    ticks: tuple[tuple[float, int], ...]  # (y, address) at every boundary
    width: float
    height: float

    def box(self, name: str) -> Box:
        return next(b for b in self.boxes if b.region.name == name)


# What holds other regions by design: a segment holds the resource table and the trace buffer, a carveout the
# vrings and buffers placed in it, the window everything. Such nesting is drawn side by side, not in red.
CONTAINERS = ("segment", "bss", "carveout", "devmem", "window")


def _nested(outer: MapRegion, inner: MapRegion) -> bool:
    return (
        outer.kind in CONTAINERS and outer.kind != inner.kind and outer.start <= inner.start and inner.end <= outer.end
    )


def _band_height(size: int) -> float:
    return max(MIN_BAND, min(MAX_BAND, 6.0 * math.log2(max(size, 1)) - 12.0))


def _lanes(regions: Sequence[MapRegion]) -> list[int]:
    """The first lane free at each region's start (interval colouring, by start address)."""
    lane_end: list[int] = []
    lanes = []
    for r in regions:
        for i, end in enumerate(lane_end):
            if end <= r.start:
                lane_end[i] = r.end
                lanes.append(i)
                break
        else:
            lane_end.append(r.end)
            lanes.append(len(lane_end) - 1)
    return lanes


def plan(regions: Iterable[MapRegion]) -> Drawing:
    """Where every region, overlap and address label goes."""
    regions = sorted(
        (r for r in regions if r.size > 0), key=lambda r: (r.start, -r.size, r.kind not in CONTAINERS, r.name)
    )
    if not regions:
        return Drawing((), (), (), LEFT + LANE_WIDTH + 20, TOP + 40)
    bounds = sorted({a for r in regions for a in (r.start, r.end)})
    y_of: dict[int, float] = {}
    y = TOP
    for lo, hi in zip(bounds, [*bounds[1:], bounds[-1]], strict=True):
        y_of[lo] = y
        if hi == lo:
            break
        covered = any(r.start <= lo and hi <= r.end for r in regions)
        y += _band_height(hi - lo) if covered else GAP_BAND
    lanes = _lanes(regions)
    boxes = tuple(
        Box(
            r,
            lane,
            LEFT + lane * (LANE_WIDTH + LANE_GAP),
            y_of[r.start],
            LANE_WIDTH,
            y_of[r.end] - y_of[r.start],
            COLOURS.get(r.kind, DEFAULT_COLOUR),
        )
        for r, lane in zip(regions, lanes, strict=True)
    )
    overlaps = []
    for i, a in enumerate(regions):
        for b in regions[i + 1 :]:
            lo, hi = max(a.start, b.start), min(a.end, b.end)
            if lo < hi and not _nested(a, b) and not _nested(b, a):
                la, lb = lanes[i], lanes[regions.index(b)]
                x0 = LEFT + min(la, lb) * (LANE_WIDTH + LANE_GAP)
                x1 = LEFT + max(la, lb) * (LANE_WIDTH + LANE_GAP) + LANE_WIDTH
                overlaps.append(OverlapBox(lo, hi, (a.name, b.name), x0, y_of[lo], x1 - x0, y_of[hi] - y_of[lo]))
    width = LEFT + (max(lanes) + 1) * (LANE_WIDTH + LANE_GAP) + 12
    return Drawing(boxes, tuple(overlaps), tuple((y_of[a], a) for a in bounds), width, y + 30)


def _size_text(size: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= scale and size % (scale // 16 or 1) == 0:
            return f"{size / scale:g} {unit}"
    return f"{size} B"


def render_svg(regions: Iterable[MapRegion], title: str = "memory map") -> str:
    """The memory map as an SVG document (text)."""
    d = plan(regions)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{d.width:.0f}" height="{d.height:.0f}" '
        f'viewBox="0 0 {d.width:.0f} {d.height:.0f}" font-family="DejaVu Sans Mono, monospace" font-size="11">',
        f'<rect x="0" y="0" width="{d.width:.0f}" height="{d.height:.0f}" fill="#ffffff"/>',
        f'<text x="8" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
    ]
    for y, addr in d.ticks:
        out.append(f'<line x1="{LEFT - 6}" y1="{y:.1f}" x2="{d.width - 4:.0f}" y2="{y:.1f}" stroke="#dddddd"/>')
        out.append(f'<text x="{LEFT - 8}" y="{y + 4:.1f}" text-anchor="end">{addr:#010x}</text>')
    for b in d.boxes:
        r = b.region
        out.append(
            f'<rect class="region" data-name="{escape(r.name)}" data-start="{r.start:#x}" data-size="{r.size:#x}" '
            f'x="{b.x:.1f}" y="{b.y:.1f}" width="{b.width:.1f}" height="{b.height:.1f}" fill="{b.fill}" '
            f'stroke="#444444"/>'
        )
        label = f"{r.name}  {_size_text(r.size)}"
        if b.height >= 24:
            out.append(f'<text x="{b.x + 6:.1f}" y="{b.y + 14:.1f}">{escape(label)}</text>')
            out.append(
                f'<text x="{b.x + 6:.1f}" y="{b.y + 26:.1f}" fill="#333333" font-size="9">'
                f"{r.start:#x} .. {r.end:#x}</text>"
                if b.height >= 30
                else ""
            )
        else:
            out.append(f'<text x="{b.x + 6:.1f}" y="{b.y + b.height / 2 + 4:.1f}">{escape(label)}</text>')
    for o in d.overlaps:
        out.append(
            f'<rect class="overlap" data-names="{escape(",".join(o.names))}" x="{o.x:.1f}" y="{o.y:.1f}" '
            f'width="{o.width:.1f}" height="{o.height:.1f}" fill="{OVERLAP}" fill-opacity="0.85" stroke="{OVERLAP}" '
            f'stroke-width="2"/>'
        )
        out.append(
            f'<text x="{o.x + 6:.1f}" y="{o.y + min(o.height, 20) / 2 + 4:.1f}" fill="#ffffff" font-weight="bold">'
            f"overlap {escape(' / '.join(o.names))}</text>"
        )
    out.append("</svg>")
    return "\n".join(line for line in out if line) + "\n"


def layout_regions(layout: Layout, window: tuple[int, int] | None = None) -> list[MapRegion]:
    """A computed rpmsg layout: each vring as its desc / avail / used parts, the two buffer pools, the window."""
    regions = []
    for i, ring in enumerate(layout.vrings):
        regions.extend(vring_regions(f"vring{i}", ring.start, layout.vring_num, layout.vring_align))
    regions.append(MapRegion("rx-buffers", layout.rx_buffers.start, layout.rx_buffers.size, "rx-buffers"))
    regions.append(MapRegion("tx-buffers", layout.tx_buffers.start, layout.tx_buffers.size, "tx-buffers"))
    if window is not None:
        regions.append(MapRegion("window", window[0], window[1], "window"))
    return regions


def vring_regions(name: str, da: int, num: int, align: int) -> list[MapRegion]:
    """One legacy vring at ``da`` as its three parts (Linux vring_init: desc, avail right after, used aligned)."""
    ring = VringLayout.legacy(da, num, align)
    return [
        MapRegion(f"{name}.desc", ring.desc, desc_size(num), "desc"),
        MapRegion(f"{name}.avail", ring.avail, avail_size(num), "avail"),
        MapRegion(f"{name}.used", ring.used, used_size(num), "used"),
    ]


def firmware_regions(info: FirmwareInfo) -> list[MapRegion]:
    """What a firmware file places: loadable segments (file bytes, then the zero-filled rest), its resource
    table, and the resources with fixed device addresses (carveouts, devmem, trace, vrings)."""
    regions = []
    for seg in info.elf.segments:
        if not seg.loadable or seg.memsz == 0:
            continue
        name = f"segment {seg.index} {seg.flags_text}"
        if seg.filesz:
            regions.append(MapRegion(name, seg.paddr, min(seg.filesz, seg.memsz), "segment"))
        if seg.memsz > seg.filesz:
            regions.append(MapRegion(f"{name} zero-fill", seg.paddr + seg.filesz, seg.memsz - seg.filesz, "bss"))
    if info.elf.resource_table is not None:
        rt = info.elf.resource_table
        regions.append(MapRegion(".resource_table", rt.addr, rt.size, "table"))
    if info.table is None:
        return regions
    any_addr = addr_any(info.table.version)
    for entry in info.table.entries:
        if isinstance(entry, Carveout | Devmem | Trace) and entry.da != any_addr:
            size = entry.len
            regions.append(MapRegion(entry.name or entry.kind, entry.da, size, entry.kind))
        elif isinstance(entry, Vdev):
            for n, ring in enumerate(entry.vrings):
                if ring.da == any_addr:
                    continue
                try:
                    regions.extend(vring_regions(f"vdev{entry.id}.vring{n}", ring.da, ring.num, ring.align))
                except LocalError:  # num or align not a power of two: rsc check reports it; nothing to draw
                    continue
    return regions
