"""parse(bytes) -> ResourceTable, for versions 1 and 2 (the layout and the rules: codec.py)."""

from __future__ import annotations

import bisect
import dataclasses
from typing import Any

from resource_table import schema
from resource_table.codec import (
    FIXED_STRUCTS,
    STRING_FIELDS,
    V1_HEADER_SIZE,
    V2_ENTRY_HEADER_SIZE,
    V2_HEADER_SIZE,
    Buffer,
    Span,
    entry_classes,
    is_vendor_type,
)
from resource_table.errors import ParseError
from resource_table.model import (
    RSC_FLAG_OPTIONAL,
    CustomEntry,
    Dialect,
    Entry,
    RawEntry,
    ResourceTable,
    Vdev,
    VendorEntry,
    Vring,
)


def parse(data: Buffer, *, dialect: Dialect = Dialect.LINUX) -> ResourceTable:
    """Decode a version-1 or version-2 table. Raises :class:`ParseError` naming the entry, offset and field."""
    return parse_with_spans(data, dialect=dialect)[0]


def parse_with_spans(data: Buffer, *, dialect: Dialect = Dialect.LINUX) -> tuple[ResourceTable, tuple[Span, ...]]:
    """:func:`parse`, plus where each entry was found (what an in-place write-back needs)."""
    data = bytes(data)
    if len(data) < 4:
        raise ParseError(f"the table is {len(data)} bytes; the version word alone needs 4", offset=0, field="ver")
    version = int.from_bytes(data[:4], "little")
    if version == 1:
        return _parse_v1(data, dialect)
    if version == 2:
        return _parse_v2(data, dialect)
    raise ParseError(
        f"version {version} is not a resource table version rproc reads (1: Linux/OpenAMP, 2: rproc 64-bit)",
        offset=0,
        field="ver",
    )


def _read_offsets(data: bytes, header_size: int, num: int, end: int) -> list[int]:
    need = header_size + 4 * num
    if need > end:
        raise ParseError(
            f"num = {num} needs {num} offsets up to byte {need:#x}, but the table is only {end:#x} bytes",
            offset=4,
            field="num",
        )
    return [int.from_bytes(data[header_size + 4 * i : header_size + 4 * i + 4], "little") for i in range(num)]


def _check_offset(offset: int, index: int, header_size: int, need: int, end: int) -> None:
    if offset + need > end:
        raise ParseError(
            f"entry offset {offset:#x} is past the end of the table ({end:#x} bytes)",
            index=index,
            offset=header_size + 4 * index,
            field=f"offset[{index}]",
        )


def _extent(ordered: list[int], offset: int, end: int) -> int:
    """An opaque entry reaches the next entry (``ordered``: all offsets, sorted) or the table's end."""
    i = bisect.bisect_right(ordered, offset)
    return ordered[i] if i < len(ordered) else end


def _parse_v1(data: bytes, dialect: Dialect) -> tuple[ResourceTable, tuple[Span, ...]]:
    header = schema.unpack(schema.HEADER_V1, data, 0, what="version-1 header", index=None)
    end = len(data)
    offsets = _read_offsets(data, V1_HEADER_SIZE, header["num"], end)
    classes = entry_classes(dialect)
    ordered = sorted(offsets)
    seen: dict[int, tuple[Entry, int]] = {}  # offsets may repeat (Linux allows it); decode each place once
    entries: list[Entry] = []
    spans: list[Span] = []
    for index, offset in enumerate(offsets):
        _check_offset(offset, index, V1_HEADER_SIZE, 4, end)
        rsc_type = int.from_bytes(data[offset : offset + 4], "little")
        if offset not in seen:
            seen[offset] = _decode_v1(data, offset, rsc_type, index, classes, _extent(ordered, offset, end))
        entry, size = seen[offset]
        entries.append(entry)
        spans.append(Span(index, offset, size, rsc_type))
    reserved = header["reserved"]
    table = ResourceTable(version=1, entries=tuple(entries), reserved=(reserved[0], reserved[1]))
    return table, tuple(spans)


def _decode_v1(
    data: bytes, offset: int, rsc_type: int, index: int, classes: dict[int, type[Any]], extent: int
) -> tuple[Entry, int]:
    cls = classes.get(rsc_type)
    if cls is Vdev:
        return _decode_vdev(data, offset, index, schema.VDEV_V1, schema.VRING_V1, len(data))
    if cls is CustomEntry:
        return _decode_custom(data, offset, index, len(data))
    if cls is not None:
        struct = FIXED_STRUCTS[cls][0]
        values = schema.unpack(struct, data, offset, what=f"{cls.kind} entry", index=index)
        return _from_values(cls, values), schema.sizeof(struct)
    body = data[offset + 4 : extent]
    if is_vendor_type(rsc_type):
        return VendorEntry(type=rsc_type, data=body), extent - offset
    return RawEntry(type=rsc_type, data=body), extent - offset


def _decode_vdev(data: bytes, offset: int, index: int, fixed: Any, vring_struct: Any, end: int) -> tuple[Vdev, int]:
    values = schema.unpack(fixed, data, offset, what="vdev entry", index=index)
    fixed_size = schema.sizeof(fixed)
    vring_size = schema.sizeof(vring_struct)
    count = values["num_of_vrings"]
    config_len = values["config_len"]
    need = fixed_size + count * vring_size + config_len
    if offset + need > end:
        # Linux: "vdev rsc is truncated". Name the part that does not fit.
        field = "config_len" if offset + fixed_size + count * vring_size <= end else "num_of_vrings"
        raise ParseError(
            f"vdev needs {need} bytes ({fixed_size} + {count} vrings x {vring_size} + config_len {config_len}) "
            f"but only {end - offset} remain in the table",
            index=index,
            offset=offset + schema.field_offset(fixed, field),
            field=field,
        )
    vrings = []
    pos = offset + fixed_size
    for n in range(count):
        ring = schema.unpack(vring_struct, data, pos, what=f"vring {n}", index=index)
        vrings.append(Vring(**ring))
        pos += vring_size
    config = data[pos : pos + config_len]
    vdev = Vdev(
        id=values["id"],
        notifyid=values["notifyid"],
        dfeatures=values["dfeatures"],
        gfeatures=values["gfeatures"],
        status=values["status"],
        reserved=(values["reserved"][0], values["reserved"][1]),
        vrings=tuple(vrings),
        config=config,
    )
    return vdev, need


def _decode_custom(data: bytes, offset: int, index: int, end: int) -> tuple[CustomEntry, int]:
    values = schema.unpack(schema.CUSTOM_V1, data, offset, what="custom entry", index=index)
    fixed = schema.sizeof(schema.CUSTOM_V1)
    size = values["rsc_size"]
    if offset + fixed + size > end:
        raise ParseError(
            f"custom entry declares rsc_size {size} but only {end - offset - fixed} bytes remain in the table",
            index=index,
            offset=offset + schema.field_offset(schema.CUSTOM_V1, "rsc_size"),
            field="rsc_size",
        )
    body = data[offset + fixed : offset + fixed + size]
    return CustomEntry(sub_type=values["sub_type"], data=body), fixed + size


def _parse_v2(data: bytes, dialect: Dialect) -> tuple[ResourceTable, tuple[Span, ...]]:
    header = schema.unpack(schema.HEADER_V2, data, 0, what="version-2 header", index=None)
    size = header["size"]
    if size > len(data):
        raise ParseError(
            f"the header says the table is {size:#x} bytes, but only {len(data):#x} are there",
            offset=8,
            field="size",
        )
    offsets = _read_offsets(data, V2_HEADER_SIZE, header["num"], size)
    classes = entry_classes(dialect)
    entries: list[Entry] = []
    spans: list[Span] = []
    for index, offset in enumerate(offsets):
        _check_offset(offset, index, V2_HEADER_SIZE, V2_ENTRY_HEADER_SIZE, size)
        ehdr = schema.unpack(schema.ENTRY_HEADER_V2, data, offset, what="entry header", index=index)
        length = ehdr["len"]
        if length < V2_ENTRY_HEADER_SIZE or offset + length > size:
            raise ParseError(
                f"entry len {length} must be at least {V2_ENTRY_HEADER_SIZE} and end inside the table "
                f"({size:#x} bytes)",
                index=index,
                offset=offset + 4,
                field="len",
            )
        if ehdr["flags"] & ~RSC_FLAG_OPTIONAL:
            raise ParseError(
                f"unknown entry flags {ehdr['flags']:#x} (version 2 defines only OPTIONAL = {RSC_FLAG_OPTIONAL:#x})",
                index=index,
                offset=offset + 8,
                field="flags",
            )
        if ehdr["reserved"]:
            raise ParseError(
                f"entry header reserved word is {ehdr['reserved']:#x}, must be 0",
                index=index,
                offset=offset + 12,
                field="reserved",
            )
        entry = _decode_v2_body(data, offset, ehdr["type"], index, classes, offset + length)
        entries.append(dataclasses.replace(entry, optional=bool(ehdr["flags"] & RSC_FLAG_OPTIONAL)))
        spans.append(Span(index, offset, length, ehdr["type"]))
    table = ResourceTable(version=2, entries=tuple(entries), reserved=(0, header["reserved"]))
    return table, tuple(spans)


def _decode_v2_body(
    data: bytes, offset: int, rsc_type: int, index: int, classes: dict[int, type[Any]], end: int
) -> Entry:
    body_at = offset + V2_ENTRY_HEADER_SIZE
    cls = classes.get(rsc_type)
    if cls is Vdev:
        vdev, used = _decode_vdev(data, body_at, index, schema.VDEV_V2, schema.VRING_V2, end)
        _check_body_len(cls, used, end - body_at, index, offset)
        return vdev
    if cls is not None and FIXED_STRUCTS.get(cls, (None, None))[1] is not None:
        struct = FIXED_STRUCTS[cls][1]
        _check_body_len(cls, schema.sizeof(struct), end - body_at, index, offset)
        entry: Entry = _from_values(cls, schema.unpack(struct, data, body_at, what=f"{cls.kind} entry", index=index))
        return entry
    # Types without a 64-bit form keep their version-1 body (what follows the type word).
    v1_image = rsc_type.to_bytes(4, "little") + data[body_at:end]
    entry, used = _decode_v1(v1_image, 0, rsc_type, index, classes, len(v1_image))
    _check_body_len(type(entry), used - 4, end - body_at, index, offset)
    return entry


def _check_body_len(cls: type[Any], need: int, have: int, index: int, offset: int) -> None:
    if need != have:
        raise ParseError(
            f"{cls.kind} body is {have} bytes but its fields take {need}",
            index=index,
            offset=offset + 4,
            field="len",
        )


def _cstr(raw: bytes) -> str:
    # C strings: stop at the first NUL (OpenAMP leaves garbage after it); latin-1 keeps every byte.
    return raw.split(b"\0", 1)[0].decode("latin-1")


def _from_values(cls: type[Any], values: dict[str, Any]) -> Any:
    kwargs: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.name not in values:
            continue
        value = values[f.name]
        if f.name in STRING_FIELDS:
            value = _cstr(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)
