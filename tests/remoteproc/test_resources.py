"""Resource handling details: vendor entries through a platform hook, the pool, and refusals."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from remoteproc.resources import Pool, ResourceError, handle_resources
from resource_table import (
    Carveout,
    Devmem,
    RawEntry,
    ResourceTable,
    Vdev,
    VendorEntry,
    Vring,
    build_with_spans,
    load_spec,
)
from transports.memory import MappedRegion, RegionMemory

GOLDEN = Path(__file__).resolve().parents[1] / "resource_table" / "golden"


def memory() -> RegionMemory:
    return RegionMemory(
        [
            MappedRegion("ram", 0x40000000, 0x10000, bytearray(0x10000)),
            MappedRegion("pool", 0x80000000, 0x100000, bytearray(0x100000)),
        ]
    )


def test_vendor_entries_go_to_the_platform_hook(caplog: pytest.LogCaptureFixture) -> None:
    table = ResourceTable(
        entries=(VendorEntry(type=130, data=b"\x01"), VendorEntry(type=200, data=b""), RawEntry(type=9, data=b""))
    )
    data, spans = build_with_spans(table)
    seen: list[tuple[int, int]] = []

    def hook(index: int, entry: VendorEntry | RawEntry) -> bool:
        seen.append((index, entry.type))
        return entry.type == 130  # this platform knows type 130 only

    with caplog.at_level(logging.WARNING):
        handle_resources(data, table, spans, memory(), Pool([(0x80000000, 0x80100000)]), vendor_hook=hook)
    assert seen == [(0, 130), (1, 200), (2, 9)]
    warned = [r.getMessage() for r in caplog.records]
    assert warned == [
        "entry 1: type 200 is not handled by this platform; ignored, as Linux does",
        "entry 2: type 9 is not handled by this platform; ignored, as Linux does",
    ]


def test_carveouts_allocated_and_checked() -> None:
    spec = load_spec(GOLDEN / "openamp_rpmsg.toml")
    fixed = ResourceTable(
        entries=(
            Carveout(da=0x80010000, pa=0x80010000, len=0x1000, name="fixed"),
            Carveout(da=0xFFFFFFFF, len=0x2000, name="any"),
        )
    )
    data, spans = build_with_spans(fixed)
    res = handle_resources(data, fixed, spans, memory(), Pool([(0x80000000, 0x80100000)]))
    assert [(c.name, c.da) for c in res.carveouts] == [("fixed", 0x80010000), ("any", 0x80000000)]
    outside = ResourceTable(entries=(Carveout(da=0x90000000, pa=0, len=0x1000, name="far"),))
    data, spans = build_with_spans(outside)
    with pytest.raises(ResourceError, match=r"entry 0: carveout 'far' at 0x90000000..0x90001000 is outside"):
        handle_resources(data, outside, spans, memory(), Pool([(0x80000000, 0x80100000)]))
    devmem = ResourceTable(entries=(Devmem(da=0x40000000, pa=0x40000000, len=0x100, name="regs"),))
    data, spans = build_with_spans(devmem)
    with pytest.raises(ResourceError, match="devmem 'regs' at 0x40000000 cannot be mapped by this platform"):
        handle_resources(data, devmem, spans, memory(), Pool([]))
    vdev_only = ResourceTable(entries=spec.vdevs)  # two vrings of 256 entries need 2 x 0x3000 of pool
    data, spans = build_with_spans(vdev_only)
    with pytest.raises(ResourceError, match=r"no 0x2806 bytes \(aligned 0x1000\) left in the carveout pool"):
        handle_resources(data, vdev_only, spans, memory(), Pool([(0x80000000, 0x80001000)]))


@pytest.mark.parametrize(("num", "buffers"), [(16, 32), (64, 128), (128, 256), (256, 512), (1024, 512)])
def test_rpmsg_buffers_as_many_as_linux_allocates(num: int, buffers: int) -> None:
    """virtio_rpmsg_bus.c rpmsg_probe: twice vring 0's size below 256 entries, else 512 (MAX_RPMSG_NUM_BUFS)."""
    vring = Vring(align=0x1000, num=num)
    table = ResourceTable(entries=(Vdev(id=7, dfeatures=1, vrings=(vring, vring)),))
    data, spans = build_with_spans(table)
    res = handle_resources(data, table, spans, memory(), Pool([(0x80000000, 0x80100000)]))
    assert res.vdevs[0].buffers_size == buffers * 512


def test_fixed_vrings_that_overlap_are_refused() -> None:
    """Two vrings in the same bytes would corrupt each other's descriptors. Seen with the mutation corpus
    (remoteproc/conformance/linux/rsc_mutations.py, vring-num-1024): vring 0 with 1024 entries (0x7006 bytes)
    at 0x80000000 runs over vring 1 at 0x80002000; Linux refused it (on uml_rproc: "Registered carveout doesn't
    fit len request"), rproc's loader placed both."""
    rings = (Vring(da=0x80000000, align=0x1000, num=1024), Vring(da=0x80002000, align=0x1000, num=64))
    table = ResourceTable(entries=(Vdev(id=7, dfeatures=1, vrings=rings),))
    data, spans = build_with_spans(table)
    with pytest.raises(
        ResourceError,
        match=r"entry 0: vring 1 at 0x80002000..0x80003206 overlaps vring 0 of entry 0 "
        r"\(0x80000000..0x80007006\)",
    ):
        handle_resources(data, table, spans, memory(), Pool([(0x80010000, 0x80100000)]))
    apart = (rings[0], Vring(da=0x80008000, align=0x1000, num=64))  # side by side: fine
    table = ResourceTable(entries=(Vdev(id=7, dfeatures=1, vrings=apart),))
    data, spans = build_with_spans(table)
    res = handle_resources(data, table, spans, memory(), Pool([(0x80010000, 0x80100000)]))
    assert [r.da for r in res.vdevs[0].vrings] == [0x80000000, 0x80008000]
