"""The ELF loader: ELF32 Arm and ELF64 images compiled here, a 16 MiB segment with progress, .bss zeroed, and
broken images refused before anything is written, each with its own message."""

from __future__ import annotations

import shutil
import struct
import subprocess
from itertools import pairwise
from pathlib import Path

import pytest

from remoteproc.elf import read_elf
from remoteproc.errors import FirmwareError
from remoteproc.loader import load_segments
from transports.memory import MappedRegion, RegionMemory

HERE = Path(__file__).parent / "fw"


def memory(*regions: tuple[str, int, int]) -> RegionMemory:
    return RegionMemory([MappedRegion(n, da, size, bytearray(b"\xee" * size)) for n, da, size in regions])


AN505 = (("ssram-0", 0x10000000, 4 << 20), ("ssram-1", 0x38000000, 2 << 20), ("mps.ram", 0x80000000, 16 << 20))


def test_example_firmware_segments_land_at_paddr(example_firmware: Path) -> None:
    mem = memory(*AN505)
    image = read_elf(example_firmware)
    placed = load_segments(example_firmware, image, mem)
    data = example_firmware.read_bytes()
    for seg in image.segments:
        if seg.loadable and seg.memsz:
            assert mem.read(seg.paddr, seg.filesz) == data[seg.offset : seg.offset + seg.filesz]
            assert mem.read(seg.paddr + seg.filesz, seg.memsz - seg.filesz) == bytes(seg.memsz - seg.filesz)
    assert [p.da for p in placed] == [s.paddr for s in image.segments if s.loadable and s.memsz]


@pytest.fixture(scope="module")
def big_elf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cc = shutil.which("arm-none-eabi-gcc")
    assert cc, "arm-none-eabi-gcc missing: run ./scripts/setup"
    out = tmp_path_factory.mktemp("big") / "big.elf"
    subprocess.run(
        [
            cc,
            "-mcpu=cortex-m33",
            "-mthumb",
            "-Os",
            "-nostdlib",
            "-T",
            str(HERE / "big.ld"),
            "-o",
            str(out),
            str(HERE / "big.c"),
        ],
        check=True,
    )
    return out


def test_sixteen_mib_segment_with_progress(big_elf: Path) -> None:
    mem = memory(("code", 0x10000000, 1 << 20), ("ram", 0x20000000, 1 << 20), ("big", 0x60000000, 32 << 20))
    image = read_elf(big_elf)
    calls: list[tuple[int, int]] = []
    load_segments(big_elf, image, mem, progress=lambda done, total: calls.append((done, total)))
    assert mem.read(0x60000000, 16 << 20) == b"\x5a" * (16 << 20)
    assert len(calls) >= 16 and calls[-1][0] == calls[-1][1]
    assert all(a[0] <= b[0] for a, b in pairwise(calls))


def test_elf64_image(tmp_path: Path) -> None:
    src = tmp_path / "fw64.c"
    src.write_text(
        "unsigned long counter = 0x1122334455667788UL;\nunsigned long zero[64];\n"
        "void _start(void) { for (;;) zero[0] += counter; }\n"
    )
    script = tmp_path / "fw64.ld"
    script.write_text(
        "SECTIONS { . = 0x10000000; .text : { *(.text*) } . = 0x38000000; .data : { *(.data*) } "
        ".bss : { *(.bss*) *(COMMON) } /DISCARD/ : { *(.comment) *(.note*) *(.eh_frame*) } }\n"
    )
    elf = tmp_path / "fw64.elf"
    subprocess.run(
        [
            "gcc",
            "-O1",
            "-nostdlib",
            "-static",
            "-no-pie",
            "-fno-pic",
            "-Wl,--build-id=none",
            "-T",
            str(script),
            "-o",
            str(elf),
            str(src),
        ],
        check=True,
    )
    image = read_elf(elf)
    assert image.elf_class == 64
    mem = memory(*AN505)
    load_segments(elf, image, mem)
    assert struct.unpack("<Q", mem.read(0x38000000, 8))[0] == 0x1122334455667788
    assert mem.read(0x38000000 + 32, 64 * 8 - 32) == bytes(64 * 8 - 32)  # .bss part zeroed


def test_segment_outside_every_region_changes_nothing(example_firmware: Path) -> None:
    mem = memory(AN505[0], AN505[1])  # no mps.ram
    with pytest.raises(FirmwareError) as err:
        load_segments(example_firmware, read_elf(example_firmware), mem)
    message = str(err.value)
    assert "segment 2 (0x80000000..0x80002000, 0x2000 bytes) is not inside any memory region" in message
    assert "ssram-0 0x10000000..0x10400000" in message
    assert mem.read(0x10000000, 16) == b"\xee" * 16  # checked before writing: nothing was loaded


def test_overlapping_segments(example_firmware: Path, tmp_path: Path) -> None:
    data = bytearray(example_firmware.read_bytes())
    phoff = struct.unpack_from("<I", data, 0x1C)[0]
    struct.pack_into("<I", data, phoff + 2 * 32 + 12, 0x10000010)  # segment 2's p_paddr into segment 0
    struct.pack_into("<I", data, phoff + 2 * 32 + 8, 0x10000010)  # and its p_vaddr
    bad = tmp_path / "overlap.elf"
    bad.write_bytes(bytes(data))
    code = read_elf(example_firmware).segments[0]
    with pytest.raises(FirmwareError) as err:
        load_segments(bad, read_elf(bad), memory(*AN505))
    assert f"segments 0 (0x10000000..{0x10000000 + code.memsz:#x}) and 2 (0x10000010..0x10002010) overlap" in str(
        err.value
    )


def test_filesz_larger_than_memsz(example_firmware: Path, tmp_path: Path) -> None:
    data = bytearray(example_firmware.read_bytes())
    phoff = struct.unpack_from("<I", data, 0x1C)[0]
    struct.pack_into("<I", data, phoff + 2 * 32 + 20, 0x10)  # p_memsz of segment 2 below its filesz
    bad = tmp_path / "memsz.elf"
    bad.write_bytes(bytes(data))
    with pytest.raises(FirmwareError, match="segment 2: filesz 0xc8 is larger than memsz 0x10"):
        load_segments(bad, read_elf(bad), memory(*AN505))


def test_no_loadable_segment_is_refused(example_firmware: Path, tmp_path: Path) -> None:
    """An ELF without program headers loads nothing: refused as Linux's rproc_elf_sanity_check does."""
    data = bytearray(example_firmware.read_bytes())
    struct.pack_into("<H", data, 44, 0)  # e_phnum
    bad = tmp_path / "nophdr.elf"
    bad.write_bytes(bytes(data))
    with pytest.raises(FirmwareError, match=r"nophdr.elf: no loadable segment \(no PT_LOAD with a memsz\)"):
        load_segments(bad, read_elf(bad), memory(*AN505))


def test_segment_wrapping_past_4_gib(example_firmware: Path, tmp_path: Path) -> None:
    data = bytearray(example_firmware.read_bytes())
    phoff = struct.unpack_from("<I", data, 0x1C)[0]
    struct.pack_into("<I", data, phoff + 2 * 32 + 12, 0xFFFFF000)  # segment 2 (memsz 0x2000) at the top
    bad = tmp_path / "wrap.elf"
    bad.write_bytes(bytes(data))
    top = memory(*AN505[:2], ("top", 0xFFFFF000, 0x1000))
    with pytest.raises(FirmwareError, match="ends at 0x100001000, past the top of the 32-bit address space"):
        load_segments(bad, read_elf(bad), top)
