"""The corpus of broken resource tables that Linux's remoteproc core and rproc must give the same verdict
(rsc_mutations.py compares them; docs/linux-conformance.md, "Broken tables").

A corpus of named mutations (:func:`corpus`) of a good table built by rproc's own codec (:func:`good_table`: a
trace buffer and an rpmsg vdev whose vrings sit in uml_rproc's ``vdev0vring0/1`` carveouts). Each mutation is a
firmware ELF (:func:`write_firmware`): the same code and data, the table bytes in ``.resource_table`` and that
section's ``sh_size`` set to the mutation's size (Linux takes the table's size from the section header,
remoteproc_elf_loader.c ``find_table``/``rproc_elf_load_rsc_table``). Each :class:`Mutation` also names the
kernel log line Linux refuses it with (from the source).
"""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from pathlib import Path

from remoteproc.conformance.linux.rproc_uml import Layout, link_firmware
from resource_table import (
    FW_RSC_ADDR_ANY,
    Carveout,
    Devmem,
    ResourceTable,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
    build,
)

ROOM = 512  # bytes the firmware's .resource_table section has; each mutation sets sh_size to its own length
HEADER = 16
TRACE_SIZE = 48
VDEV_SIZE = 28
VRING_SIZE = 20


@dataclass(frozen=True)
class Mutation:
    """One table: its bytes, the size its section declares, what it breaks, and Linux's expected log line."""

    name: str
    what: str
    data: bytes
    section_size: int | None = None  # sh_size; None: len(data)
    linux_reason: str = ""  # a regex on the kernel log of the start ("" when Linux accepts it quietly)

    @property
    def size(self) -> int:
        return len(self.data) if self.section_size is None else self.section_size


# ---- the corpus ----------------------------------------------------------------------------------------------


def good_table(layout: Layout) -> ResourceTable:
    """The table host/uml_fw.c declares (a trace buffer, an rpmsg vdev), as rproc's codec builds it."""
    return ResourceTable(
        version=1,
        entries=(
            Trace(da=layout.da(layout.trace[0]), len=layout.trace[1], name="trace0"),
            Vdev(
                id=7,
                notifyid=layout.vdev_notifyid,
                dfeatures=1,
                vrings=(
                    Vring(da=layout.da(layout.vring0[0]), align=layout.vring_align, num=layout.vring_num, notifyid=0),
                    Vring(da=layout.da(layout.vring1[0]), align=layout.vring_align, num=layout.vring_num, notifyid=0),
                ),
            ),
        ),
    )


def _put(data: bytes, offset: int, fmt: str, *values: int) -> bytes:
    out = bytearray(data)
    struct.pack_into(fmt, out, offset, *values)
    return bytes(out)


def _table(*entries: bytes, pad: int = 0) -> bytes:
    """A version-1 table from raw entries (type word included), back to back after ``pad`` bytes."""
    pos = HEADER + 4 * len(entries) + pad
    offsets, body = [], b""
    for e in entries:
        offsets.append(pos + len(body))
        body += e
    return struct.pack(f"<IIII{len(entries)}I", 1, len(entries), 0, 0, *offsets) + bytes(pad) + body


def _entries(layout: Layout, **vdev_changes: object) -> tuple[bytes, bytes]:
    """(trace, vdev) entries of the good table, the vdev with ``vdev_changes`` applied."""
    table = good_table(layout)
    trace, vdev = table.entries
    assert isinstance(vdev, Vdev)
    vdev = dataclasses.replace(vdev, **vdev_changes)  # type: ignore[arg-type]
    one = build(ResourceTable(version=1, entries=(trace,)))
    two = build(ResourceTable(version=1, entries=(vdev,)))
    return one[HEADER + 4 :], two[HEADER + 4 :]


def _vring(layout: Layout, n: int, **changes: int) -> Vring:
    da = layout.da((layout.vring0, layout.vring1)[n][0])
    return dataclasses.replace(Vring(da=da, align=layout.vring_align, num=layout.vring_num, notifyid=0), **changes)


def _with_vring0(layout: Layout, **changes: int) -> bytes:
    trace, vdev = _entries(layout, vrings=(_vring(layout, 0, **changes), _vring(layout, 1)))
    return _table(trace, vdev)


def _entry(e: Carveout | Devmem | Trace | VendorEntry) -> bytes:
    return build(ResourceTable(version=1, entries=(e,)))[HEADER + 4 :]


def corpus(layout: Layout) -> list[Mutation]:
    """The named mutations, the good table first. Pure: no file, no kernel."""
    good = build(good_table(layout))
    trace, vdev = _entries(layout)
    n = len(good)
    trace_at, vdev_at = HEADER + 8, HEADER + 8 + TRACE_SIZE
    ring0 = layout.da(layout.vring0[0])
    free = layout.da(0x30000)  # inside the memory file, no segment, vring or buffer there
    reason_vdev_truncated = r"vdev rsc is truncated"
    reason_rsc_truncated = r"rsc table is truncated"
    reason_qsz = r"invalid qsz \(\d+\) or alignment \(\d+\)"
    reason_fit_len = r"Registered carveout doesn't fit len request"
    m = [
        Mutation("good", "the table rproc builds for uml_fw.c (a trace, an rpmsg vdev)", good),
        Mutation("section-padded", "64 zero bytes after the last entry, inside the section", good + bytes(64)),
        # header
        Mutation("ver-0", "version 0", _put(good, 0, "<I", 0), linux_reason=r"unsupported fw ver: 0"),
        Mutation(
            "ver-2",
            "version 2 (rproc's 64-bit proposal) on version-1 bytes",
            _put(good, 0, "<I", 2),
            linux_reason=r"unsupported fw ver: 2",
        ),
        Mutation(
            "hdr-reserved0", "header reserved[0] = 1", _put(good, 8, "<I", 1), linux_reason=r"non zero reserved bytes"
        ),
        Mutation(
            "hdr-reserved1",
            "header reserved[1] = 0x80000000",
            _put(good, 12, "<I", 0x80000000),
            linux_reason=r"non zero reserved bytes",
        ),
        Mutation("num-0", "num = 0: no entries", _put(good, 4, "<I", 0)),
        Mutation("num-1", "num = 1: the vdev left out", _put(good, 4, "<I", 1)),
        Mutation(
            "num-past-section",
            "num = 40: the offsets run past the section",
            _put(good, 4, "<I", 40),
            linux_reason=r"resource table incomplete",
        ),
        # the section's size
        Mutation(
            "section-12-bytes",
            "sh_size 12: not even the header",
            good,
            section_size=12,
            linux_reason=r"header-less resource table",
        ),
        Mutation(
            "section-cuts-offsets",
            "sh_size 20: the second offset cut off",
            good,
            section_size=20,
            linux_reason=r"resource table incomplete",
        ),
        Mutation(
            "section-cuts-vdev",
            "sh_size 4 bytes short: the last vring cut",
            good,
            section_size=n - 4,
            linux_reason=reason_vdev_truncated,
        ),
        # offsets
        Mutation(
            "offset-past-end",
            "offset[1] = 0x1000, past the table",
            _put(good, 20, "<I", 0x1000),
            linux_reason=reason_rsc_truncated,
        ),
        Mutation(
            "offset-in-header",
            "offset[0] = 8: the entry starts in the header",
            _put(good, 16, "<I", 8),
            linux_reason=reason_rsc_truncated,
        ),
        Mutation(
            "offset-in-offsets",
            "offset[1] = 20: the entry is the offset word itself (type 20)",
            _put(good, 20, "<I", 20),
            linux_reason=r"unsupported resource 20",
        ),
        Mutation("offset-unaligned", "entries at odd offsets (25, 73)", _table(trace, vdev, pad=1)),
        Mutation(
            "offset-into-entry",
            "offset[0] = trace + 8: a 'type' read from the trace's len (0x1000)",
            _put(good, 16, "<I", trace_at + 8),
            linux_reason=r"unsupported resource 4096",
        ),
        # types
        Mutation(
            "type-4",
            "the trace's type = 4 (RSC_LAST, unknown)",
            _put(good, trace_at, "<I", 4),
            linux_reason=r"unsupported resource 4",
        ),
        Mutation(
            "type-vendor",
            "a vendor entry (type 128) nobody handles",
            _table(trace, vdev, _entry(VendorEntry(type=128, data=bytes(8)))),
            linux_reason=r"unsupported vendor resource 128",
        ),
        # trace
        Mutation(
            "trace-reserved",
            "trace reserved = 1",
            _put(good, trace_at + 12, "<I", 1),
            linux_reason=r"trace rsc has non zero reserved bytes",
        ),
        Mutation("trace-len-0", "trace len = 0", _put(good, trace_at + 8, "<I", 0)),
        Mutation(
            "trace-outside-memory",
            "trace da = 0x1000, outside the remote's memory",
            _put(good, trace_at + 4, "<I", 0x1000),
        ),
        Mutation(
            "trace-truncated",
            "the trace last, its name cut by 4 bytes",
            _table(vdev, trace)[:-4],
            linux_reason=r"trace rsc is truncated",
        ),
        # vdev
        Mutation(
            "vdev-reserved",
            "vdev reserved[1] = 1",
            _put(good, vdev_at + 27, "<B", 1),
            linux_reason=r"vdev rsc has non zero reserved bytes",
        ),
        Mutation(
            "vdev-3-vrings",
            "an rpmsg vdev with 3 vrings (room for them)",
            _table(trace, _entries(layout, vrings=(_vring(layout, 0), _vring(layout, 1), _vring(layout, 1)))[1]),
            linux_reason=r"too many vrings: 3",
        ),
        Mutation(
            "vdev-255-vrings",
            "num_of_vrings = 255 in place",
            _put(good, vdev_at + 25, "<B", 255),
            linux_reason=reason_vdev_truncated,
        ),
        Mutation(
            "vdev-config-len-overflow",
            "config_len = 0xfffffff0 (wraps a 32-bit sum)",
            _put(good, vdev_at + 20, "<I", 0xFFFFFFF0),
            linux_reason=reason_vdev_truncated,
        ),
        Mutation(
            "vdev-config-len-past-end",
            "config_len = 8 with no config bytes",
            _put(good, vdev_at + 20, "<I", 8),
            linux_reason=reason_vdev_truncated,
        ),
        Mutation(
            "vdev-config-space",
            "8 bytes of config space, present",
            _table(trace, _entries(layout, config=bytes(range(8)))[1]),
        ),
        Mutation("vdev-id-99", "virtio id 99: no driver for it", _put(good, vdev_at + 4, "<I", 99)),
        # vrings
        Mutation("vring-num-0", "vring 0 num = 0", _with_vring0(layout, num=0), linux_reason=reason_qsz),
        Mutation(
            "vring-num-48",
            "both vrings num = 48, not a power of two",
            _table(trace, _entries(layout, vrings=(_vring(layout, 0, num=48), _vring(layout, 1, num=48)))[1]),
        ),
        Mutation(
            "vring-num-1024",
            "vring 0 num = 1024: 0x7000 bytes, over vring 1 at +0x2000",
            _with_vring0(layout, num=1024),
            linux_reason=reason_fit_len,
        ),
        Mutation("vring-align-0x1800", "vring 0 align 0x1800, not a power of two", _with_vring0(layout, align=0x1800)),
        Mutation(
            "vring-da-unaligned",
            "vring 0 da 4 bytes into its page",
            _with_vring0(layout, da=ring0 + 4),
            linux_reason=reason_fit_len,
        ),
        Mutation("vring-da-any", "vring 0 da = FW_RSC_ADDR_ANY", _with_vring0(layout, da=FW_RSC_ADDR_ANY)),
        Mutation(
            "vring-da-elsewhere",
            "vring 0 at a free page of the memory, not in vdev0vring0",
            _with_vring0(layout, da=free),
            linux_reason=reason_fit_len,
        ),
        # carveouts, devmem
        Mutation(
            "carveout-reserved",
            "a carveout with reserved = 1",
            _table(_entry(Carveout(da=free, pa=free, len=0x1000, reserved=1, name="c0")), trace, vdev),
            linux_reason=r"carveout rsc has non zero reserved bytes",
        ),
        Mutation(
            "carveout-truncated",
            "a carveout last, 8 bytes short",
            _table(trace, vdev, _entry(Carveout(da=free, pa=free, len=0x1000, name="c0")))[:-8],
            linux_reason=r"carveout rsc is truncated",
        ),
        Mutation(
            "devmem",
            "a devmem entry (no IOMMU on this platform)",
            _table(_entry(Devmem(da=free, pa=free, len=0x1000, name="regs")), trace, vdev),
            linux_reason=r"Failed to process resources: -22",
        ),
    ]
    names = [x.name for x in m]
    assert len(names) == len(set(names)), "mutation names must be unique"
    assert all(len(x.data) <= ROOM for x in m), "a mutation does not fit the section"
    return m


# ---- the firmware files --------------------------------------------------------------------------------------

FIRMWARE_C = """\
/* uml_fw.c's code and data with a .resource_table of ROOM bytes that rsc_mutations.py fills per mutation. */
#include <stdint.h>
__attribute__((section(".resource_table"), used, aligned(8))) const uint8_t resource_table[{room}] = {{ {bytes} }};
const char uml_fw_banner[] = "rproc uml_rproc mutation firmware";
volatile uint32_t uml_fw_counter = 0x12345678u;
uint8_t uml_fw_zero[4096];
void _start(void)
{{
	for (;;)
		uml_fw_counter += uml_fw_zero[uml_fw_counter & 4095] + (uint8_t)uml_fw_banner[0] + resource_table[0];
}}
"""


def build_base_firmware(layout: Layout, out_dir: Path) -> Path:
    """The firmware every mutation starts from: uml_fw.c's segments, the good table in a ROOM-byte section."""
    out_dir.mkdir(parents=True, exist_ok=True)
    good = build(good_table(layout)).ljust(ROOM, b"\0")
    source = out_dir / "rsc_mutation_fw.c"
    source.write_text(FIRMWARE_C.format(room=ROOM, bytes=", ".join(str(b) for b in good)))
    return link_firmware(layout, out_dir, "rsc-mutation-base.elf", [source], "building the mutation firmware", [])


def _section_header(image: bytes, name: bytes) -> int:
    """File offset of the ELF64 section header named ``name``."""
    shoff: int = struct.unpack_from("<Q", image, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", image, 0x3A)
    strtab = shoff + shstrndx * shentsize
    str_off: int = struct.unpack_from("<Q", image, strtab + 0x18)[0]
    for i in range(shnum):
        at: int = shoff + i * shentsize
        (sh_name,) = struct.unpack_from("<I", image, at)
        end = image.index(b"\0", str_off + sh_name)
        if image[str_off + sh_name : end] == name:
            return at
    raise ValueError(f"no section {name.decode()}")


def write_firmware(base: Path, mutation: Mutation, out: Path) -> Path:
    """``base`` with the mutation's bytes in .resource_table (zero-padded to ROOM) and its sh_size."""
    image = bytearray(base.read_bytes())
    header = _section_header(bytes(image), b".resource_table")
    (offset,) = struct.unpack_from("<Q", image, header + 0x18)
    (size,) = struct.unpack_from("<Q", image, header + 0x20)
    assert size == ROOM, f"the base firmware's section is {size} bytes, not {ROOM}"
    image[offset : offset + ROOM] = mutation.data.ljust(ROOM, b"\0")
    struct.pack_into("<Q", image, header + 0x20, mutation.size)
    out.write_bytes(image)
    return out


def write_corpus(layout: Layout, directory: Path) -> dict[str, Path]:
    """Every mutation as ``directory/rsc-NAME.elf`` (the names the guest writes to sysfs)."""
    base = build_base_firmware(layout, directory / "build")
    return {m.name: write_firmware(base, m, directory / f"rsc-{m.name}.elf") for m in corpus(layout)}
