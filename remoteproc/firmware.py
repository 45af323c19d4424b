"""What a firmware file holds: its ELF identity, segments and resource table, checked (``rproc info``); a table
from any file ``rproc rsc`` takes (:func:`read_table`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from remoteproc.elf import ELF_MAGIC, ElfImage, read_bytes, read_elf
from remoteproc.errors import FirmwareError, RemoteprocError
from remoteproc.loader import segment_problems
from resource_table import (
    Dialect,
    Finding,
    ResourceTable,
    ResourceTableError,
    Severity,
    Span,
    build,
    check,
    load_spec,
    parse_with_spans,
    to_dict,
)
from resource_table.files import MAX_READ, open_regular, read_regular


@dataclass(frozen=True)
class FirmwareInfo:
    elf: ElfImage
    table: ResourceTable | None
    spans: tuple[Span, ...]
    findings: tuple[Finding, ...]
    table_size: int = 0


def firmware_info(path: str | os.PathLike[str], *, dialect: Dialect = Dialect.LINUX) -> FirmwareInfo:
    """Read ``path`` and its resource table. A table that does not parse is a :class:`FirmwareError` whose
    message names the entry and field and whose offset is the file offset of the bad bytes. The findings are
    the table's (:func:`resource_table.check`), the segments' (the loader's own rule,
    :func:`remoteproc.loader.segment_problems`: what it refuses is an error here) and the table's placement."""
    image = read_elf(path)
    segments = [Finding(severity=Severity.ERROR, message=p) for p in segment_problems(image)]
    section = image.resource_table
    if section is None:
        return FirmwareInfo(elf=image, table=None, spans=(), findings=tuple(segments))
    if section.size > MAX_READ:
        raise FirmwareError(
            f"section {section.name} is {section.size} bytes, larger than the {MAX_READ} bytes rproc reads of a "
            "resource table",
            path=image.path,
            offset=section.offset,
        )
    data = read_bytes(path, section.offset, section.size)
    if not image.little_endian and len(data) >= 4 and int.from_bytes(data[:4], "big") in (1, 2):
        raise FirmwareError(
            f"section {section.name} is big-endian (version {int.from_bytes(data[:4], 'big')} read big-endian): "
            "the table's words are in the firmware's byte order and Linux reads them in the host's; a "
            "little-endian host needs a little-endian table (build the table's struct little-endian)",
            path=image.path,
            offset=section.offset,
        )
    try:
        table, spans = parse_with_spans(data, dialect=dialect)
    except ResourceTableError as exc:
        at = section.offset + exc.offset if exc.offset is not None else section.offset
        raise FirmwareError(f"section {section.name}: {exc}", path=image.path, offset=at) from None
    findings = list(check(data, dialect=dialect))
    findings.extend(segments)
    findings.extend(_placement(image))
    return FirmwareInfo(elf=image, table=table, spans=spans, findings=tuple(findings), table_size=len(data))


def read_table(path: str, dialect: Dialect) -> tuple[bytes, tuple[Finding, ...]]:
    """A raw table file, the .resource_table section of an ELF, or a JSON/TOML description built; with the
    findings of a check (for an ELF, also what :func:`firmware_info` finds in its segments and the table's
    placement)."""
    if Path(path).suffix.lower() in (".json", ".toml"):
        data = build(load_spec(path))
        return data, tuple(check(data, dialect=dialect))
    try:
        with open_regular(path) as f:
            head = f.read(4)
        if head != ELF_MAGIC:
            data = read_regular(path)
            return data, tuple(check(data, dialect=dialect))
    except OSError as exc:
        raise RemoteprocError(f"{path}: {exc.strerror}") from None
    info = firmware_info(path, dialect=dialect)
    if info.elf.resource_table is None:
        raise RemoteprocError(f"{path}: has no .resource_table section")
    return read_bytes(path, info.elf.resource_table.offset, info.elf.resource_table.size), info.findings


def _placement(image: ElfImage) -> list[Finding]:
    """Linux finds the loaded table at the section's address (rproc_elf_find_loaded_rsc_table); it must lie
    inside a loadable segment, or there is nothing to copy the negotiated table into."""
    section = image.resource_table
    loads = [s for s in image.segments if s.loadable]
    if section is None or not loads:
        return []  # a relocatable object has no segments; nothing to check
    for seg in loads:
        if seg.vaddr <= section.addr and section.addr + section.size <= seg.vaddr + seg.memsz:
            return []
    return [
        Finding(
            severity=Severity.ERROR,
            message=f"section {section.name} at {section.addr:#x}..{section.addr + section.size:#x} is not inside any "
            "loadable segment: the host cannot write the negotiated table where the firmware reads it",
            field=section.name,
        )
    ]


def info_to_dict(info: FirmwareInfo) -> dict[str, Any]:
    elf = info.elf
    out: dict[str, Any] = {
        "path": elf.path,
        "class": f"ELF{elf.elf_class}",
        "endian": "little" if elf.little_endian else "big",
        "machine": elf.machine,
        "type": elf.elf_type,
        "entry": f"{elf.entry:#x}",
        "segments": [
            {
                "index": s.index,
                "type": s.type_name,
                "p_type": f"{s.type:#x}" if s.type >= 0 else None,
                "offset": f"{s.offset:#x}",
                "paddr": f"{s.paddr:#x}",
                "vaddr": f"{s.vaddr:#x}",
                "filesz": f"{s.filesz:#x}",
                "memsz": f"{s.memsz:#x}",
                "flags": s.flags_text,
            }
            for s in elf.segments
        ],
        "resource_table": None,
    }
    if info.table is not None and elf.resource_table is not None:
        out["resource_table"] = {
            "address": f"{elf.resource_table.addr:#x}",
            "file_offset": f"{elf.resource_table.offset:#x}",
            "size": elf.resource_table.size,
            **to_dict(info.table, [s.offset for s in info.spans]),
        }
    out["findings"] = [finding_to_dict(f) for f in info.findings]
    return out


def finding_to_dict(f: Finding) -> dict[str, Any]:
    """A finding as ``info --json`` and ``rsc check --json`` show it."""
    return {"severity": f.severity.value, "message": f.message, "index": f.index, "offset": f.offset, "field": f.field}
