"""The RP2350 loader adds the minimal IMAGE_DEF to a firmware that has none (remoteproc/platforms/rp2350.py): where no
segment claims the bytes — loaded or zero-filled (.bss) — after the vector table, word aligned, in the first
4 KiB, growing the image if need be; with no such room it refuses, saying what to put in the linker script.
The firmware are real ELFs, built here with arm-none-eabi-gcc from C and a linker script."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from remoteproc.elf import read_elf
from remoteproc.platforms.rp2350 import (
    MIN_IMAGE_DEF,
    SRAM_BASE,
    BootRomError,
    find_image_def,
    flat_image,
    image_def_hole,
)

pytestmark = pytest.mark.toolchain

SOURCE = """
#include <stdint.h>
extern uint32_t __stack_top;
void reset_handler(void);
__attribute__((section(".vectors"), used)) static const void *const vectors[16] = { &__stack_top, reset_handler };
static volatile uint8_t scratch[BSS_SIZE];
static const uint8_t table[CODE_FILL] = { 1 };
__attribute__((used, noreturn)) void reset_handler(void)
{
	for (uint32_t i = 0;; i++)
		scratch[i % BSS_SIZE] = table[i % CODE_FILL];
}
"""

# Two program headers so that the gap between the vector table and the code stays out of every segment.
LINK = """
MEMORY {{ SRAM (rwx) : ORIGIN = 0x20000000, LENGTH = 512K }}
PHDRS {{ vectors PT_LOAD; code PT_LOAD; }}
ENTRY(reset_handler)
SECTIONS
{{
  .vectors 0x20000000 : {{ KEEP(*(.vectors)) }} > SRAM :vectors
  .text {code_at} : {{ *(.text*) *(.rodata*) . = ALIGN(4); }} > SRAM :code
  .bss (NOLOAD) : {{ *(.bss*) *(COMMON) . = ALIGN(4); }} > SRAM :code
  __stack_top = 0x20082000;
  /DISCARD/ : {{ *(.ARM.exidx*) *(.comment) }}
}}
"""


def build(tmp_path: Path, *, code_at: str = ".", bss_size: int = 4, code_fill: int = 4) -> Path:
    src, ld, elf = tmp_path / "fw.c", tmp_path / "fw.ld", tmp_path / "fw.elf"
    src.write_text(SOURCE)
    ld.write_text(LINK.format(code_at=code_at))
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-Os", "-std=c11", "-ffreestanding", "-nostdlib",
         "-Wall", "-Wextra", "-Werror", f"-DBSS_SIZE={bss_size}", f"-DCODE_FILL={code_fill}", "-T", str(ld),
         "-o", str(elf), str(src), "-lgcc"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return elf


def claimed_end(elf: Path) -> int:
    """Offset from 0x20000000 of the last byte any segment claims (memsz: .bss included)."""
    return max(s.paddr + s.memsz for s in read_elf(elf).segments if s.loadable) - SRAM_BASE


def test_the_hole_rule() -> None:
    assert image_def_hole([(0, 64)]) == 64  # right after the 16-word vector table
    assert image_def_hole([]) == 64  # never inside the vector table's 16 words
    assert image_def_hole([(0, 101)]) == 104  # word aligned
    assert image_def_hole([(0, 64), (70, 4096)]) is None  # 64..84 would overlap a segment
    assert image_def_hole([(0, 64), (84, 4096)]) == 64  # 20 bytes are enough
    assert image_def_hole([(0, 4076)]) == 4076  # ends at 4096 exactly: still in the first 4 KiB
    assert image_def_hole([(0, 4077)]) is None


def test_added_in_the_gap_after_the_vector_table(tmp_path: Path) -> None:
    elf = build(tmp_path, code_at="0x20000200")
    notes: list[str] = []
    image = flat_image(elf, on_note=notes.append)
    assert notes == ["added the minimal IMAGE_DEF at 0x20000040 (the firmware had none)"]
    assert find_image_def(image) == 0x40 and image[0x40:0x54] == MIN_IMAGE_DEF
    # nothing else moved: the vector table and the code are where the ELF put them
    sp, pc = struct.unpack_from("<2I", image)
    assert sp == 0x20082000 and pc & 1 and 0x20000200 <= pc & ~1 < SRAM_BASE + len(image)
    assert len(image) == max(s.paddr + s.filesz for s in read_elf(elf).segments if s.loadable) - SRAM_BASE
    assert image[0x54:0x200] == bytes(0x200 - 0x54)


def test_bss_counts_as_claimed_and_the_image_grows(tmp_path: Path) -> None:
    elf = build(tmp_path, bss_size=301)  # code right after the vectors, then .bss (zero-filled, not in the file)
    end = claimed_end(elf)
    data_end = max(s.paddr + s.filesz for s in read_elf(elf).segments if s.loadable) - SRAM_BASE
    assert end > data_end + 300  # the .bss really is beyond the file's data
    notes: list[str] = []
    image = flat_image(elf, on_note=notes.append)
    hole = (end + 3) & ~3
    assert notes == [f"added the minimal IMAGE_DEF at {SRAM_BASE + hole:#x} (the firmware had none)"]
    assert len(image) == hole + 20 and image[hole:] == MIN_IMAGE_DEF and find_image_def(image) == hole
    assert image[data_end:hole] == bytes(hole - data_end)


def test_refused_when_code_fills_the_first_4_kib(tmp_path: Path) -> None:
    with pytest.raises(BootRomError) as refused:
        flat_image(build(tmp_path, code_fill=5000))
    message = str(refused.value)
    assert "no IMAGE_DEF block in the first 4 KiB, and no free word-aligned 20 bytes there" in message
    assert "ffffded3 10210142 000001ff 00000000 ab123579" in message
    assert "KEEP(*(.embedded_block)) right after the vector table" in message


def test_refused_when_bss_fills_the_first_4_kib(tmp_path: Path) -> None:
    elf = build(tmp_path, bss_size=8192)  # the file is small: only the .bss stands in the way
    assert claimed_end(elf) > 4096 > max(s.filesz for s in read_elf(elf).segments if s.loadable)
    with pytest.raises(BootRomError, match="no IMAGE_DEF block in the first 4 KiB, and no free"):
        flat_image(elf)
