"""Construct declarations of every on-the-wire structure, and the one border where construct's errors are caught.

This is the only module that imports construct. The declarations mirror the C structs field for field, so they
can be read side by side with ``include/linux/remoteproc.h`` and OpenAMP's ``remoteproc.h``. Version-2 structures
are rproc's proposal (docs/resource-table-v2.md).
"""

from __future__ import annotations

from typing import Any

import construct as cs

from resource_table.errors import BuildError, ParseError

u8 = cs.Int8ul
u32 = cs.Int32ul
u64 = cs.Int64ul

# --- version 1: Linux and OpenAMP -------------------------------------------------------------------------
HEADER_V1 = cs.Struct("ver" / u32, "num" / u32, "reserved" / cs.Array(2, u32))

CARVEOUT_V1 = cs.Struct(
    "type" / u32, "da" / u32, "pa" / u32, "len" / u32, "flags" / u32, "reserved" / u32, "name" / cs.Bytes(32)
)
DEVMEM_V1 = CARVEOUT_V1  # struct fw_rsc_devmem has the same fields in the same order
TRACE_V1 = cs.Struct("type" / u32, "da" / u32, "len" / u32, "reserved" / u32, "name" / cs.Bytes(32))
VDEV_V1 = cs.Struct(
    "type" / u32,
    "id" / u32,
    "notifyid" / u32,
    "dfeatures" / u32,
    "gfeatures" / u32,
    "config_len" / u32,
    "status" / u8,
    "num_of_vrings" / u8,
    "reserved" / cs.Array(2, u8),
)
VRING_V1 = cs.Struct("da" / u32, "align" / u32, "num" / u32, "notifyid" / u32, "pa" / u32)

# Old OpenAMP (<= v2018.10), lib/include/openamp/remoteproc.h
RPROC_MEM_V1 = cs.Struct("type" / u32, "da" / u32, "pa" / u32, "len" / u32, "reserved" / u32)
FW_CHKSUM_V1 = cs.Struct("type" / u32, "algo" / cs.Bytes(16), "chksum" / cs.Bytes(64))

# TI downstream kernels (3.14 .. 4.4): struct fw_rsc_intmem {version, da, pa, len, reserved[2], name[32]} and
# struct fw_rsc_custom {sub_type, size, data[size]} after the type word. Firmware-side copies of intmem disagree
# (some have one reserved word); docs/resource-table.md records which sources say what.
INTMEM_V1 = cs.Struct(
    "type" / u32,
    "version" / u32,
    "da" / u32,
    "pa" / u32,
    "len" / u32,
    "reserved" / cs.Array(2, u32),
    "name" / cs.Bytes(32),
)
CUSTOM_V1 = cs.Struct("type" / u32, "sub_type" / u32, "rsc_size" / u32)

# The part of an opaque entry (vendor, unknown) that has a meaning: its type word.
TYPE_WORD = cs.Struct("type" / u32)

# --- version 2: rproc's 64-bit proposal ------------------------------------------------------------------
# The header keeps v1's 16 bytes; reserved[0] becomes the total size so a reader can bound every entry.
HEADER_V2 = cs.Struct("ver" / u32, "num" / u32, "size" / u32, "reserved" / u32)
# Every v2 entry starts with this header; len counts the header and the body, not the padding to 8 bytes.
ENTRY_HEADER_V2 = cs.Struct("type" / u32, "len" / u32, "flags" / u32, "reserved" / u32)

CARVEOUT_V2 = cs.Struct("da" / u64, "pa" / u64, "len" / u64, "flags" / u32, "reserved" / u32, "name" / cs.Bytes(32))
DEVMEM_V2 = CARVEOUT_V2
TRACE_V2 = cs.Struct("da" / u64, "len" / u32, "reserved" / u32, "name" / cs.Bytes(32))
VDEV_V2 = cs.Struct(
    "id" / u32,
    "notifyid" / u32,
    "dfeatures" / u64,
    "gfeatures" / u64,
    "config_len" / u32,
    "status" / u8,
    "num_of_vrings" / u8,
    "reserved" / cs.Array(2, u8),
)
VRING_V2 = cs.Struct("da" / u64, "align" / u32, "num" / u32, "notifyid" / u32, "pa" / u32)

V2_ALIGN = 8


def sizeof(struct: Any) -> int:
    """Size in bytes of a fixed-size declaration."""
    return int(struct.sizeof())


def field_at(struct: Any, rel: int) -> str:
    """The name of the field of ``struct`` that contains byte ``rel`` (for "truncated in field X" messages)."""
    pos = 0
    for sub in struct.subcons:
        size = sub.sizeof()
        if rel < pos + size:
            return str(sub.name)
        pos += size
    return str(struct.subcons[-1].name)


def field_offset(struct: Any, name: str) -> int:
    """Byte offset of field ``name`` inside ``struct``."""
    pos = 0
    for sub in struct.subcons:
        if sub.name == name:
            return pos
        pos += sub.sizeof()
    raise KeyError(name)


def unpack(struct: Any, data: bytes | memoryview, offset: int, *, what: str, index: int | None) -> dict[str, Any]:
    """Parse ``struct`` at ``offset`` of ``data``; the caller has checked that it fits.

    Construct errors are turned into :class:`ParseError` here and nowhere else.
    """
    size = sizeof(struct)
    if offset < 0 or offset + size > len(data):
        field = field_at(struct, max(0, len(data) - offset))
        raise ParseError(
            f"{what} at {offset:#x} needs {size} bytes but the table ends at {len(data):#x}",
            index=index,
            offset=offset + field_offset(struct, field),
            field=field,
        )
    try:
        container = struct.parse(bytes(data[offset : offset + size]))
    except cs.ConstructError as exc:  # pragma: no cover - fixed-size parses of enough bytes do not fail
        raise ParseError(f"{what}: {exc}", index=index, offset=offset) from None
    return {k: v for k, v in container.items() if not k.startswith("_")}


def pack(struct: Any, values: dict[str, Any], *, what: str, index: int | None) -> bytes:
    """Build ``struct`` from ``values``; range errors become :class:`BuildError` naming the field."""
    for sub in struct.subcons:
        inner = sub.subcon if isinstance(sub, cs.Renamed) else sub
        value = values.get(sub.name)
        if isinstance(inner, cs.Array):
            items = list(value) if isinstance(value, list | tuple) else []
            if len(items) != inner.count:
                raise BuildError(f"{what}: needs {inner.count} values, got {value!r}", index=index, field=str(sub.name))
            for n, item in enumerate(items):
                _check_int(inner.subcon, item, what=what, index=index, field=f"{sub.name}[{n}]")
        else:
            _check_int(inner, value, what=what, index=index, field=str(sub.name))
    try:
        return bytes(struct.build(values))
    except cs.ConstructError as exc:
        raise BuildError(f"{what}: {exc}", index=index) from None


def _check_int(con: Any, value: Any, *, what: str, index: int | None, field: str) -> None:
    if not isinstance(con, cs.FormatField):
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise BuildError(f"{what}: expected an integer, got {value!r}", index=index, field=field)
    bits = con.length * 8
    if not 0 <= value < (1 << bits):
        raise BuildError(f"{what}: {value:#x} does not fit in {bits} bits", index=index, field=field)


def describe(struct: Any) -> list[tuple[str, int, int | None]]:
    """The C shape of ``struct``: (field name, element size in bytes, array length or None) for each field.

    ``Bytes(n)`` is an array of n one-byte elements. Used by the C emitter, which must not import construct.
    """
    shape: list[tuple[str, int, int | None]] = []
    for sub in struct.subcons:
        inner = sub.subcon if isinstance(sub, cs.Renamed) else sub
        if isinstance(inner, cs.Array):
            shape.append((str(sub.name), int(inner.subcon.sizeof()), int(inner.count)))
        elif isinstance(inner, cs.Bytes):
            shape.append((str(sub.name), 1, int(inner.sizeof())))
        else:
            shape.append((str(sub.name), int(inner.sizeof()), None))
    return shape
