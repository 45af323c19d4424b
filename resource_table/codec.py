"""parse(bytes) -> ResourceTable and build(ResourceTable) -> bytes, for versions 1 and 2.

Theory of operation
-------------------
A version-1 table (Linux ``struct resource_table``) is a header ``{ver, num, reserved[2]}``, ``num`` u32 offsets,
and entries that start with a u32 type. Entries carry no length: the fixed-size ones have the size of their C
struct, a vdev is ``28 + 20 * num_of_vrings + config_len``, and an opaque one (vendor, unknown type) is taken to
reach the next entry (by offset) or the end of the table. Like Linux's ``rproc_handle_resources`` the parser
refuses an entry that does not fit in the table; everything else it keeps, including non-zero reserved fields, so
that :func:`resource_table.validate` can report them and ``build(parse(x)) == x`` holds for well-formed tables.

A version-2 table (rproc's proposal, docs/resource-table-v2.md) has a size in its header and a ``{type, len,
flags, reserved}`` header on every entry, with 64-bit addresses and 8-byte aligned entries.

Builders lay entries out back to back after the offsets (v1, like a ``__packed`` C struct) or at 8-byte
boundaries (v2).
"""

from __future__ import annotations

import bisect
import dataclasses
from dataclasses import dataclass
from typing import Any

from resource_table import schema
from resource_table.errors import BuildError, ParseError
from resource_table.model import (
    NAME_LEN,
    RSC_FLAG_OPTIONAL,
    VENDOR_END,
    VENDOR_START,
    Carveout,
    CustomEntry,
    Devmem,
    Dialect,
    Entry,
    FwChksum,
    Intmem,
    RawEntry,
    ResourceTable,
    RprocMem,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
)

Buffer = bytes | bytearray | memoryview

V1_HEADER_SIZE = schema.sizeof(schema.HEADER_V1)
V2_HEADER_SIZE = schema.sizeof(schema.HEADER_V2)
V2_ENTRY_HEADER_SIZE = schema.sizeof(schema.ENTRY_HEADER_V2)

# Fixed-size entries: model class -> (v1 struct including the type word, v2 body struct or None).
FIXED_STRUCTS: dict[type[Any], tuple[Any, Any]] = {
    Carveout: (schema.CARVEOUT_V1, schema.CARVEOUT_V2),
    Devmem: (schema.DEVMEM_V1, schema.DEVMEM_V2),
    Trace: (schema.TRACE_V1, schema.TRACE_V2),
    RprocMem: (schema.RPROC_MEM_V1, None),
    FwChksum: (schema.FW_CHKSUM_V1, None),
    Intmem: (schema.INTMEM_V1, None),
}
_STRING_FIELDS = {"name": NAME_LEN, "algo": 16}


def entry_classes(dialect: Dialect) -> dict[int, type[Any]]:
    """Which model class each known type number decodes to in ``dialect``."""
    classes: dict[int, type[Any]] = {0: Carveout, 1: Devmem, 2: Trace, 3: Vdev}
    if dialect is Dialect.OPENAMP_LEGACY:
        classes.update({4: RprocMem, 5: FwChksum})
    elif dialect is Dialect.TI:
        classes.update({4: Intmem, 5: CustomEntry})
    return classes


def is_vendor_type(rsc_type: int) -> bool:
    return VENDOR_START <= rsc_type <= VENDOR_END


@dataclass(frozen=True)
class Span:
    """Where entry ``index`` sits in the bytes: ``offset`` of its first byte and ``size`` bytes parsed."""

    index: int
    offset: int
    size: int
    type: int


# ---------------------------------------------------------------------------------------------------------
# parsing


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
        if f.name in _STRING_FIELDS:
            value = _cstr(value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# building


def build(table: ResourceTable, *, align: int | None = None) -> bytes:
    """Encode ``table``. Version 1 packs entries back to back unless ``align`` says otherwise; version 2 aligns
    entries to 8 bytes. Raises :class:`BuildError` naming the entry and field of a value that does not fit."""
    return build_with_spans(table, align=align)[0]


def build_with_spans(table: ResourceTable, *, align: int | None = None) -> tuple[bytes, tuple[Span, ...]]:
    if table.version == 1:
        header_size = V1_HEADER_SIZE
        bodies = [encode_entry_v1(e, i) for i, e in enumerate(table.entries)]
        step = align or 1
    elif table.version == 2:
        header_size = V2_HEADER_SIZE
        bodies = [encode_entry_v2(e, i) for i, e in enumerate(table.entries)]
        step = max(align or schema.V2_ALIGN, schema.V2_ALIGN)
    else:
        raise BuildError(f"version {table.version} cannot be built (1 or 2)", field="version")
    if step <= 0 or step & (step - 1):
        raise BuildError(f"entry alignment {step} is not a power of two", field="align")

    pos = _align_up(header_size + 4 * len(bodies), step)
    offsets = []
    spans = []
    for i, (entry, body) in enumerate(zip(table.entries, bodies, strict=True)):
        offsets.append(pos)
        spans.append(Span(i, pos, len(body), entry.type))
        pos = _align_up(pos + len(body), step) if i + 1 < len(bodies) else pos + len(body)
    total = _align_up(pos, schema.V2_ALIGN) if table.version == 2 else pos

    out = bytearray(total)
    if table.version == 1:
        header = {"ver": 1, "num": len(bodies), "reserved": list(table.reserved)}
        out[:header_size] = schema.pack(schema.HEADER_V1, header, what="header", index=None)
    else:
        if table.reserved[0]:
            raise BuildError(
                "reserved[0] must be 0 in a version-2 table: that word holds the table size",
                field="reserved[0]",
            )
        header = {"ver": 2, "num": len(bodies), "size": total, "reserved": table.reserved[1]}
        out[:header_size] = schema.pack(schema.HEADER_V2, header, what="header", index=None)
    for i, offset in enumerate(offsets):
        out[header_size + 4 * i : header_size + 4 * i + 4] = offset.to_bytes(4, "little")
        out[offset : offset + len(bodies[i])] = bodies[i]
    return bytes(out), tuple(spans)


def _align_up(value: int, step: int) -> int:
    return (value + step - 1) & ~(step - 1)


def _values(entry: Any, index: int) -> dict[str, Any]:
    values: dict[str, Any] = {"type": entry.type}
    for f in dataclasses.fields(entry):
        value = getattr(entry, f.name)
        if f.name in _STRING_FIELDS:
            value = _encode_str(value, _STRING_FIELDS[f.name], index, f.name)
        elif isinstance(value, tuple):
            value = list(value)
        elif f.name == "chksum":
            if len(value) > 64:
                raise BuildError(f"{len(value)} bytes do not fit the 64-byte field", index=index, field=f.name)
            value = bytes(value).ljust(64, b"\0")
        values[f.name] = value
    return values


def _encode_str(value: str, size: int, index: int, name: str) -> bytes:
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:
        raise BuildError(f"{value!r} has characters outside latin-1", index=index, field=name) from None
    if len(raw) > size:
        raise BuildError(f"{value!r} is {len(raw)} bytes, the field holds {size}", index=index, field=name)
    return raw.ljust(size, b"\0")


def _check_opaque_type(entry: VendorEntry | RawEntry, index: int) -> None:
    if not 0 <= entry.type <= 0xFFFF_FFFF:
        raise BuildError(f"type {entry.type} does not fit in 32 bits", index=index, field="type")
    if isinstance(entry, VendorEntry) and not is_vendor_type(entry.type):
        raise BuildError(
            f"vendor entries have types {VENDOR_START}..{VENDOR_END}, not {entry.type}", index=index, field="type"
        )


def encode_entry_v1(entry: Entry, index: int) -> bytes:
    """The bytes of one version-1 entry, type word included (what an in-place write-back stores)."""
    if isinstance(entry, Vdev):
        return _encode_vdev(entry, index, schema.VDEV_V1, schema.VRING_V1)
    if isinstance(entry, VendorEntry | RawEntry):
        _check_opaque_type(entry, index)
        return entry.type.to_bytes(4, "little") + bytes(entry.data)
    if isinstance(entry, CustomEntry):
        head = {"type": entry.type, "sub_type": entry.sub_type, "rsc_size": len(entry.data)}
        return schema.pack(schema.CUSTOM_V1, head, what="custom entry", index=index) + bytes(entry.data)
    struct = FIXED_STRUCTS[type(entry)][0]
    return schema.pack(struct, _values(entry, index), what=f"{entry.kind} entry", index=index)


def _encode_vdev(vdev: Vdev, index: int, fixed: Any, vring_struct: Any) -> bytes:
    head = {
        "type": vdev.type,
        "id": vdev.id,
        "notifyid": vdev.notifyid,
        "dfeatures": vdev.dfeatures,
        "gfeatures": vdev.gfeatures,
        "config_len": len(vdev.config),
        "status": vdev.status,
        "num_of_vrings": len(vdev.vrings),
        "reserved": list(vdev.reserved),
    }
    if len(vdev.vrings) > 255:
        raise BuildError(f"{len(vdev.vrings)} vrings do not fit in u8 num_of_vrings", index=index, field="vrings")
    if len(vdev.reserved) != 2 or not all(0 <= r <= 255 for r in vdev.reserved):
        raise BuildError(f"reserved must be two bytes, not {vdev.reserved!r}", index=index, field="reserved")
    out = [schema.pack(fixed, head, what="vdev entry", index=index)]
    for n, ring in enumerate(vdev.vrings):
        values = dataclasses.asdict(ring)
        out.append(schema.pack(vring_struct, values, what=f"vring {n}", index=index))
    out.append(bytes(vdev.config))
    return b"".join(out)


def encode_entry_v2(entry: Entry, index: int) -> bytes:
    """One version-2 entry: its 16-byte header and body, without the padding that follows it."""
    if isinstance(entry, Vdev):
        body = _encode_vdev(entry, index, schema.VDEV_V2, schema.VRING_V2)
    elif type(entry) in FIXED_STRUCTS and FIXED_STRUCTS[type(entry)][1] is not None:
        body = schema.pack(
            FIXED_STRUCTS[type(entry)][1], _values(entry, index), what=f"{entry.kind} entry", index=index
        )
    else:
        body = encode_entry_v1(entry, index)[4:]
    header = {
        "type": entry.type,
        "len": V2_ENTRY_HEADER_SIZE + len(body),
        "flags": RSC_FLAG_OPTIONAL if entry.optional else 0,
        "reserved": 0,
    }
    return schema.pack(schema.ENTRY_HEADER_V2, header, what="entry header", index=index) + body


def write_back(data: Buffer, spans: tuple[Span, ...], table: ResourceTable) -> bytes:
    """``data`` with every entry of ``table`` re-encoded in place at its span (Linux updates its cached copy the
    same way). Bytes outside the entries (padding, unknown gaps) are kept. Entries must keep their size."""
    out = bytearray(data)
    if len(spans) != len(table.entries):
        raise BuildError(f"{len(table.entries)} entries but {len(spans)} places to write them")
    for span, entry in zip(spans, table.entries, strict=True):
        raw = encode_entry_v1(entry, span.index) if table.version == 1 else encode_entry_v2(entry, span.index)
        if len(raw) != span.size:
            raise BuildError(
                f"the entry changed size ({span.size} -> {len(raw)} bytes)", index=span.index, offset=span.offset
            )
        out[span.offset : span.offset + span.size] = raw
    return bytes(out)


def vdev_field_offset(version: int, field: str) -> int:
    """Byte offset of a vdev field (``status``, ``gfeatures``) from the start of the vdev entry."""
    if version == 1:
        return schema.field_offset(schema.VDEV_V1, field)
    return V2_ENTRY_HEADER_SIZE + schema.field_offset(schema.VDEV_V2, field)
