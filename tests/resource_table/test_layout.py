"""The layout calculator against Linux's vring_size() and OpenAMP's fixed layout."""

from __future__ import annotations

import pytest

from resource_table import Region, ResourceTableError, check_regions, plan_layout, vring_size


@pytest.mark.parametrize(
    ("num", "align", "size"),
    [
        (256, 0x1000, 10246),  # ALIGN(4096 + 518, 4096) = 8192, + 6 + 2048
        (64, 16, 1686),  # ALIGN(1024 + 134, 16) = 1168, + 6 + 512
        (1, 4, 38),  # ALIGN(16 + 8, 4) = 24, + 6 + 8
    ],
)
def test_vring_size_matches_linux_formula(num: int, align: int, size: int) -> None:
    assert vring_size(num, align) == size


def test_openamp_demo_layout_fits_its_fixed_addresses() -> None:
    """OpenAMP's Linux demo puts vrings at 0x4000 and 0x8000 (num 256, align 0x1000): each fits in 0x4000."""
    assert vring_size(256, 0x1000) <= 0x4000
    regions = [
        Region("vring0", 0x4000, vring_size(256, 0x1000), 0x1000),
        Region("vring1", 0x8000, vring_size(256, 0x1000), 0x1000),
        Region("buffers", 0x10000, 512 * 512),
    ]
    assert check_regions(regions, window=Region("shm", 0, 0x80000)) == []


def test_plan_defaults_follow_linux() -> None:
    layout = plan_layout(base=0x80000000)
    assert (layout.rx_count, layout.tx_count, layout.rx_size) == (256, 256, 512)
    assert [r.start for r in layout.vrings] == [0x80000000, 0x80003000]
    assert layout.rx_buffers.start >= layout.vrings[1].end
    assert layout.tx_buffers.start == layout.rx_buffers.end
    assert layout.total == layout.tx_buffers.end - 0x80000000
    assert check_regions(layout.regions) == []
    small = plan_layout(base=0, vring_num=16)
    assert small.rx_count == 16  # min(2 * 16, 512) / 2
    rings = layout.vring_entries()
    assert [(v.da, v.notifyid, v.num) for v in rings] == [(0x80000000, 0, 256), (0x80003000, 1, 256)]


def test_plan_per_direction_sizes_and_unaligned_base() -> None:
    layout = plan_layout(base=0x100, vring_num=32, vring_align=64, rx_count=8, tx_count=32, rx_size=2048, tx_size=256)
    assert layout.vrings[0].start == 0x100
    assert layout.rx_buffers.size == 8 * 2048 and layout.tx_buffers.size == 32 * 256
    assert check_regions(layout.regions) == []


def test_plan_refuses_what_cannot_work() -> None:
    with pytest.raises(ResourceTableError) as err:
        plan_layout(base=0, vring_num=100)
    assert err.value.field == "num"
    with pytest.raises(ResourceTableError) as err:
        plan_layout(base=0, rx_size=16)
    assert err.value.field == "rx_size"
    with pytest.raises(ResourceTableError) as err:
        plan_layout(base=0, vring_num=8, rx_count=9)
    assert err.value.field == "rx_count"


@pytest.mark.parametrize(
    ("kwargs", "field", "words"),
    [
        ({"base": -1}, "base", "base -1 is negative"),
        ({"vring_num": 65536}, "num", "a vring has at most 32768"),
        ({"vring_count": 100_000_000}, "vring_count", "must be 1 to 255"),  # before: planned ring by ring
        ({"rx_count": -5}, "rx_count", "cannot be negative"),
        ({"tx_count": -1}, "tx_count", "cannot be negative"),
    ],
)
def test_plan_refuses_values_no_vdev_can_hold(kwargs: dict[str, int], field: str, words: str) -> None:
    with pytest.raises(ResourceTableError, match=words) as err:
        plan_layout(**{"base": 0x80000000, **kwargs})
    assert err.value.field == field


def test_check_regions_finds_overlap_misalignment_and_outside() -> None:
    found = check_regions(
        [Region("a", 0x1000, 0x100, 0x1000), Region("b", 0x10F0, 0x20), Region("c", 0x2001, 8, 4)],
        window=Region("win", 0x1000, 0x1000),
    )
    messages = " | ".join(f.message for f in found)
    assert "a (0x1000..0x1100) overlaps b" in messages
    assert "c: start 0x2001 is not aligned to 0x4" in messages
    assert "c: 0x2001..0x2009 is outside win" in messages


def test_plan_big_buffers_per_direction() -> None:
    """64 KiB send buffers, 4 KiB receive buffers (docs/layout.md, "Big buffers"): the pools grow, the vrings not."""
    layout = plan_layout(base=0x80100000, vring_num=64, rx_size=4096, tx_size=0x10000)
    assert (layout.rx_count, layout.tx_count) == (64, 64)
    assert (layout.rx_buffers.start, layout.rx_buffers.size) == (0x80103240, 64 * 4096)
    assert (layout.tx_buffers.start, layout.tx_buffers.size) == (0x80143240, 64 * 0x10000)
    assert layout.total == 0x443240
    carveout = layout.buffer_carveout()  # what the firmware's table declares for the block
    assert (carveout.name, carveout.da, carveout.len) == ("vdev0buffer", 0x80103240, 64 * 4096 + 64 * 0x10000)
    too_big = plan_layout(base=0x80100000, vring_num=256, rx_size=0x10000, tx_size=0x10000)
    findings = check_regions(too_big.regions, window=Region("window", 0x80100000, 1 << 24))
    assert [f.message.split(":")[0] for f in findings] == ["rx-buffers", "tx-buffers"]
