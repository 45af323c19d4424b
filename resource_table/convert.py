"""Version 1 <-> version 2 conversion.

v1 -> v2 is lossless: every v1 value fits a v2 field, ``FW_RSC_ADDR_ANY`` becomes ``FW_RSC_ADDR_ANY64``, and
entries Linux would skip when it does not know them (vendor and unknown types) are marked optional, which is what
Linux and OpenAMP do with them today. v2 -> v1 works when every address and feature word fits 32 bits; otherwise
it names the first entry and field that does not.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from resource_table.errors import ResourceTableError
from resource_table.model import (
    FW_RSC_ADDR_ANY,
    FW_RSC_ADDR_ANY64,
    Entry,
    RawEntry,
    ResourceTable,
    Vdev,
    VendorEntry,
    Vring,
)

_ADDRESS_FIELDS = ("da", "pa")
_U32 = 0xFFFF_FFFF


class ConversionError(ResourceTableError):
    """A version-2 value has no version-1 encoding."""


def to_v2(table: ResourceTable) -> ResourceTable:
    """The same table as version 2."""
    if table.version == 2:
        return table
    if table.reserved[0]:
        raise ConversionError(
            f"header reserved[0] = {table.reserved[0]:#x} has no place in a version-2 header (that word holds "
            "the table size)",
            field="reserved[0]",
        )
    entries = tuple(_widen(e) for e in table.entries)
    return ResourceTable(version=2, entries=entries, reserved=(0, table.reserved[1]))


def to_v1(table: ResourceTable) -> ResourceTable:
    """The same table as version 1; :class:`ConversionError` when a value does not fit 32 bits."""
    if table.version == 1:
        return table
    entries = tuple(_narrow(e, i) for i, e in enumerate(table.entries))
    return ResourceTable(version=1, entries=entries, reserved=table.reserved)


def _widen_addr(value: int) -> int:
    return FW_RSC_ADDR_ANY64 if value == FW_RSC_ADDR_ANY else value


def _widen(entry: Entry) -> Entry:
    changes: dict[str, Any] = {}
    for name in _ADDRESS_FIELDS:
        if hasattr(entry, name):
            changes[name] = _widen_addr(getattr(entry, name))
    if isinstance(entry, Vdev):
        changes["vrings"] = tuple(dataclasses.replace(r, da=_widen_addr(r.da)) for r in entry.vrings)
    if isinstance(entry, VendorEntry | RawEntry):
        changes["optional"] = True
    return dataclasses.replace(entry, **changes)


def _narrow_addr(value: int, index: int, field: str) -> int:
    if value == FW_RSC_ADDR_ANY64:
        return FW_RSC_ADDR_ANY
    if value > _U32:
        raise ConversionError(f"{value:#x} does not fit a version-1 table's 32 bits", index=index, field=field)
    return value


def _narrow(entry: Entry, index: int) -> Entry:
    changes: dict[str, Any] = {"optional": False}
    for name in _ADDRESS_FIELDS:
        if hasattr(entry, name):
            changes[name] = _narrow_addr(getattr(entry, name), index, name)
    if isinstance(entry, Vdev):
        for name in ("dfeatures", "gfeatures"):
            value = getattr(entry, name)
            if value > _U32:
                raise ConversionError(
                    f"{value:#x} has feature bits above 31, which a version-1 vdev cannot carry",
                    index=index,
                    field=name,
                )
        rings: list[Vring] = []
        for n, ring in enumerate(entry.vrings):
            rings.append(dataclasses.replace(ring, da=_narrow_addr(ring.da, index, f"vring[{n}].da")))
        changes["vrings"] = tuple(rings)
    return dataclasses.replace(entry, **changes)
