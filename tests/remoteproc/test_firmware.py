"""Reading firmware: the compiled example, and broken files that each get their own precise message."""

from __future__ import annotations

import contextlib
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from remoteproc import FirmwareError, firmware_info
from resource_table import FW_RSC_ADDR_ANY, Carveout, Severity, Trace, Vdev


def test_example_firmware(example_firmware: Path) -> None:
    info = firmware_info(example_firmware)
    assert (info.elf.elf_class, info.elf.machine, info.elf.elf_type, info.elf.little_endian) == (
        32,
        "ARM",
        "EXEC",
        True,
    )
    assert info.elf.entry & 1  # a Thumb entry point
    loads = [s for s in info.elf.segments if s.loadable]
    assert any(s.paddr == 0x10000000 for s in loads)  # code where the M33 reads its vector table
    assert info.table is not None
    carveout, trace, vdev = info.table.entries
    assert carveout == Carveout(da=0x80100000, pa=0x80100000, len=0x100000, name="vdev0buffer")
    assert isinstance(trace, Trace) and trace.name == "trace0" and 0x80000000 <= trace.da < 0x81000000
    assert isinstance(vdev, Vdev) and vdev.id == 7 and vdev.dfeatures == 1
    assert [r.da for r in vdev.vrings] == [FW_RSC_ADDR_ANY, FW_RSC_ADDR_ANY]
    assert info.findings == ()


def copy(src: Path, tmp_path: Path, name: str = "fw.elf") -> Path:
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def section_header_offset(path: Path, name: str) -> tuple[int, int]:
    """(file offset of the section header, file offset of the section's bytes)."""
    with open(path, "rb") as f:
        elf = ELFFile(f)
        for index, section in enumerate(elf.iter_sections()):
            if section.name == name:
                return elf.header["e_shoff"] + index * elf.header["e_shentsize"], section["sh_offset"]
    raise AssertionError(name)


def test_not_an_elf(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(FirmwareError, match=r"notes.txt: not an ELF file: it starts with 68 65 6c 6c, not 7f 45"):
        firmware_info(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FirmwareError, match="cannot open: No such file"):
        firmware_info(tmp_path / "nope.elf")


def test_truncated_header(example_firmware: Path, tmp_path: Path) -> None:
    path = tmp_path / "short.elf"
    path.write_bytes(example_firmware.read_bytes()[:30])
    with pytest.raises(FirmwareError, match=r"short\.elf: malformed ELF"):
        firmware_info(path)


def test_truncated_segment(example_firmware: Path, tmp_path: Path) -> None:
    data = example_firmware.read_bytes()
    info = firmware_info(example_firmware)
    code = next(s for s in info.elf.segments if s.loadable and s.filesz)
    path = tmp_path / "cut.elf"
    path.write_bytes(data[: code.offset + code.filesz // 2])
    with pytest.raises(FirmwareError) as err:
        firmware_info(path)
    assert "runs past the end of the file" in str(err.value) or "malformed ELF" in str(err.value)


def test_table_offset_past_its_end(example_firmware: Path, tmp_path: Path) -> None:
    path = copy(example_firmware, tmp_path)
    _, table_at = section_header_offset(path, ".resource_table")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, table_at + 16 + 4, 0x4000)  # offset[1]
    path.write_bytes(bytes(data))
    with pytest.raises(FirmwareError) as err:
        firmware_info(path)
    message = str(err.value)
    assert "section .resource_table: entry 1, field offset[1], offset 0x14" in message
    assert "entry offset 0x4000 is past the end of the table (0xc8 bytes)" in message
    assert err.value.offset == table_at + 0x14


def test_table_with_vdev_past_its_end(example_firmware: Path, tmp_path: Path) -> None:
    path = copy(example_firmware, tmp_path)
    _, table_at = section_header_offset(path, ".resource_table")
    data = bytearray(path.read_bytes())
    vdev_at = struct.unpack_from("<I", data, table_at + 16 + 8)[0]
    struct.pack_into("<I", data, table_at + vdev_at + 20, 0x1000)  # config_len
    path.write_bytes(bytes(data))
    with pytest.raises(FirmwareError, match=r"entry 2, field config_len.*vdev needs 4164 bytes"):
        firmware_info(path)


def test_table_outside_every_segment(example_firmware: Path, tmp_path: Path) -> None:
    path = copy(example_firmware, tmp_path)
    shdr, _ = section_header_offset(path, ".resource_table")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, shdr + 12, 0x90000000)  # Elf32_Shdr.sh_addr
    path.write_bytes(bytes(data))
    info = firmware_info(path)
    [finding] = info.findings
    assert finding.severity is Severity.ERROR
    assert "0x90000000..0x900000c8 is not inside any loadable segment" in finding.message


def test_table_section_without_bytes(example_firmware: Path, tmp_path: Path) -> None:
    path = copy(example_firmware, tmp_path)
    shdr, _ = section_header_offset(path, ".resource_table")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, shdr + 4, 8)  # sh_type = SHT_NOBITS
    path.write_bytes(bytes(data))
    with pytest.raises(FirmwareError, match=r"section \.resource_table is NOBITS"):
        firmware_info(path)


def test_table_section_past_end_of_file(example_firmware: Path, tmp_path: Path) -> None:
    path = copy(example_firmware, tmp_path)
    shdr, _ = section_header_offset(path, ".resource_table")
    data = bytearray(path.read_bytes())
    struct.pack_into("<I", data, shdr + 20, 0x100000)  # sh_size
    path.write_bytes(bytes(data))
    with pytest.raises(FirmwareError, match=r"section .resource_table \(0x100000 bytes at file offset"):
        firmware_info(path)


def test_elf_without_table(tmp_path: Path) -> None:
    import subprocess

    src = tmp_path / "plain.c"
    src.write_text("int answer(void) { return 42; }\n")
    obj = tmp_path / "plain.o"
    subprocess.run(["gcc", "-c", "-o", str(obj), str(src)], check=True)
    info = firmware_info(obj)
    assert info.table is None and info.elf.elf_class == 64 and info.elf.machine == "X86_64"


def test_random_corruption_gives_only_firmware_errors(example_firmware: Path, tmp_path: Path) -> None:
    """Bytes flipped anywhere in the ELF: info either works or raises FirmwareError, nothing else."""
    import random

    rng = random.Random(1234)
    original = example_firmware.read_bytes()
    path = tmp_path / "mutant.elf"
    for _ in range(300):
        data = bytearray(original)
        for _ in range(rng.randint(1, 6)):
            pos = rng.randrange(0, min(len(data), 0x2100) if rng.random() < 0.8 else len(data))
            data[pos] = rng.randrange(256)
        path.write_bytes(bytes(data[: rng.randint(1, len(data))] if rng.random() < 0.2 else data))
        with contextlib.suppress(FirmwareError):
            firmware_info(path)


def patched(src: Path, tmp_path: Path, name: str, *edits: tuple[str, int, int]) -> Path:
    """A copy of ``src`` with each (struct format, file offset, value) written into it."""
    data = bytearray(src.read_bytes())
    for fmt, offset, value in edits:
        struct.pack_into(fmt, data, offset, value)
    out = tmp_path / name
    out.write_bytes(bytes(data))
    return out


def phdr(path: Path, index: int, field: str) -> int:
    """File offset of an Elf32_Phdr field of segment ``index``."""
    phoff = struct.unpack_from("<I", path.read_bytes(), 0x1C)[0]
    return phoff + 32 * index + {"p_vaddr": 8, "p_paddr": 12, "p_filesz": 16, "p_memsz": 20}[field]


def test_segment_problems_are_error_findings_by_the_loaders_rule(example_firmware: Path, tmp_path: Path) -> None:
    """No program headers, two overlapping segments, a segment past 4 GiB: each an ERROR finding of info (and so
    of load and rsc check), worded by the one rule the loader refuses them by."""
    from remoteproc.loader import segment_problems

    fw = example_firmware
    cases = {
        "nophdr.elf": (("<H", 44, 0),),  # e_phnum
        "overlap.elf": (("<I", phdr(fw, 2, "p_paddr"), 0x10000010),),
        "wrap.elf": (("<I", phdr(fw, 2, "p_paddr"), 0xFFFFF000),),  # + memsz 0x2000: past 0x100000000
    }
    expected = {
        "nophdr.elf": "no loadable segment (no PT_LOAD with a memsz): nothing to load",
        "overlap.elf": "segments 0 (0x10000000..",
        "wrap.elf": "segment 2 (0xfffff000 + memsz 0x2000) ends at 0x100001000, past the top of the 32-bit address",
    }
    for name, edits in cases.items():
        path = patched(fw, tmp_path, name, *edits)
        info = firmware_info(path)
        assert info.findings
        assert all(f.severity is Severity.ERROR for f in info.findings)
        assert expected[name] in info.findings[0].message
        assert [f.message for f in info.findings] == segment_problems(info.elf)


def test_resource_table_section_larger_than_the_cap(example_firmware: Path, tmp_path: Path) -> None:
    path = copy(example_firmware, tmp_path)
    shdr, table_at = section_header_offset(path, ".resource_table")
    size = (16 << 20) + 4
    with path.open("r+b") as f:
        f.truncate(table_at + size)  # sparse: the file really has that many bytes
        f.seek(shdr + 20)
        f.write(struct.pack("<I", size))
    with pytest.raises(FirmwareError, match=r"section .resource_table is 16777220 bytes, larger than the 16777216"):
        firmware_info(path)


def _patched(example_firmware: Path, tmp_path: Path, *fields: tuple[str, int, int]) -> Path:
    """A copy of the firmware with ELF32 header fields set: (format, offset, value)."""
    data = bytearray(example_firmware.read_bytes())
    for fmt, offset, value in fields:
        struct.pack_into(fmt, data, offset, value)
    path = tmp_path / "patched.elf"
    path.write_bytes(bytes(data))
    return path


def test_a_header_table_of_zero_sized_entries_is_refused_at_once(example_firmware: Path, tmp_path: Path) -> None:
    """e_phentsize 0 and extended numbering (e_phnum 0xffff: the count in section 0's sh_info) made pyelftools
    read the same bytes as 1.6 billion segments: the fuzzer's 233-byte file (fuzz/seeds/elf) ran the loader out of
    memory. Run in a process of its own with a time limit: before the fix it never ended."""
    seed = Path(__file__).resolve().parents[2] / "fuzz" / "seeds" / "elf" / "oom-phentsize0-xnum"
    code = (
        "import sys; from remoteproc import FirmwareError, firmware_info\n"
        "try:\n    firmware_info(sys.argv[1])\nexcept FirmwareError as exc:\n    print(exc)\n"
    )
    res = subprocess.run([sys.executable, "-c", code, str(seed)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "header table" in res.stdout or "smaller than an ELF32" in res.stdout, res.stdout
    # and each rule on its own, on the example firmware (ELF32: e_phentsize at 0x2a, e_phnum 0x2c, e_shentsize
    # 0x2e, e_shnum 0x30)
    with pytest.raises(FirmwareError, match=r"e_phentsize 0 is smaller than an ELF32 program header \(32 bytes\)"):
        firmware_info(_patched(example_firmware, tmp_path, ("<H", 0x2A, 0)))
    with pytest.raises(FirmwareError, match=r"e_shentsize 8 is smaller than an ELF32 section header \(40 bytes\)"):
        firmware_info(_patched(example_firmware, tmp_path, ("<H", 0x2E, 8)))
    with pytest.raises(FirmwareError, match=r"the section header table \(65520 entries of 40 bytes at e_shoff 0x"):
        firmware_info(_patched(example_firmware, tmp_path, ("<H", 0x30, 0xFFF0)))
    with pytest.raises(FirmwareError, match=r"the program header table \(4000 entries of 32 bytes at e_phoff 0x34\)"):
        firmware_info(_patched(example_firmware, tmp_path, ("<H", 0x2C, 4000)))


def test_an_offset_no_file_has_is_a_firmware_error() -> None:
    """An ELF64 whose section-name string offset added to the string table's sh_offset is a position lseek
    refuses (EINVAL): pyelftools' OSError came out of firmware_info as it was (a fuzzer's find, fuzz/seeds/elf)."""
    seed = Path(__file__).resolve().parents[2] / "fuzz" / "seeds" / "elf" / "crash-seek-einval"
    with pytest.raises(FirmwareError, match=r"malformed ELF: an offset in it is not a position in any file"):
        firmware_info(seed)
