"""Resource tables as Linux and OpenAMP define them, and rproc's 64-bit version 2.

No I/O happens here: bytes in, typed values out, and back. Quick tour::

    from resource_table import parse, build, validate, pretty
    table = parse(section_bytes)            # ResourceTable of frozen dataclasses
    print(pretty(table))
    assert build(table) == section_bytes    # for tables laid out as a packed C struct
"""

from resource_table.codec import Span, vdev_field_offset
from resource_table.convert import to_v1, to_v2
from resource_table.decode import parse, parse_with_spans
from resource_table.encode import build, build_with_spans, encode_entry_v1, write_back
from resource_table.errors import BuildError, ParseError, ResourceTableError, SpecError, ValidationError
from resource_table.findings import Finding, Severity
from resource_table.layout import Layout, Region, check_regions, plan_layout, vring_size
from resource_table.model import (
    FW_RSC_ADDR_ANY,
    FW_RSC_ADDR_ANY64,
    FW_RSC_NOTIFY_ID_ANY,
    RSC_FLAG_OPTIONAL,
    VENDOR_END,
    VENDOR_START,
    VIRTIO_RPMSG_F_NS,
    Carveout,
    CustomEntry,
    Devmem,
    Dialect,
    Entry,
    FwChksum,
    Intmem,
    RawEntry,
    ResourceTable,
    ResourceType,
    RprocMem,
    Trace,
    Vdev,
    VendorEntry,
    VirtioId,
    Vring,
    addr_any,
)
from resource_table.pretty import pretty
from resource_table.spec import from_dict, load_spec, loads_spec, to_dict, to_json
from resource_table.validate import check, validate

__all__ = [
    "FW_RSC_ADDR_ANY",
    "FW_RSC_ADDR_ANY64",
    "FW_RSC_NOTIFY_ID_ANY",
    "RSC_FLAG_OPTIONAL",
    "VENDOR_END",
    "VENDOR_START",
    "VIRTIO_RPMSG_F_NS",
    "BuildError",
    "Carveout",
    "CustomEntry",
    "Devmem",
    "Dialect",
    "Entry",
    "Finding",
    "FwChksum",
    "Intmem",
    "Layout",
    "ParseError",
    "RawEntry",
    "Region",
    "ResourceTable",
    "ResourceTableError",
    "ResourceType",
    "RprocMem",
    "Severity",
    "Span",
    "SpecError",
    "Trace",
    "ValidationError",
    "Vdev",
    "VendorEntry",
    "VirtioId",
    "Vring",
    "addr_any",
    "build",
    "build_with_spans",
    "check",
    "check_regions",
    "encode_entry_v1",
    "from_dict",
    "load_spec",
    "loads_spec",
    "parse",
    "parse_with_spans",
    "plan_layout",
    "pretty",
    "to_dict",
    "to_json",
    "to_v1",
    "to_v2",
    "validate",
    "vdev_field_offset",
    "vring_size",
    "write_back",
]
