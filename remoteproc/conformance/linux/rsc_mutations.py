"""Broken resource tables: Linux's remoteproc core and rproc must give each the same verdict.

A corpus of named mutations (:func:`corpus`) of a good table built by rproc's own codec (:func:`good_table`: a
trace buffer and an rpmsg vdev whose vrings sit in uml_rproc's ``vdev0vring0/1`` carveouts). Each mutation is a
firmware ELF (:func:`write_firmware`): the same code and data, the table bytes in ``.resource_table`` and that
section's ``sh_size`` set to the mutation's size (Linux takes the table's size from the section header,
remoteproc_elf_loader.c ``find_table``/``rproc_elf_load_rsc_table``).

The verdicts:

- **rproc** (:func:`rproc_verdict`): what ``RemoteProc.load`` does on its own platform with the same memory map:
  the table must parse (``firmware_info``), ``rproc rsc check --lenient`` must find no error, and the loader
  (``load_segments`` + ``handle_resources``) must place every resource.
- **Linux** (:func:`linux_verdicts`): one boot per kernel; the guest writes each firmware name to
  ``/sys/class/remoteproc/remoteproc0/firmware``, tries ``echo start > state``, records the result, the state,
  whether the rpmsg channel came up and the kernel log lines of that start, and stops the remote if it runs.
  *refused*: the start failed. *vdev refused*: the start succeeded but the vdev's ``rproc-virtio`` platform
  device (or the rpmsg driver on it) failed to probe: remoteproc_core.c ``rproc_handle_vdev`` registers it with
  ``platform_device_register_data``, which succeeds whatever the probe returns, so errors of
  remoteproc_virtio.c ``rproc_virtio_probe`` (``rproc_parse_vring``, ``rproc_alloc_vring``) only reach the log
  and the remote runs without its vdev: it counts as a refusal of the table. *accepted*: started, every vdev
  probed.

:func:`check_mutations` compares the two; a mutation whose verdicts differ must be listed in
:data:`DIFFERENCES` with the reason and the kernel source line, and a listed difference must still be one.
Each :class:`Mutation` also names the kernel log line Linux refuses it with (from the source), which the
comparison checks too, so a refusal for another reason shows.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import re
import struct
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from remoteproc.conformance.linux.build import UmlImages
from remoteproc.conformance.linux.remoteproc_peer import FILL, GUEST_MEM, HostRemote, run_guest
from remoteproc.conformance.linux.rproc_uml import Layout, _compile, build_remote
from remoteproc.conformance.linux.uml import UmlGuest
from remoteproc.elf import read_elf
from remoteproc.errors import RemoteprocError
from remoteproc.firmware import firmware_info
from remoteproc.loader import load_segments
from remoteproc.resources import Pool, handle_resources
from resource_table import (
    FW_RSC_ADDR_ANY,
    Carveout,
    Devmem,
    ResourceTable,
    ResourceTableError,
    Severity,
    Trace,
    Vdev,
    VendorEntry,
    Vring,
    build,
)
from transports.memory import MappedRegion, RegionMemory

ROOM = 512  # bytes the firmware's .resource_table section has; each mutation sets sh_size to its own length
HEADER = 16
TRACE_SIZE = 48
VDEV_SIZE = 28
VRING_SIZE = 20

ACCEPTED, REFUSED, VDEV_REFUSED = "accepted", "refused", "vdev refused"
BREAKS = {"invert-rproc": "rproc's verdict on ver-0 is inverted (the comparison must fail for that mutation)"}
BOOT_TIMEOUT = 240.0


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
    script = out_dir / "uml_fw.ld"
    script.write_text(layout.linker_script())
    elf = out_dir / "rsc-mutation-base.elf"
    flags = ["-std=c11", "-O1", "-Wall", "-Werror", "-ffreestanding", "-fno-pic", "-fno-asynchronous-unwind-tables"]
    flags += ["-fno-stack-protector", "-nostdlib", "-static", "-no-pie", "-Wl,--build-id=none"]
    _compile(["gcc", *flags, f"-Wl,-T,{script}", "-o", str(elf), str(source)], "building the mutation firmware")
    return elf


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


# ---- rproc's verdict -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    reason: str  # the first error rproc gives, "" when accepted
    stage: str = ""  # parse / check / loader
    warnings: tuple[str, ...] = ()


def rproc_verdict(elf: Path, layout: Layout) -> Verdict:
    """What RemoteProc.load does with the firmware on its own platform with ``layout``'s memory map: the table
    must parse, ``rproc rsc check --lenient`` must pass, the loader must place every resource."""
    try:
        info = firmware_info(elf)
    except RemoteprocError as exc:
        return Verdict(False, str(exc), "parse")
    warnings = tuple(str(f) for f in info.findings if f.severity is Severity.WARNING)
    errors = [str(f) for f in info.findings if f.severity is Severity.ERROR]
    if errors:
        return Verdict(False, errors[0], "check", warnings)
    section = info.elf.resource_table
    assert info.table is not None and section is not None
    memory = RegionMemory([MappedRegion("rproc", layout.base, layout.size, bytearray([FILL]) * layout.size)])
    pool = Pool([(layout.base, layout.base + layout.size)])
    try:
        for seg in load_segments(elf, info.elf, memory):
            pool.reserve(seg.da, seg.memsz)
        data = elf.read_bytes()[section.offset : section.offset + section.size]
        handle_resources(data, info.table, info.spans, memory, pool)
    except (RemoteprocError, ResourceTableError) as exc:
        return Verdict(False, str(exc), "loader", warnings)
    return Verdict(True, "", "", warnings)


def rsc_check_cli(elf: Path) -> tuple[int, str]:
    """``rproc rsc check --lenient ELF``: exit status and output, run in this process."""
    from remoteproc.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["rsc", "check", "--lenient", str(elf)])
    return status, out.getvalue() + err.getvalue()


# ---- Linux's verdict -----------------------------------------------------------------------------------------

GUEST_SCRIPT = r"""
R=/sys/class/remoteproc/remoteproc0
dmesg -c > /dev/null
for f in $(cat /host/mutations.txt); do
    echo rsc-$f.elf > $R/firmware
    if echo start > $R/state 2> /tmp/err; then rc=ok; else rc=fail; fi
    state=$(cat $R/state)
    channel=no
    if [ "$state" = running ] && ls /sys/bus/virtio/drivers/virtio_rpmsg_bus/ 2>/dev/null | grep -q virtio; then
        i=0
        while ! dmesg | grep -q 'creating channel rpmsg-raw' && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
        dmesg | grep -q 'creating channel rpmsg-raw' && channel=yes
    fi
    if [ "$state" = running ]; then echo stop > $R/state; fi
    echo "rsc-mut $f start=$rc state=$state channel=$channel after=$(cat $R/state) err=$(tr -d '\n' < /tmp/err)"
    dmesg -c | sed "s/^/rsc-log $f /"
done
echo "rsc-mut-done"
"""


@dataclass(frozen=True)
class LinuxVerdict:
    name: str
    outcome: str  # ACCEPTED / REFUSED / VDEV_REFUSED
    started: bool
    channel: bool
    error: str
    log: tuple[str, ...]

    @property
    def accepted(self) -> bool:
        return self.outcome == ACCEPTED

    def reason(self) -> str:
        """The kernel's own words: the error lines of the start, else its warnings."""
        interesting = [line for line in self.log if re.search(ERROR_LINE, line) and not re.search(CHATTER, line)]
        return "; ".join(interesting) if interesting else ""


# the kernel log lines that explain a verdict (dev_err/dev_warn of the core, the driver core's probe failure)
ERROR_LINE = (
    r"(truncated|incomplete|unsupported|non zero|invalid|too many|Registered carveout|Failed|failed|can't|"
    r"header-less|doesn't fit|not available|Bad|error)"
)
# drivers/base/dd.c call_driver_probe: 6.1 pr_warn("%s: probe of %s failed with error %d"), 6.12 dev_err(dev,
# "probe with driver %s failed with error %d"), for the vdev's platform device or the rpmsg driver on it
PROBE_FAILED = re.compile(
    r"(rproc-virtio|virtio_rpmsg_bus): probe of \S+ failed with error"
    r"|probe with driver (rproc-virtio|virtio_rpmsg_bus) failed with error"
)
CHATTER = r"(direct-loading firmware|Booting fw image)"  # name the file, whose name may say "truncated"
_TIMESTAMP = re.compile(r"^\[\s*\d+\.\d+\]\s*")


def parse_guest(lines: list[str]) -> dict[str, LinuxVerdict]:
    """The guest's ``rsc-mut`` and ``rsc-log`` lines as verdicts by mutation name."""
    logs: dict[str, list[str]] = {}
    results: dict[str, tuple[bool, bool, str, str]] = {}
    for line in lines:
        got = re.match(r"rsc-log (\S+) (.*)$", line)
        if got:
            logs.setdefault(got.group(1), []).append(_TIMESTAMP.sub("", got.group(2)))
            continue
        got = re.match(r"rsc-mut (\S+) start=(\w+) state=(\S*) channel=(\w+) after=\S* err=(.*)$", line)
        if got:
            results[got.group(1)] = (got.group(2) == "ok", got.group(4) == "yes", got.group(3), got.group(5))
    verdicts = {}
    for name, (started, channel, _state, error) in results.items():
        log = tuple(logs.get(name, ()))
        probe_failed = any(PROBE_FAILED.search(x) for x in log)
        outcome = REFUSED if not started else VDEV_REFUSED if probe_failed else ACCEPTED
        verdicts[name] = LinuxVerdict(name, outcome, started, channel, error.strip(), log)
    return verdicts


@dataclass
class CorpusRun:
    layout: Layout
    mutations: list[Mutation]
    firmware: dict[str, Path]
    guest: UmlGuest
    remote: HostRemote
    linux: dict[str, LinuxVerdict] = field(default_factory=dict)


@contextlib.contextmanager
def boot_corpus(images: UmlImages, tmp: Path, remote_dir: Path | None = None) -> Iterator[CorpusRun]:
    """One UML boot that tries every mutation; yields once UML has exited."""
    layout = Layout.for_guest_mem(GUEST_MEM)
    share = tmp / "share"
    share.mkdir(parents=True, exist_ok=True)
    firmware = write_corpus(layout, share)
    mutations = corpus(layout)
    (share / "mutations.txt").write_text("".join(f"{m.name}\n" for m in mutations))
    table_da = read_elf(firmware["good"]).resource_table
    assert table_da is not None
    command = [str(build_remote(remote_dir or tmp / "remote"))]
    with run_guest(images, command, tmp, layout, table_da.addr, GUEST_SCRIPT, timeout=BOOT_TIMEOUT) as ran:
        yield CorpusRun(layout, mutations, firmware, ran.guest, ran.remote, parse_guest(ran.guest.lines))


# ---- the comparison ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    """A mutation Linux and rproc judge differently, on purpose or by the platform: why, and the source."""

    linux: str  # Linux's outcome
    rproc_accepts: bool
    why: str
    source: str


_NOT_POW2 = (
    "rproc refuses on purpose: split-ring indices wrap with `& (num - 1)` (virtio_ring.c) and the used ring is "
    "placed with `& ~(align - 1)` (vring_init), which only work for powers of two (virtio 1.x 2.7: the queue size "
    "is a power of 2); the firmware's own C library (firmware/lib/rpmsg_remote.c) refuses the ring too, so the "
    "channel never comes up"
)
_NO_CHECK = (
    "remoteproc_core.c rproc_parse_vring checks only `!vring->num || !vring->align`; remoteproc_virtio.c "
    'rp_find_vq -> virtio_ring.c vring_new_virtqueue, which (unlike vring_alloc_queue_split: "Bad virtqueue '
    'length") checks nothing'
)
DIFFERENCES: dict[str, Difference] = {
    "offset-in-offsets": Difference(
        ACCEPTED,
        False,
        "rproc refuses on purpose: an entry that starts inside the offset array is made of offset words; Linux "
        "only skips it here because the word is no known type, but the same table with a small offset would be "
        "read (and written back: da, status) as a carveout or vdev over the offsets the remote reads",
        "include/linux/rsc_table.h rsc_table_for_each_entry: `offset < sizeof(*table)` (16 bytes: the header "
        'without its offset[] array); remoteproc_core.c rproc_handle_rsc_entry: "unsupported resource %d"',
    ),
    "trace-outside-memory": Difference(
        ACCEPTED,
        False,
        "rproc refuses on purpose at load: the firmware would write its log where the host never reads it (a "
        "wrong address); Linux notes the da and only fails at the first read of the trace file",
        "remoteproc_core.c rproc_handle_trace stores da and len unchecked; remoteproc_debugfs.c rproc_trace_read: "
        '"Trace %s not available"',
    ),
    "vring-num-48": Difference(ACCEPTED, False, _NOT_POW2, _NO_CHECK),
    "vring-align-0x1800": Difference(ACCEPTED, False, _NOT_POW2, _NO_CHECK),
    "vring-da-elsewhere": Difference(
        VDEV_REFUSED,
        True,
        "the platform: uml_rproc registers vdev0vring0 at a fixed da (as stm32_rproc and imx_rproc do from the "
        "device tree) and the vring must lie in it; rproc's own platforms have no such carveout, so a vring "
        "anywhere in the remote's memory is fine there",
        "remoteproc_core.c rproc_alloc_vring -> rproc_check_carveout_da: \"Registered carveout doesn't fit len "
        'request"',
    ),
}


@dataclass(frozen=True)
class Row:
    mutation: Mutation
    linux: LinuxVerdict
    rproc: Verdict
    difference: Difference | None

    @property
    def agree(self) -> bool:
        return self.linux.accepted == self.rproc.accepted


def compare(run: CorpusRun, break_mode: str = "") -> list[Row]:
    rows = []
    for mutation in run.mutations:
        linux = run.linux.get(mutation.name)
        if linux is None:
            raise AssertionError(f"{mutation.name}: the guest reported nothing (did the kernel stop early?)")
        ours = rproc_verdict(run.firmware[mutation.name], run.layout)
        if break_mode == "invert-rproc" and mutation.name == "ver-0":
            ours = dataclasses.replace(ours, accepted=not ours.accepted)
        rows.append(Row(mutation, linux, ours, DIFFERENCES.get(mutation.name)))
    return rows


def _has_rpmsg_vdev(elf: Path) -> bool:
    try:
        info = firmware_info(elf)
    except RemoteprocError:
        return False
    return info.table is not None and any(v.id == 7 for v in info.table.vdevs)


def check_console(run: CorpusRun, break_mode: str = "") -> str:
    """No BUG, Oops, panic or unexpected WARNING while the kernel went through the corpus."""
    run.guest.check_console_clean()
    done = [line for line in run.guest.lines if line == "rsc-mut-done"]
    assert done, "the guest did not get through the corpus:\n" + run.guest.tail()
    return f"{len(run.linux)} starts, the console clean"


def check_mutations(run: CorpusRun, break_mode: str = "") -> str:
    """Every mutation: Linux's verdict equals rproc's, or the difference is the one recorded in DIFFERENCES;
    Linux refused for the reason the source says (the mutation's log line); accepted tables with an rpmsg vdev
    got their channel (the remote ran)."""
    if break_mode and break_mode not in BREAKS:
        raise ValueError(f"no break mode {break_mode!r}: {', '.join(BREAKS)}")
    problems = []
    rows = compare(run, break_mode)
    for row in rows:
        name, linux, ours, diff = row.mutation.name, row.linux, row.rproc, row.difference
        if row.mutation.linux_reason and not any(re.search(row.mutation.linux_reason, x) for x in linux.log):
            problems.append(f"{name}: Linux did not log /{row.mutation.linux_reason}/: {list(linux.log)}")
        if diff is None and not row.agree:
            problems.append(
                f"{name}: Linux {linux.outcome} ({linux.reason() or linux.error}), rproc "
                f"{'accepts' if ours.accepted else 'refuses'} ({ours.reason})"
            )
        if linux.accepted and ours.accepted and _has_rpmsg_vdev(run.firmware[name]) and not linux.channel:
            problems.append(f"{name}: accepted by both, but the remote's rpmsg channel did not come up")
        if diff is not None and (linux.outcome != diff.linux or ours.accepted != diff.rproc_accepts):
            problems.append(
                f"{name}: the recorded difference no longer holds: Linux {linux.outcome}, rproc "
                f"{'accepts' if ours.accepted else 'refuses'} (recorded: Linux {diff.linux}, rproc "
                f"{'accepts' if diff.rproc_accepts else 'refuses'})"
            )
    assert not problems, f"{len(problems)} of {len(rows)} mutations: " + "\n".join(problems)
    agree = sum(row.agree for row in rows)
    return f"{len(rows)} mutations: {agree} same verdict, {len(rows) - agree} recorded differences"


def table_markdown(rows: list[Row]) -> str:
    """The doc table: mutation, Linux's verdict and log line, rproc's verdict and message."""
    out = ["| mutation | Linux | Linux's reason | rproc | rproc's message |", "| --- | --- | --- | --- | --- |"]
    for row in rows:
        reason = row.linux.reason() or row.linux.error or ""
        ours = "accepts" if row.rproc.accepted else f"refuses ({row.rproc.stage})"
        mark = "" if row.agree else " **(differs)**"
        out.append(
            f"| `{row.mutation.name}`: {row.mutation.what} | {row.linux.outcome}{mark} | {reason[:160]} | {ours} |"
            f" {row.rproc.reason[:200]} |"
        )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    """``python -m remoteproc.conformance.linux.rsc_mutations [--kernel 6.1|6.12]``: one boot, the table of
    verdicts (Markdown, as in docs/linux-conformance.md) and the comparison's outcome; exit 1 when it fails."""
    import argparse

    from remoteproc.conformance.linux.build import DEFAULT_KERNEL, KERNELS, ensure_uml

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--kernel", choices=KERNELS, default=DEFAULT_KERNEL)
    parser.add_argument("--break", dest="break_mode", choices=sorted(BREAKS), default="")
    args = parser.parse_args(argv)
    images = ensure_uml(kernel=args.kernel)
    with tempfile.TemporaryDirectory(prefix="rproc-rsc-mutations-") as tmp, boot_corpus(images, Path(tmp)) as run:
        print(table_markdown(compare(run, args.break_mode)))
        try:
            print(check_console(run))
            print(check_mutations(run, args.break_mode))
        except AssertionError as exc:
            print(f"FAIL: {exc}")
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
