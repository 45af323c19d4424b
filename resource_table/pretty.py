"""A table as a person reads it: one line per entry, flags and features by name."""

from __future__ import annotations

from collections.abc import Sequence

from resource_table.codec import Span
from resource_table.model import (
    FW_RSC_ADDR_ANY,
    FW_RSC_ADDR_ANY64,
    FW_RSC_NOTIFY_ID_ANY,
    Carveout,
    CustomEntry,
    Devmem,
    Entry,
    FwChksum,
    Intmem,
    RawEntry,
    ResourceTable,
    RprocMem,
    Trace,
    Vdev,
    VendorEntry,
    VirtioId,
)

# Virtio device status bits (virtio spec 2.1) and the feature bits a remoteproc vdev meets.
STATUS_BITS = {1: "ACKNOWLEDGE", 2: "DRIVER", 4: "DRIVER_OK", 8: "FEATURES_OK", 64: "NEEDS_RESET", 128: "FAILED"}
COMMON_FEATURES = {28: "RING_INDIRECT_DESC", 29: "RING_EVENT_IDX", 32: "VERSION_1", 33: "ACCESS_PLATFORM"}
DEVICE_FEATURES = {VirtioId.RPMSG: {0: "NS"}}


def pretty(table: ResourceTable, spans: Sequence[Span] | None = None, size: int | None = None) -> str:
    """A multi-line description of ``table``; with ``spans`` (from ``parse_with_spans``) offsets are shown, with
    ``size`` the table's size in bytes."""
    size_text = f", {size} bytes" if size is not None else ""
    lines = [f"resource table v{table.version}: {len(table.entries)} entries{size_text}"]
    if any(table.reserved):
        lines.append(f"  header reserved: {[hex(r) for r in table.reserved]}")
    for i, entry in enumerate(table.entries):
        at = f" @{spans[i].offset:#06x}" if spans else ""
        opt = " (optional)" if entry.optional else ""
        head, *rest = _describe(entry, table.version)
        lines.append(f"  [{i}]{at} {entry.kind:<9} {head}{opt}")
        lines.extend(f"  {' ' * (len(str(i)) + len(at) + 3)}          {line}" for line in rest)
    return "\n".join(lines)


def _addr(value: int) -> str:
    return "any" if value in (FW_RSC_ADDR_ANY, FW_RSC_ADDR_ANY64) else f"{value:#010x}"


def _size(value: int) -> str:
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if value >= 1 << shift and value % (1 << shift) == 0:
            return f"{value:#x} ({value >> shift} {unit})"
    return f"{value:#x} ({value} B)"


def _bits(value: int, names: dict[int, str]) -> str:
    known = [name for bit, name in sorted(names.items()) if value & (1 << bit)]
    unknown = value & ~sum(1 << bit for bit in names)
    if unknown:
        known.append(f"{unknown:#x}")
    return "|".join(known) if known else "none"


def _status(value: int) -> str:
    known = [name for bit, name in STATUS_BITS.items() if value & bit]
    unknown = value & ~sum(STATUS_BITS)
    if unknown:
        known.append(f"{unknown:#x}")
    return "|".join(known) if known else "reset"


def _notify(value: int) -> str:
    return "any" if value == FW_RSC_NOTIFY_ID_ANY else str(value)


def _hexdump(data: bytes, limit: int = 32) -> str:
    shown = data[:limit].hex(" ")
    return f"{shown} ...({len(data)} B)" if len(data) > limit else shown or "(empty)"


def _describe(entry: Entry, version: int) -> list[str]:
    if isinstance(entry, Carveout | Devmem):
        flags = f"  flags {entry.flags:#x}" if entry.flags else ""
        return [f"{entry.name!r} da {_addr(entry.da)} pa {_addr(entry.pa)} len {_size(entry.len)}{flags}"]
    if isinstance(entry, Trace):
        return [f"{entry.name!r} da {_addr(entry.da)} len {_size(entry.len)}"]
    if isinstance(entry, Vdev):
        return _describe_vdev(entry)
    if isinstance(entry, VendorEntry):
        return [f"type {entry.type}, {len(entry.data)} B: {_hexdump(entry.data)}"]
    if isinstance(entry, RawEntry):
        return [f"type {entry.type} (unknown in this dialect), {len(entry.data)} B: {_hexdump(entry.data)}"]
    if isinstance(entry, RprocMem):
        return [f"da {_addr(entry.da)} pa {_addr(entry.pa)} len {_size(entry.len)}"]
    if isinstance(entry, FwChksum):
        return [f"{entry.algo!r} {entry.chksum.rstrip(bytes(1)).hex() or '(none)'}"]
    if isinstance(entry, Intmem):
        return [
            f"{entry.name!r} version {entry.version} da {_addr(entry.da)} pa {_addr(entry.pa)} len {_size(entry.len)}"
        ]
    if isinstance(entry, CustomEntry):
        return [f"sub_type {entry.sub_type}, {len(entry.data)} B: {_hexdump(entry.data)}"]
    raise TypeError(f"not an entry: {entry!r}")  # pragma: no cover


def _describe_vdev(vdev: Vdev) -> list[str]:
    try:
        name = f"{VirtioId(vdev.id).name.lower()} (id {vdev.id})"
    except ValueError:
        name = f"id {vdev.id}"
    features = {**COMMON_FEATURES, **DEVICE_FEATURES.get(vdev.id, {})}  # type: ignore[call-overload]
    lines = [
        f"{name} notifyid {_notify(vdev.notifyid)} status {vdev.status:#04x} ({_status(vdev.status)})",
        f"dfeatures {vdev.dfeatures:#x} ({_bits(vdev.dfeatures, features)}) "
        f"gfeatures {vdev.gfeatures:#x} ({_bits(vdev.gfeatures, features)})",
    ]
    for n, ring in enumerate(vdev.vrings):
        pa = f" pa {ring.pa:#x}" if ring.pa else ""
        lines.append(
            f"vring {n}: da {_addr(ring.da)} align {ring.align:#x} num {ring.num} notifyid {_notify(ring.notifyid)}{pa}"
        )
    if vdev.config:
        lines.append(f"config: {_hexdump(vdev.config)}")
    if any(vdev.reserved):
        lines.append(f"reserved: {list(vdev.reserved)}")
    return lines
