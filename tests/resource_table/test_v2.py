"""Version 2 (64-bit) tables: layout, errors, and conversion to and from version 1."""

from __future__ import annotations

import struct

import pytest

from resource_table import (
    FW_RSC_ADDR_ANY,
    FW_RSC_ADDR_ANY64,
    Carveout,
    Dialect,
    FwChksum,
    ParseError,
    RawEntry,
    ResourceTable,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
    build,
    parse,
    parse_with_spans,
    to_v1,
    to_v2,
)
from resource_table.convert import ConversionError

V1 = ResourceTable(
    entries=(
        Carveout(da=FW_RSC_ADDR_ANY, len=0x1000, name="pool"),
        Trace(da=0x2000, len=0x100, name="log"),
        Vdev(id=7, dfeatures=1, vrings=(Vring(align=16, num=8), Vring(da=0x3000, align=16, num=8)), config=b"abc"),
        VendorEntry(type=300, data=b"\x01\x02"),
        RawEntry(type=77, data=b"\x09"),
    )
)


def test_v1_to_v2_is_lossless_and_back_is_identical() -> None:
    v2 = to_v2(V1)
    assert v2.version == 2
    assert v2.entries[0].da == FW_RSC_ADDR_ANY64  # type: ignore[union-attr]
    assert v2.vdevs[0].vrings[0].da == FW_RSC_ADDR_ANY64
    assert v2.vdevs[0].vrings[1].da == 0x3000
    assert v2.entries[3].optional and v2.entries[4].optional  # Linux skips unknown ones: optional in v2
    assert not v2.entries[0].optional
    assert parse(build(v2)) == v2
    assert to_v1(parse(build(v2))) == V1
    assert build(to_v1(v2)) == build(V1)


def test_v2_layout_header_size_and_alignment() -> None:
    (data,) = (build(to_v2(V1)),)
    ver, num, size, reserved = struct.unpack_from("<4I", data)
    assert (ver, num, size, reserved) == (2, 5, len(data), 0)
    _, spans = parse_with_spans(data)
    assert all(s.offset % 8 == 0 for s in spans)
    first = spans[0].offset
    assert struct.unpack_from("<4I", data, first) == (0, 16 + 64, 0, 0)  # carveout: header + 64-byte body
    assert len(data) % 8 == 0


def test_v2_to_v1_names_the_entry_that_does_not_fit() -> None:
    wide = ResourceTable(version=2, entries=(Trace(da=0x10, len=1), Carveout(da=0x1_0000_0000, len=1)))
    with pytest.raises(ConversionError) as err:
        to_v1(wide)
    assert (err.value.index, err.value.field) == (1, "da")
    vring = ResourceTable(version=2, entries=(Vdev(id=7, vrings=(Vring(da=1 << 40, align=16, num=8),)),))
    with pytest.raises(ConversionError) as err:
        to_v1(vring)
    assert err.value.field == "vring[0].da"
    features = ResourceTable(version=2, entries=(Vdev(id=7, dfeatures=1 << 32),))
    with pytest.raises(ConversionError) as err:
        to_v1(features)
    assert err.value.field == "dfeatures"


def test_v1_header_reserved0_cannot_convert() -> None:
    with pytest.raises(ConversionError) as err:
        to_v2(ResourceTable(reserved=(1, 0)))
    assert err.value.field == "reserved[0]"


def test_dialect_entries_keep_their_v1_body_in_v2() -> None:
    table = ResourceTable(version=2, entries=(FwChksum(algo="crc32", chksum=bytes(64)),))
    assert parse(build(table), dialect=Dialect.OPENAMP_LEGACY) == table


def _v2_with_one_trace() -> bytearray:
    return bytearray(build(ResourceTable(version=2, entries=(Trace(da=1, len=2),))))


def test_v2_size_larger_than_data() -> None:
    data = _v2_with_one_trace()
    struct.pack_into("<I", data, 8, len(data) + 8)
    with pytest.raises(ParseError) as err:
        parse(bytes(data))
    assert (err.value.field, err.value.offset) == ("size", 8)


def test_v2_entry_len_past_size() -> None:
    data = _v2_with_one_trace()
    struct.pack_into("<I", data, 24 + 4, 0x1000)
    with pytest.raises(ParseError) as err:
        parse(bytes(data))
    assert (err.value.index, err.value.field) == (0, "len")


def test_v2_unknown_flags_and_reserved() -> None:
    data = _v2_with_one_trace()
    struct.pack_into("<I", data, 24 + 8, 0x6)
    with pytest.raises(ParseError) as err:
        parse(bytes(data))
    assert err.value.field == "flags"
    data = _v2_with_one_trace()
    struct.pack_into("<I", data, 24 + 12, 1)
    with pytest.raises(ParseError) as err:
        parse(bytes(data))
    assert err.value.field == "reserved"


def test_v2_body_length_must_match_the_type() -> None:
    data = _v2_with_one_trace()
    struct.pack_into("<I", data, 24 + 4, 16 + 40)
    with pytest.raises(ParseError) as err:
        parse(bytes(data))
    assert "trace body is 40 bytes but its fields take 48" in str(err.value)


def test_trailing_bytes_after_v2_size_are_ignored() -> None:
    data = bytes(_v2_with_one_trace())
    assert parse(data + b"\xff" * 16) == parse(data)
