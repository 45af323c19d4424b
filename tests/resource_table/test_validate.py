"""validate()/check(): each rule fires on the table that breaks it, names the place, and strict vs lenient."""

from __future__ import annotations

import struct

import pytest

from resource_table import (
    FW_RSC_ADDR_ANY,
    Carveout,
    Devmem,
    RawEntry,
    ResourceTable,
    Severity,
    Trace,
    ValidationError,
    Vdev,
    VirtioId,
    Vring,
    build,
    check,
    validate,
)

RINGS = (Vring(align=0x1000, num=256), Vring(align=0x1000, num=256))
GOOD = ResourceTable(
    entries=(
        Carveout(da=FW_RSC_ADDR_ANY, len=0x10000, name="pool"),
        Trace(da=0x20000000, len=0x1000, name="trace0"),
        Vdev(id=VirtioId.RPMSG, dfeatures=1, vrings=RINGS),
    )
)


def only(table: ResourceTable | bytes) -> list[tuple[str, int | None, str | None]]:
    return [(f.severity.value, f.index, f.field) for f in check(table)]


def test_a_good_table_has_no_findings() -> None:
    assert check(GOOD) == []
    assert validate(GOOD) == []


def test_reserved_words_are_errors_where_linux_or_openamp_refuse() -> None:
    assert only(ResourceTable(reserved=(0, 1))) == [("error", None, "reserved")]
    assert only(ResourceTable(entries=(Carveout(da=0, len=1, reserved=1),))) == [("error", 0, "reserved")]
    assert only(ResourceTable(entries=(Trace(da=0, len=1, reserved=2),))) == [("error", 0, "reserved")]
    assert only(ResourceTable(entries=(Vdev(id=3, reserved=(0, 1)),))) == [("error", 0, "reserved")]


def test_vdev_rules() -> None:
    three = ResourceTable(entries=(Vdev(id=3, vrings=(*RINGS, RINGS[0])),))
    assert ("error", 0, "num_of_vrings") in only(three)
    rpmsg_one = ResourceTable(entries=(Vdev(id=7, vrings=RINGS[:1]),))
    assert only(rpmsg_one) == [("error", 0, "num_of_vrings")]
    not_pow2 = ResourceTable(entries=(Vdev(id=3, vrings=(Vring(align=0x1000, num=100),)),))
    [finding] = check(not_pow2)
    assert finding.field == "vring[0].num" and "power of two" in finding.message
    assert finding.offset == 16 + 4 + 28 + 8  # header, offset[0], vdev fixed part, vring.num
    zero = ResourceTable(entries=(Vdev(id=3, vrings=(Vring(align=0, num=8),)),))
    assert only(zero) == [("error", 0, "vring[0].num")]
    misaligned = ResourceTable(entries=(Vdev(id=3, vrings=(Vring(da=0x1004, align=0x1000, num=8),)),))
    assert only(misaligned) == [("error", 0, "vring[0].da")]


def test_overlapping_entries_are_a_warning_and_fail_only_strict() -> None:
    data = bytearray(build(ResourceTable(entries=(Trace(da=0, len=4, name="a"), Trace(da=8, len=4, name="b")))))
    struct.pack_into("<I", data, 20, struct.unpack_from("<I", data, 16)[0] + 8)  # entry 1 starts inside entry 0
    findings = check(bytes(data))
    assert any(
        f.severity is Severity.WARNING and f.message == "entry 0 (0x18..0x48) overlaps entry 1 at 0x20"
        for f in findings
    )
    validate(bytes(data), strict=False)
    with pytest.raises(ValidationError) as err:
        validate(bytes(data), strict=True)
    assert err.value.findings


def test_entry_inside_the_header_is_an_error() -> None:
    data = bytearray(build(ResourceTable(entries=(Trace(da=0, len=4),))))
    struct.pack_into("<I", data, 16, 0)  # offset[0] -> the header itself (type word = ver = 1 = devmem)
    assert ("error", 0, "offset[0]") in only(bytes(data))


def test_unknown_types_and_names_warn() -> None:
    assert only(ResourceTable(entries=(RawEntry(type=9, data=b""),))) == [("warning", 0, "type")]
    assert only(ResourceTable(entries=(Trace(da=0, len=1, name="x" * 32),))) == [("warning", 0, "name")]


def test_address_wrap_and_fixed_overlap() -> None:
    assert only(ResourceTable(entries=(Carveout(da=0xFFFFF000, pa=0, len=0x2000),))) == [("error", 0, "len")]
    overlap = ResourceTable(
        entries=(
            Carveout(da=0x1000, pa=0, len=0x1000, name="a"),
            Devmem(da=0x1800, pa=0, len=0x100, name="b"),
        )
    )
    assert only(overlap) == [("warning", 1, "da")]


def test_v2_entries_misaligned_and_32_bit_any() -> None:
    v2 = ResourceTable(version=2, entries=(Carveout(da=FW_RSC_ADDR_ANY, pa=0, len=1),))
    assert only(v2) == [("warning", 0, "da")]


def test_unparseable_bytes_give_one_error_finding() -> None:
    [finding] = check(b"\x05\x00\x00\x00")
    assert finding.severity is Severity.ERROR and finding.field == "ver"
    with pytest.raises(ValidationError):
        validate(b"\x05\x00\x00\x00", strict=False)
