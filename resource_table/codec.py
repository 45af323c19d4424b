"""The layout both directions of the codec share: parse(bytes) -> ResourceTable (decode.py) and
build(ResourceTable) -> bytes (encode.py), for versions 1 and 2.

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

from dataclasses import dataclass
from typing import Any

from resource_table import schema
from resource_table.model import (
    NAME_LEN,
    VENDOR_END,
    VENDOR_START,
    Carveout,
    CustomEntry,
    Devmem,
    Dialect,
    FwChksum,
    Intmem,
    RprocMem,
    Trace,
    Vdev,
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
STRING_FIELDS = {"name": NAME_LEN, "algo": 16}
"""Fields held as fixed-size C strings, and their sizes in bytes."""


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


def vdev_field_offset(version: int, field: str) -> int:
    """Byte offset of a vdev field (``status``, ``gfeatures``) from the start of the vdev entry."""
    if version == 1:
        return schema.field_offset(schema.VDEV_V1, field)
    return V2_ENTRY_HEADER_SIZE + schema.field_offset(schema.VDEV_V2, field)
