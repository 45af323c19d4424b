"""Checks a table the way Linux and OpenAMP would treat it, and beyond.

Each finding is an ERROR when Linux (``rproc_handle_resources`` and the handlers in
``drivers/remoteproc/remoteproc_core.c``), OpenAMP (``handle_rsc_table``) or the virtio ring code would refuse the
table or break on it, and a WARNING when they accept it but it is wrong or fragile (overlapping entries, a name
without its NUL, a type the dialect does not know). ``validate(strict=True)`` fails on both; ``strict=False``
fails only on errors.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

from resource_table import schema
from resource_table.codec import Buffer, Span
from resource_table.decode import parse_with_spans
from resource_table.encode import build
from resource_table.errors import ResourceTableError, ValidationError
from resource_table.findings import Finding, Severity
from resource_table.model import (
    FW_RSC_ADDR_ANY,
    FW_RSC_ADDR_ANY64,
    NAME_LEN,
    VENDOR_END,
    Carveout,
    Devmem,
    Dialect,
    Entry,
    Intmem,
    RawEntry,
    ResourceTable,
    Trace,
    Vdev,
    VirtioId,
)

MAX_VRINGS_LINUX = 2  # struct rproc_vdev has vring[RVDEV_NUM_VRINGS], RVDEV_NUM_VRINGS = 2
MAX_VRING_NUM = 32768  # virtio spec 2.7: queue size is at most 32768

_V1_STRUCTS: dict[type[Any], Any] = {
    Carveout: schema.CARVEOUT_V1,
    Devmem: schema.DEVMEM_V1,
    Trace: schema.TRACE_V1,
    Vdev: schema.VDEV_V1,
    Intmem: schema.INTMEM_V1,
}
_V2_STRUCTS: dict[type[Any], Any] = {
    Carveout: schema.CARVEOUT_V2,
    Devmem: schema.DEVMEM_V2,
    Trace: schema.TRACE_V2,
    Vdev: schema.VDEV_V2,
}


def validate(table: Buffer | ResourceTable, *, dialect: Dialect = Dialect.LINUX, strict: bool = True) -> list[Finding]:
    """Raise :class:`ValidationError` listing every problem that fails in this mode; return the rest."""
    findings = check(table, dialect=dialect)
    failing = [f for f in findings if strict or f.severity is Severity.ERROR]
    if failing:
        raise ValidationError(failing)
    return findings


def check(table: Buffer | ResourceTable, *, dialect: Dialect = Dialect.LINUX) -> list[Finding]:
    """Every finding, errors and warnings, in table order. A table that does not parse gives one error."""
    data = build(table) if isinstance(table, ResourceTable) else bytes(table)
    try:
        parsed, spans = parse_with_spans(data, dialect=dialect)
    except ResourceTableError as exc:
        return [
            Finding(severity=Severity.ERROR, message=exc.message, index=exc.index, offset=exc.offset, field=exc.field)
        ]
    checker = _Checker(parsed, spans)
    checker.header(data)
    for entry, span in zip(parsed.entries, spans, strict=True):
        checker.entry(entry, span, dialect)
    checker.overlaps(len(data))
    checker.address_overlaps()
    return checker.findings


class _Checker:
    def __init__(self, table: ResourceTable, spans: tuple[Span, ...]) -> None:
        self.table = table
        self.spans = spans
        self.findings: list[Finding] = []
        self.header_size = 16 + 4 * len(spans)

    def add(
        self,
        severity: Severity,
        message: str,
        span: Span | None = None,
        field: str | None = None,
        offset: int | None = None,
    ) -> None:
        if offset is None and span is not None:
            offset = span.offset
        self.findings.append(
            Finding(severity=severity, message=message, index=span.index if span else None, offset=offset, field=field)
        )

    def field_pos(self, span: Span, entry: Entry, field: str) -> int:
        """Byte offset of ``field`` of ``entry`` in the table."""
        if self.table.version == 1:
            struct = _V1_STRUCTS.get(type(entry))
            return span.offset + (schema.field_offset(struct, field) if struct is not None else 0)
        struct = _V2_STRUCTS.get(type(entry))
        rel = schema.field_offset(struct, field) if struct is not None else 0
        return span.offset + 16 + rel

    def header(self, data: bytes) -> None:
        if self.table.version == 1 and any(self.table.reserved):
            # Linux: "non zero reserved bytes" (remoteproc_elf_loader.c find_table; seen with 6.1 and 6.12 by
            # the mutation corpus, remoteproc/conformance/linux/mutation_corpus.py); OpenAMP's handle_rsc_table
            # returns RPROC_ERR_RSC_TAB_RSVD.
            self.add(
                Severity.ERROR,
                f"header reserved words are {list(self.table.reserved)}, must be zero (Linux and OpenAMP refuse "
                "the table)",
                field="reserved",
                offset=8,
            )
        if self.table.version == 2 and self.table.reserved[1]:
            self.add(
                Severity.WARNING,
                f"header reserved word is {self.table.reserved[1]:#x}, should be zero",
                field="reserved",
                offset=12,
            )

    def entry(self, entry: Entry, span: Span, dialect: Dialect) -> None:
        align = 8 if self.table.version == 2 else 4
        if span.offset % align:
            severity = Severity.ERROR if self.table.version == 2 else Severity.WARNING
            self.add(
                severity,
                f"entry starts at {span.offset:#x}, not {align}-byte aligned "
                "(unaligned word accesses fault on Cortex-M0/M23 and are slow elsewhere)",
                span,
                f"offset[{span.index}]",
            )
        if span.offset < self.header_size:
            self.add(
                Severity.ERROR,
                f"entry at {span.offset:#x} lies inside the header and offsets, which end at {self.header_size:#x}",
                span,
                f"offset[{span.index}]",
            )
        if isinstance(entry, Carveout | Devmem | Trace):
            self.reserved_word(entry, span)
            self.name(entry, span)
            if entry.len == 0:
                self.add(Severity.WARNING, f"{entry.kind} has len 0", span, "len", self.field_pos(span, entry, "len"))
            self.address_range(entry, span)
        elif isinstance(entry, Vdev):
            self.vdev(entry, span)
        elif isinstance(entry, RawEntry):
            where = "above the vendor range" if entry.type > VENDOR_END else "reserved"
            self.add(
                Severity.WARNING,
                f"type {entry.type} is {where} in the {dialect.value} dialect: Linux and "
                "OpenAMP skip it (is this table for another dialect?)",
                span,
                "type",
            )
        if self.table.version == 2:
            for name in ("da", "pa"):
                if getattr(entry, name, None) == FW_RSC_ADDR_ANY:
                    self.add(
                        Severity.WARNING,
                        f"{name} is 0xffffffff, a real address in a version-2 table: "
                        "FW_RSC_ADDR_ANY64 asks the host to choose",
                        span,
                        name,
                    )

    def reserved_word(self, entry: Carveout | Devmem | Trace, span: Span) -> None:
        if entry.reserved:
            # Linux: "carveout rsc has non zero reserved bytes" (and devmem, trace), -EINVAL.
            self.add(
                Severity.ERROR,
                f"{entry.kind} reserved is {entry.reserved:#x}, must be 0 (Linux refuses the table)",
                span,
                "reserved",
                self.field_pos(span, entry, "reserved"),
            )

    def name(self, entry: Carveout | Devmem | Trace, span: Span) -> None:
        if len(entry.name.encode("latin-1")) >= NAME_LEN:
            self.add(
                Severity.WARNING,
                f"name {entry.name!r} fills all {NAME_LEN} bytes and has no NUL: the host prints past its end",
                span,
                "name",
                self.field_pos(span, entry, "name"),
            )

    def address_range(self, entry: Carveout | Devmem | Trace, span: Span) -> None:
        limit = 1 << (64 if self.table.version == 2 else 32)
        anys = (FW_RSC_ADDR_ANY, FW_RSC_ADDR_ANY64)
        if entry.da not in anys and entry.da + entry.len > limit:
            self.add(
                Severity.ERROR,
                f"da {entry.da:#x} + len {entry.len:#x} wraps past the end of the address space",
                span,
                "len",
                self.field_pos(span, entry, "len"),
            )

    def vdev(self, vdev: Vdev, span: Span) -> None:
        if any(vdev.reserved):
            # Linux: "vdev rsc has non zero reserved bytes", -EINVAL.
            self.add(
                Severity.ERROR,
                f"vdev reserved bytes are {list(vdev.reserved)}, must be 0 (Linux refuses the table)",
                span,
                "reserved",
                self.field_pos(span, vdev, "reserved"),
            )
        if len(vdev.vrings) > MAX_VRINGS_LINUX:
            self.add(
                Severity.ERROR,
                f'{len(vdev.vrings)} vrings: Linux accepts at most {MAX_VRINGS_LINUX} per vdev ("too many vrings")',
                span,
                "num_of_vrings",
                self.field_pos(span, vdev, "num_of_vrings"),
            )
        if vdev.id == VirtioId.RPMSG and len(vdev.vrings) != 2:
            self.add(
                Severity.ERROR,
                f"an rpmsg vdev needs 2 vrings (0: remote->host, 1: host->remote), this one has {len(vdev.vrings)}",
                span,
                "num_of_vrings",
                self.field_pos(span, vdev, "num_of_vrings"),
            )
        ring_size = 20 if self.table.version == 1 else 24
        first = self.field_pos(span, vdev, "reserved") + 2
        for n, ring in enumerate(vdev.vrings):
            at = first + n * ring_size
            if ring.num == 0 or ring.align == 0:
                # Linux rproc_parse_vring: "invalid qsz (%d) or alignment (%d)".
                self.add(
                    Severity.ERROR,
                    f"vring {n}: num {ring.num} and align {ring.align} must both be non-zero",
                    span,
                    f"vring[{n}].num",
                    at,
                )
                continue
            if ring.num & (ring.num - 1) or ring.num > MAX_VRING_NUM:
                self.add(
                    Severity.ERROR,
                    f"vring {n}: num {ring.num} is not a power of two up to "
                    f"{MAX_VRING_NUM} (virtio split rings require one)",
                    span,
                    f"vring[{n}].num",
                    at + 8,
                )
            if ring.align & (ring.align - 1):
                self.add(
                    Severity.ERROR,
                    f"vring {n}: align {ring.align:#x} is not a power of two",
                    span,
                    f"vring[{n}].align",
                    at + 4,
                )
            elif ring.da not in (FW_RSC_ADDR_ANY, FW_RSC_ADDR_ANY64) and ring.da % ring.align:
                self.add(
                    Severity.ERROR,
                    f"vring {n}: da {ring.da:#x} is not aligned to its align {ring.align:#x}",
                    span,
                    f"vring[{n}].da",
                    at,
                )

    def overlaps(self, size: int) -> None:
        ordered = sorted(self.spans, key=lambda s: s.offset)
        for before, after in pairwise(ordered):
            if before.offset + before.size > after.offset:
                self.add(
                    Severity.WARNING,
                    f"entry {before.index} ({before.offset:#x}..{before.offset + before.size:#x})"
                    f" overlaps entry {after.index} at {after.offset:#x}",
                    after,
                    f"offset[{after.index}]",
                )

    def address_overlaps(self) -> None:
        """Fixed carveouts and devmems whose device ranges overlap: the host cannot map both."""
        anys = (FW_RSC_ADDR_ANY, FW_RSC_ADDR_ANY64)
        fixed = [
            (span, e)
            for e, span in zip(self.table.entries, self.spans, strict=True)
            if isinstance(e, Carveout | Devmem) and e.da not in anys and e.len
        ]
        fixed.sort(key=lambda item: item[1].da)
        for (_, a), (span_b, b) in pairwise(fixed):
            if a.da + a.len > b.da:
                self.add(
                    Severity.WARNING,
                    f"{b.kind} {b.name!r} at da {b.da:#x} overlaps {a.kind} {a.name!r} ({a.da:#x}..{a.da + a.len:#x})",
                    span_b,
                    "da",
                )
