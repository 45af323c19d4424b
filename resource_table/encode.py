"""build(ResourceTable) -> bytes, for versions 1 and 2, and write_back (the layout and the rules: codec.py)."""

from __future__ import annotations

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
    is_vendor_type,
)
from resource_table.errors import BuildError
from resource_table.model import (
    RSC_FLAG_OPTIONAL,
    VENDOR_END,
    VENDOR_START,
    CustomEntry,
    Entry,
    RawEntry,
    ResourceTable,
    Vdev,
    VendorEntry,
)


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
        if f.name in STRING_FIELDS:
            value = _encode_str(value, STRING_FIELDS[f.name], index, f.name)
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
