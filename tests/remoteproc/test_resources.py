"""Resource handling details: vendor entries through a platform hook, the pool, and refusals."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from remoteproc.resources import Pool, Registered, ResourceError, Resources, handle_resources
from remoteproc.rproc import RemoteProc
from resource_table import (
    Carveout,
    Devmem,
    RawEntry,
    ResourceTable,
    Vdev,
    VendorEntry,
    Vring,
    build,
    build_with_spans,
    load_spec,
    parse,
)
from transports.doorbell import EventfdDoorbell
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
    (remoteproc/conformance/linux/mutation_corpus.py, vring-num-1024): vring 0 with 1024 entries (0x7006 bytes)
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


# ---- Linux's rules for carveouts, named carveouts and several vdevs (remoteproc_core.c, remoteproc_virtio.c) ----

ANY = 0xFFFFFFFF
POOL = (0x80000000, 0x80100000)


def handle(table: ResourceTable, **kwargs: object) -> Resources:
    data, spans = build_with_spans(table)
    return handle_resources(data, table, spans, memory(), Pool([POOL]), **kwargs)  # type: ignore[arg-type]


def test_carveout_pa_is_written_with_the_real_physical_address() -> None:
    """rproc_alloc_registered_carveouts writes rsc->pa (and da, len) for every carveout entry, whatever pa the
    firmware wrote: a fixed da with a made-up pa gets the real one (rproc kept the firmware's value)."""
    table = ResourceTable(
        entries=(
            Carveout(da=0x80010000, pa=0x1234, len=0x1000, name="fixed"),
            Carveout(da=ANY, pa=ANY, len=0x2000, name="any"),
        )
    )
    res = handle(table)
    assert [(c.da, c.pa, c.len) for c in res.carveouts] == [
        (0x80010000, 0x80010000, 0x1000),
        (0x80000000,) * 2 + (0x2000,),
    ]
    moved = handle(table, to_pa=lambda da: da - 0x80000000 + 0x4001000)  # da != pa (uml_rproc.da=)
    assert [(c.da, c.pa) for c in moved.carveouts] == [(0x80010000, 0x4011000), (0x80000000, 0x4001000)]
    assert parse(moved.data).entries[0] == moved.carveouts[0]  # written back into the table


def test_registered_carveouts_are_found_by_name() -> None:
    """A platform's carveout (rproc_add_carveout) gives a table carveout of its name its da, pa and len
    (rproc_handle_carveout + rproc_alloc_registered_carveouts), vdev 0 its vrings ("vdev0vring0/1",
    rproc_alloc_vring; rp_find_vq writes mem->da) and its rpmsg buffers ("vdev0buffer", rproc_add_virtio_dev)."""
    ring = Vring(align=0x1000, num=64)
    table = ResourceTable(
        entries=(
            Carveout(da=ANY, len=0x1000, name="fw-mem"),
            Vdev(id=7, dfeatures=1, vrings=(ring, dataclasses.replace(ring, da=0x80031000))),
        )
    )
    platform = [
        Registered("fw-mem", 0x80040000, 0x4000),
        Registered("vdev0vring0", 0x80020000, 0x2000),
        Registered("vdev0vring1", 0x80030000, 0x4000),  # the vring asks for 0x80031000 inside it
        Registered("vdev0buffer", 0x80080000, 0x20000, pa=0x4080000),
    ]
    res = handle(table, registered=platform)
    assert [(c.name, c.da, c.pa, c.len) for c in res.carveouts] == [("fw-mem", 0x80040000, 0x80040000, 0x4000)]
    [vdev] = res.vdevs
    assert [(r.da, r.notifyid) for r in vdev.vrings] == [(0x80020000, 0), (0x80030000, 1)]  # the carveout's da
    assert vdev.buffers_da == 0x80080000
    assert [r.da for r in parse(res.data).vdevs[0].vrings] == [0x80020000, 0x80030000]
    # rproc_check_carveout_da: the request must fit the registered carveout, in length and in da
    too_long = ResourceTable(entries=(Carveout(da=ANY, len=0x8000, name="fw-mem"),))
    with pytest.raises(
        ResourceError, match=r"entry 0: carveout 'fw-mem' needs 0x8000 bytes, the carveout .* has 0x4000"
    ):
        handle(too_long, registered=platform)
    elsewhere = ResourceTable(entries=(Carveout(da=0x80050000, len=0x1000, name="fw-mem"),))
    with pytest.raises(ResourceError, match=r"is not inside the carveout .*doesn't fit da request"):
        handle(elsewhere, registered=platform)
    twice = ResourceTable(entries=(Carveout(da=ANY, len=0x1000, name="fw-mem"),) * 2)
    with pytest.raises(ResourceError, match=r"entry 1: carveout 'fw-mem' is declared twice"):
        handle(twice, registered=platform)
    big_ring = ResourceTable(entries=(Vdev(id=7, vrings=(Vring(align=0x1000, num=256), ring)),))
    with pytest.raises(ResourceError, match=r"entry 0: vdev0vring0 needs 0x3000 bytes"):
        handle(big_ring, registered=platform)


def test_two_vdevs_take_their_own_named_carveouts_and_notify_ids_run_on() -> None:
    """Every vdev entry is a vdev of its own, numbered in table order (rproc_handle_vdev: rproc->nb_vdev++); its
    vrings and buffers are looked up as "vdevNvring0/1" and "vdevNbuffer", also among the table's own carveouts;
    notify ids come from one IDR from 0 across all of them (rproc_alloc_vring)."""
    ring = Vring(align=0x1000, num=16)
    table = ResourceTable(
        entries=(
            Carveout(da=0x80060000, len=0x2000, name="vdev1vring0"),
            Carveout(da=0x80062000, len=0x2000, name="vdev1vring1"),
            Carveout(da=ANY, len=0x4000, name="vdev1buffer"),
            Vdev(id=7, dfeatures=1, vrings=(ring, ring)),
            Vdev(id=7, dfeatures=1, vrings=(ring, ring)),
        )
    )
    res = handle(table)
    first, second = res.vdevs
    assert [r.notifyid for r in first.vrings + second.vrings] == [0, 1, 2, 3]
    assert [r.da for r in second.vrings] == [0x80060000, 0x80062000]
    assert second.buffers_da == res.carveouts[2].da
    assert first.buffers_da not in (second.buffers_da, *[r.da for r in first.vrings])
    assert [[r.notifyid for r in v.vrings] for v in parse(res.data).vdevs] == [[0, 1], [2, 3]]


@pytest.mark.parametrize(
    ("num", "size", "ok"), [(64, 0x10000, True), (64, 0xF000, False), (128, 0x20000, True), (128, 0x1F000, False)]
)
def test_buffer_carveout_too_small_is_refused(num: int, size: int, ok: bool) -> None:
    """The vdevNbuffer carveout becomes the vdev's only DMA pool (dma_declare_coherent_memory), which gives
    power-of-two page blocks and does not fall back (kernel/dma/coherent.c dma_alloc_from_dev_coherent). Too
    small, Linux's rpmsg_probe fails; rproc refuses (it took other memory before)."""
    ring = Vring(align=0x1000, num=num)
    table = ResourceTable(entries=(Vdev(id=7, vrings=(ring, ring)),))
    platform = [Registered("vdev0buffer", 0x80080000, size)]
    if ok:
        assert handle(table, registered=platform).vdevs[0].buffers_da == 0x80080000
    else:
        with pytest.raises(ResourceError, match=r"entry 0: vdev 0 needs 0x[0-9a-f]+ bytes of rpmsg buffers"):
            handle(table, registered=platform)


class _AttachPlatform:
    """Just enough of a platform for RemoteProc.attach: memory, a pool and a doorbell."""

    name = "attach-test"

    def __init__(self) -> None:
        self.memory = memory()
        self.doorbells = EventfdDoorbell.pair()

    def pool(self) -> Pool:
        return Pool([POOL])

    def connect(self, timeout: float = 10.0) -> EventfdDoorbell:
        return self.doorbells[0]

    def crashed(self) -> bool:
        return False

    def stop(self) -> None:
        pass

    def close(self) -> None:
        for side in self.doorbells:
            side.close()


def test_every_vdev_gets_linuxs_first_steps() -> None:
    """rproc serves the first rpmsg vdev; every other vdev gets what Linux gives a vdev no driver binds (reset,
    ACKNOWLEDGE: drivers/virtio/virtio.c register_virtio_device). rproc touched only the first vdev (status 0
    left in the others, as if no host were there)."""
    ring = Vring(align=0x1000, num=16)
    table = ResourceTable(
        entries=(
            Vdev(id=42, vrings=(ring,)),  # a virtio id no driver knows
            Vdev(id=7, dfeatures=1, vrings=(ring, ring)),
            Vdev(id=7, dfeatures=1, vrings=(ring, ring)),
        )
    )
    data = build(table)
    platform = _AttachPlatform()
    platform.memory.write(0x40000000, data)
    rp = RemoteProc(platform)  # type: ignore[arg-type]
    try:
        rp.attach(0x40000000, len(data))
        after = parse(platform.memory.read(0x40000000, len(data)))
        assert [v.status for v in after.vdevs] == [1, 7, 1]
        assert [[r.notifyid for r in v.vrings] for v in after.vdevs] == [[0], [1, 2], [3, 4]]
    finally:
        rp.detach()
        platform.close()


def test_detach_puts_back_the_table_the_remote_installed() -> None:
    """Linux's __rproc_detach (remoteproc_core.c, 6.1): rproc_stop_subdevices resets each vdev and acknowledges it
    again, then rproc_reset_rsc_table_on_detach copies the clean table (kept at attach) back over the live one,
    "clean and ready to be used again" at the next attach. rproc wrote status 0 and left its negotiated table
    (vring da, notify ids, gfeatures) in the remote's memory."""
    ring = Vring(align=0x1000, num=16)
    table = ResourceTable(entries=(Vdev(id=7, dfeatures=1, vrings=(ring, ring)),))
    data = build(table)
    platform = _AttachPlatform()
    platform.memory.write(0x40000000, data)
    rp = RemoteProc(platform)  # type: ignore[arg-type]
    try:
        rp.attach(0x40000000, len(data))
        assert parse(platform.memory.read(0x40000000, len(data))).vdevs[0].status == 7
        writes: list[int] = []
        for control in rp._vdevs:
            set_status = control.set_status
            control.set_status = lambda s, _set=set_status: (writes.append(s), _set(s))[1]  # type: ignore[method-assign]
        rp.detach()
        assert writes == [0, 1]  # the reset and the acknowledge of rproc_stop_subdevices, in that order
        assert platform.memory.read(0x40000000, len(data)) == data  # the table as the remote installed it
        rp.attach(0x40000000, len(data))  # and it attaches again from the clean table
        assert parse(platform.memory.read(0x40000000, len(data))).vdevs[0].status == 7
    finally:
        rp.detach()
        platform.close()
