"""ELF files through pyelftools: the one module that imports it, and the border where its errors are caught.

pyelftools raises its own ``ELFError``/``ELFParseError`` for most damage, but a hostile file can also reach
``struct.error``, ``ValueError`` or ``IndexError`` deep inside it. Every call into it goes through
:func:`_guard`, so users see one :class:`FirmwareError` naming the file.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import os
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from elftools.common.exceptions import ELFError, ELFParseError
from elftools.elf import enums as _elf_enums
from elftools.elf.elffile import ELFFile

from remoteproc.errors import FirmwareError
from resource_table.files import open_regular

ELF_MAGIC = b"\x7fELF"
RESOURCE_TABLE_SECTION = ".resource_table"


class SegmentType(enum.IntEnum):
    PT_NULL = 0
    PT_LOAD = 1
    PT_DYNAMIC = 2
    PT_INTERP = 3
    PT_NOTE = 4
    PT_PHDR = 6
    PT_TLS = 7


@dataclass(frozen=True)
class Segment:
    """One program header. ``paddr`` is where remoteproc loads it (Linux ``rproc_elf_load_segments``)."""

    index: int
    type: int
    offset: int
    vaddr: int
    paddr: int
    filesz: int
    memsz: int
    flags: int
    # the program header type's name for this file's machine (PT_GNU_STACK, PT_ARM_EXIDX, ...), "" if unnamed
    type_label: str = ""

    @property
    def loadable(self) -> bool:
        return self.type == SegmentType.PT_LOAD

    @property
    def type_name(self) -> str:
        if self.type_label:
            return self.type_label
        try:
            return SegmentType(self.type).name
        except ValueError:
            return f"{self.type:#x}"

    @property
    def flags_text(self) -> str:
        return "".join(c if self.flags & bit else "-" for c, bit in (("R", 4), ("W", 2), ("X", 1)))


@dataclass(frozen=True)
class Section:
    name: str
    addr: int
    offset: int
    size: int
    nobits: bool


@dataclass(frozen=True)
class ElfImage:
    """What rproc needs of an ELF file: its identity, segments and the resource-table section."""

    path: str
    elf_class: int
    little_endian: bool
    machine: str
    elf_type: str
    entry: int
    file_size: int
    segments: tuple[Segment, ...]
    resource_table: Section | None


@contextlib.contextmanager
def _guard(path: str) -> Iterator[None]:
    try:
        yield
    except FirmwareError:
        raise
    except (ELFError, ELFParseError) as exc:
        raise FirmwareError(f"malformed ELF: {exc}", path=path) from None
    except (struct.error, ValueError, IndexError, KeyError, AttributeError, TypeError, UnicodeDecodeError) as exc:
        # pyelftools reading past a truncated or corrupt header; never our bug, always a bad file.
        raise FirmwareError(f"malformed ELF ({type(exc).__name__}: {exc})", path=path) from None
    except OSError as exc:
        if exc.errno != errno.EINVAL:
            raise FirmwareError(f"cannot read: {exc.strerror or exc}", path=path) from None
        # pyelftools seeking to an offset no file has (a section name's sh_name added to the string table's
        # sh_offset, ELF64's 64-bit fields: past what lseek takes); a fuzzer's find
        raise FirmwareError(
            f"malformed ELF: an offset in it is not a position in any file ({exc.strerror})", path=path
        ) from None


def open_elf(path: str | os.PathLike[str]) -> IO[bytes]:
    """``path`` opened for reading; a FIFO, a device or a directory is refused at once (never a hang)."""
    p = str(path)
    try:
        return open_regular(p)
    except OSError as exc:
        raise FirmwareError(f"cannot open: {exc.strerror}", path=p) from None


def read_elf(path: str | os.PathLike[str]) -> ElfImage:
    """Read the headers (not the segment contents) of ``path``."""
    with open_elf(path) as stream:
        return read_elf_stream(stream, str(path))


def read_elf_stream(stream: IO[bytes], path: str) -> ElfImage:
    stream.seek(0, os.SEEK_END)
    file_size = stream.tell()
    stream.seek(0)
    magic = stream.read(4)
    if magic != ELF_MAGIC:
        raise FirmwareError(
            f"not an ELF file: it starts with {magic.hex(' ') or 'nothing'}, not 7f 45 4c 46", path=path, offset=0
        )
    stream.seek(0)
    with _guard(path):
        elf = ELFFile(stream)
        header = elf.header
        _check_header_tables(elf, file_size, path)
        segments = tuple(_segments(elf, file_size, path))
        table = _find_section(elf, RESOURCE_TABLE_SECTION, file_size, path)
        return ElfImage(
            path=path,
            elf_class=int(elf.elfclass),
            little_endian=bool(elf.little_endian),
            machine=str(header["e_machine"]).removeprefix("EM_"),
            elf_type=str(header["e_type"]).removeprefix("ET_"),
            entry=int(header["e_entry"]),
            file_size=file_size,
            segments=segments,
            resource_table=table,
        )


# The smallest program and section header entries (ELF32, ELF64): the gABI's Elf32_Phdr/Elf64_Phdr, _Shdr.
_PHDR_SIZE = {32: 32, 64: 56}
_SHDR_SIZE = {32: 40, 64: 64}


def _check_header_tables(elf: Any, file_size: int, path: str) -> None:
    """The program and section header tables lie within the file, their entries no smaller than the gABI's:
    pyelftools reads entry i at e_phoff + i * e_phentsize without looking, so an e_phentsize of 0 with extended
    numbering (e_phnum 0xffff, the count in section 0's sh_info) was 1.6 billion segments of the same bytes, and
    the loader ran out of memory (a fuzzer's find)."""
    header = elf.header
    for what, offset_field, size_field, minimum, count in (
        ("program", "e_phoff", "e_phentsize", _PHDR_SIZE[elf.elfclass], elf.num_segments),
        ("section", "e_shoff", "e_shentsize", _SHDR_SIZE[elf.elfclass], elf.num_sections),
    ):
        n = count()  # (extended numbering read from section 0; no section table: 0 sections)
        if n == 0:
            continue
        offset, entsize = int(header[offset_field]), int(header[size_field])
        if entsize < minimum:
            raise FirmwareError(
                f"{size_field} {entsize} is smaller than an ELF{elf.elfclass} {what} header ({minimum} bytes)",
                path=path,
                offset=offset,
            )
        if offset + n * entsize > file_size:
            raise FirmwareError(
                f"the {what} header table ({n} entries of {entsize} bytes at {offset_field} {offset:#x}) runs past "
                f"the end of the file ({file_size:#x} bytes)",
                path=path,
                offset=offset,
            )


def _segments(elf: Any, file_size: int, path: str) -> Iterator[Segment]:
    for index in range(elf.num_segments()):
        h = elf.get_segment(index).header  # segment objects read their data only when asked
        ptype, label = _ptype(h["p_type"])
        seg = Segment(
            index=index,
            type=ptype,
            type_label=label,
            offset=int(h["p_offset"]),
            vaddr=int(h["p_vaddr"]),
            paddr=int(h["p_paddr"]),
            filesz=int(h["p_filesz"]),
            memsz=int(h["p_memsz"]),
            flags=int(h["p_flags"]),
        )
        if seg.loadable and seg.offset + seg.filesz > file_size:
            raise FirmwareError(
                f"segment {index} ({seg.filesz:#x} bytes at file offset {seg.offset:#x}) runs past the end of "
                f"the file ({file_size:#x} bytes): the file is truncated",
                path=path,
                offset=seg.offset,
            )
        yield seg


def _ptype(value: Any) -> tuple[int, str]:
    """(p_type, its name). pyelftools gives a known type as its name (the machine's own for processor-specific
    values: 0x70000001 is PT_ARM_EXIDX on ARM, PT_MIPS_REGINFO on MIPS) and an unknown one as the number."""
    if isinstance(value, int):
        try:
            return value, SegmentType(value).name
        except ValueError:
            return value, ""
    name = str(value)
    for table in _P_TYPE_TABLES:
        number = table.get(name)
        if isinstance(number, int):
            return number, name
    return -1, name  # a name pyelftools knows but its tables do not (never seen)


_P_TYPE_TABLES = [getattr(_elf_enums, n) for n in sorted(dir(_elf_enums)) if n.startswith("ENUM_P_TYPE_")]


def _find_section(elf: Any, name: str, file_size: int, path: str) -> Section | None:
    found = elf.get_section_by_name(name)
    if found is None:
        return None
    header = found.header
    section = Section(
        name=name,
        addr=int(header["sh_addr"]),
        offset=int(header["sh_offset"]),
        size=int(header["sh_size"]),
        nobits=header["sh_type"] == "SHT_NOBITS",
    )
    if section.nobits:
        raise FirmwareError(f"section {name} is NOBITS (like .bss): it has no bytes in the file", path=path)
    if section.offset + section.size > file_size:
        raise FirmwareError(
            f"section {name} ({section.size:#x} bytes at file offset {section.offset:#x}) runs past the end "
            f"of the file ({file_size:#x} bytes)",
            path=path,
            offset=section.offset,
        )
    return section


def read_bytes(path: str | os.PathLike[str], offset: int, size: int) -> bytes:
    """``size`` bytes of the file at ``offset`` (the caller checked the range against the file size)."""
    with open_elf(path) as stream:
        stream.seek(offset)
        data = stream.read(size)
    if len(data) != size:
        raise FirmwareError(f"wanted {size} bytes, the file has {len(data)} there", path=str(Path(path)), offset=offset)
    return data
