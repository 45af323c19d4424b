"""parse/build against hand-packed bytes (struct.pack, independent of the construct schemas) and every error."""

from __future__ import annotations

import struct

import pytest

from resource_table import (
    FW_RSC_ADDR_ANY,
    BuildError,
    Carveout,
    CustomEntry,
    Devmem,
    Dialect,
    FwChksum,
    Intmem,
    ParseError,
    RawEntry,
    ResourceTable,
    RprocMem,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
    build,
    parse,
    parse_with_spans,
)


def name32(text: str) -> bytes:
    return text.encode().ljust(32, b"\0")


def table_v1(*entries: bytes, reserved: tuple[int, int] = (0, 0)) -> bytes:
    """A packed v1 table assembled by hand, the way `struct resource_table` lays it out."""
    header = struct.pack("<4I", 1, len(entries), *reserved)
    offsets = []
    pos = len(header) + 4 * len(entries)
    for e in entries:
        offsets.append(pos)
        pos += len(e)
    return header + struct.pack(f"<{len(entries)}I", *offsets) + b"".join(entries)


CARVEOUT = struct.pack("<6I", 0, 0x10000000, 0x20000000, 0x4000, 0x1, 0) + name32("text")
DEVMEM = struct.pack("<6I", 1, 0x40000000, 0x40000000, 0x1000, 0x3, 0) + name32("regs")
TRACE = struct.pack("<4I", 2, 0x20008000, 0x800, 0) + name32("trace0")
VDEV = (
    struct.pack("<6I4B", 3, 7, 4, 1, 0, 2, 0, 2, 0, 0)
    + struct.pack("<5I", 0x30000000, 0x1000, 64, 5, 0)
    + struct.pack("<5I", FW_RSC_ADDR_ANY, 0x1000, 64, 6, 0)
    + b"\xaa\xbb"
)


def test_entry_sizes_match_linux() -> None:
    assert (len(CARVEOUT), len(DEVMEM), len(TRACE), len(VDEV)) == (56, 56, 48, 28 + 2 * 20 + 2)


def test_parse_hand_packed_table() -> None:
    data = table_v1(CARVEOUT, DEVMEM, TRACE, VDEV)
    table, spans = parse_with_spans(data)
    assert table.entries == (
        Carveout(da=0x10000000, pa=0x20000000, len=0x4000, flags=1, name="text"),
        Devmem(da=0x40000000, pa=0x40000000, len=0x1000, flags=3, name="regs"),
        Trace(da=0x20008000, len=0x800, name="trace0"),
        Vdev(
            id=7,
            notifyid=4,
            dfeatures=1,
            vrings=(Vring(da=0x30000000, align=0x1000, num=64, notifyid=5), Vring(align=0x1000, num=64, notifyid=6)),
            config=b"\xaa\xbb",
        ),
    )
    assert [s.offset for s in spans] == [32, 88, 144, 192]
    assert [s.size for s in spans] == [56, 56, 48, 70]
    assert build(table) == data


def test_non_zero_reserved_fields_are_kept_for_validation() -> None:
    carveout = struct.pack("<6I", 0, 1, 2, 3, 4, 0x55) + name32("c")
    data = table_v1(carveout, reserved=(7, 9))
    table = parse(data)
    assert table.reserved == (7, 9)
    assert table.entries[0].reserved == 0x55  # type: ignore[union-attr]
    assert build(table) == data


def test_name_stops_at_nul_and_garbage_after_it_is_ignored() -> None:
    carveout = struct.pack("<6I", 0, 1, 2, 3, 0, 0) + b"buf\0garbage".ljust(32, b"\x11")
    assert parse(table_v1(carveout)).entries[0].name == "buf"  # type: ignore[union-attr]


def test_vendor_and_unknown_entries_reach_the_next_entry_and_round_trip() -> None:
    vendor = struct.pack("<I", 200) + b"0123456789"
    unknown = struct.pack("<I", 42) + b"xyz"
    data = table_v1(vendor, TRACE, unknown)
    table = parse(data)
    assert table.entries[0] == VendorEntry(type=200, data=b"0123456789")
    assert table.entries[2] == RawEntry(type=42, data=b"xyz")
    assert build(table) == data


def test_vendor_range_bounds_are_inclusive() -> None:
    kinds = [type(parse(table_v1(struct.pack("<I", t))).entries[0]) for t in (127, 128, 512, 513)]
    assert kinds == [RawEntry, VendorEntry, VendorEntry, RawEntry]


def test_openamp_vendor_header() -> None:
    entry = VendorEntry.openamp(130, b"\x01\x02\x03\x04")
    assert entry.len_field == 12
    assert parse(build(ResourceTable(entries=(entry,)))).entries[0] == entry
    assert VendorEntry(type=130, data=b"\x01").len_field is None


@pytest.mark.parametrize(
    ("dialect", "expected"),
    [
        (Dialect.LINUX, (RawEntry, RawEntry)),
        (Dialect.OPENAMP_LEGACY, (RprocMem, FwChksum)),
        (Dialect.TI, (Intmem, CustomEntry)),
    ],
)
def test_dialects_decide_types_4_and_5(dialect: Dialect, expected: tuple[type, type]) -> None:
    four = struct.pack("<7I", 4, 1, 0x1000, 0x2000, 0x100, 0, 0) + name32("mem")
    five = struct.pack("<3I", 5, 1, 80) + bytes(range(80))  # fits both FW_CHKSUM (84 B) and CUSTOM (12 + 80)
    data = table_v1(four, five)
    table = parse(data, dialect=dialect)
    assert tuple(type(e) for e in table.entries) == expected
    if dialect is not Dialect.OPENAMP_LEGACY:  # RSC_RPROC_MEM is 20 B: the rest of `four` is not its own
        assert build(table) == data


def test_old_openamp_entries() -> None:
    mem = struct.pack("<5I", 4, 0x1000, 0x2000, 0x300, 0)
    chk = struct.pack("<I", 5) + b"sha256".ljust(16, b"\0") + bytes(range(64))
    table = parse(table_v1(mem, chk), dialect=Dialect.OPENAMP_LEGACY)
    assert table.entries == (
        RprocMem(da=0x1000, pa=0x2000, len=0x300),
        FwChksum(algo="sha256", chksum=bytes(range(64))),
    )
    assert build(table) == table_v1(mem, chk)


# --- errors: each names where ---------------------------------------------------------------------------


def test_too_short_for_a_version_word() -> None:
    with pytest.raises(ParseError) as err:
        parse(b"\x01\x00")
    assert err.value.field == "ver"
    assert "needs 4" in str(err.value)


def test_unknown_version() -> None:
    with pytest.raises(ParseError) as err:
        parse(struct.pack("<4I", 3, 0, 0, 0))
    assert (err.value.field, err.value.offset) == ("ver", 0)
    assert "version 3" in str(err.value)


def test_header_truncated_names_the_field() -> None:
    with pytest.raises(ParseError) as err:
        parse(struct.pack("<2I", 1, 0))
    assert err.value.field == "reserved"


def test_num_larger_than_the_table() -> None:
    with pytest.raises(ParseError) as err:
        parse(struct.pack("<5I", 1, 1000, 0, 0, 20))
    assert (err.value.field, err.value.offset) == ("num", 4)
    assert "1000" in str(err.value)


def test_offset_past_the_end() -> None:
    data = bytearray(table_v1(TRACE, CARVEOUT))
    struct.pack_into("<I", data, 20, 0x1000)
    with pytest.raises(ParseError) as err:
        parse(bytes(data))
    assert (err.value.index, err.value.field, err.value.offset) == (1, "offset[1]", 20)
    assert "0x1000" in str(err.value)


def test_truncated_fixed_entry_names_the_first_missing_field() -> None:
    data = table_v1(CARVEOUT)[:-40]  # the entry at 20 keeps 16 of its 56 bytes: flags (at 20 + 16) is missing
    with pytest.raises(ParseError) as err:
        parse(data)
    assert (err.value.index, err.value.field, err.value.offset) == (0, "flags", 36)
    assert "carveout entry at 0x14 needs 56 bytes but the table ends at 0x24" in str(err.value)


def test_vdev_larger_than_the_table() -> None:
    data = table_v1(VDEV)[:-1]
    with pytest.raises(ParseError) as err:
        parse(data)
    assert (err.value.index, err.value.field) == (0, "config_len")
    assert "vdev needs 70 bytes" in str(err.value)


def test_vdev_vrings_past_the_end() -> None:
    vdev = bytearray(VDEV)
    vdev[25] = 200  # num_of_vrings
    with pytest.raises(ParseError) as err:
        parse(table_v1(bytes(vdev)))
    assert err.value.field == "num_of_vrings"


def test_huge_config_len_does_not_allocate() -> None:
    vdev = bytearray(VDEV)
    struct.pack_into("<I", vdev, 20, 0xFFFFFFFF)
    with pytest.raises(ParseError) as err:
        parse(table_v1(bytes(vdev)))
    assert err.value.field == "config_len"


def test_ti_custom_size_past_the_end() -> None:
    custom = struct.pack("<3I", 5, 1, 1000) + b"abc"
    with pytest.raises(ParseError) as err:
        parse(table_v1(custom), dialect=Dialect.TI)
    assert err.value.field == "rsc_size"


def test_build_refuses_values_that_do_not_fit() -> None:
    with pytest.raises(BuildError) as err:
        build(ResourceTable(entries=(Trace(da=0x1_0000_0000, len=1),)))
    assert (err.value.index, err.value.field) == (0, "da")
    with pytest.raises(BuildError) as err:
        build(ResourceTable(entries=(Trace(da=0, len=1), Carveout(da=0, len=1, name="x" * 33))))
    assert (err.value.index, err.value.field) == (1, "name")
    with pytest.raises(BuildError) as err:
        build(ResourceTable(entries=(VendorEntry(type=50, data=b""),)))
    assert err.value.field == "type"
    with pytest.raises(BuildError) as err:
        build(ResourceTable(entries=(Vdev(id=7, status=256),)))
    assert err.value.field == "status"
    with pytest.raises(BuildError):
        build(ResourceTable(entries=(Carveout(da=0, len=1, name="é€"),)))
    with pytest.raises(BuildError) as err:
        build(ResourceTable(entries=(Trace(da=-1, len=1),)))
    assert err.value.field == "da"
    with pytest.raises(BuildError):
        build(ResourceTable(version=7))


def test_build_alignment_must_be_a_power_of_two() -> None:
    with pytest.raises(BuildError):
        build(ResourceTable(entries=(Trace(da=0, len=1),)), align=3)
