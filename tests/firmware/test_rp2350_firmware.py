"""The RP2350 build of the uart_echo firmware (firmware/boards/rp2350, firmware/build/rp2350/uart_echo.elf): the
same C rpmsg remote, serial link and mirror as on QEMU, linked as a RAM image for the RP2350's UART boot ROM.
There is no RP2350 here: these check the image the way the boot ROM will take it (IMAGE_DEF in the first 4 KiB,
vector table at 0x20000000: SP, PC), its layout, and that it programs the registers of the chip's datasheet.
tests/firmware/test_rp2350_bootrom.py loads it through the boot ROM protocol (emulated)."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from remoteproc.elf import read_elf
from remoteproc.platforms.rp2350 import IMAGE_MAX, MIN_IMAGE_DEF, SRAM_BASE, find_image_def, flat_image

pytestmark = pytest.mark.toolchain

SRAM_END = 0x20080000  # 512 KiB of SRAM; the scratch banks X and Y follow, up to 0x20082000 (the stack)


@pytest.fixture(scope="module")
def rp2350_elf(example_firmware: Path) -> Path:  # example_firmware: make has built everything, the RP2350 too
    elf = example_firmware.parent / "rp2350" / "uart_echo.elf"
    assert elf.is_file(), "make -C firmware did not build the RP2350 firmware"
    return elf


def symbols(elf: Path) -> dict[str, tuple[int, int]]:
    """name -> (address, size), from arm-none-eabi-nm."""
    out = subprocess.run(["arm-none-eabi-nm", "-S", str(elf)], check=True, capture_output=True, text=True).stdout
    table: dict[str, tuple[int, int]] = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4:
            table[fields[3]] = (int(fields[0], 16), int(fields[1], 16))
        elif len(fields) == 3:
            table[fields[2]] = (int(fields[0], 16), 0)
    return table


def test_rproc_info_reads_it(rp2350_elf: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from remoteproc.cli import main

    assert main(["info", str(rp2350_elf)]) == 0
    out = capsys.readouterr().out
    assert "ELF32 little-endian ARM EXEC" in out and "0x20000000" in out


def test_image_def_right_after_the_vector_table(rp2350_elf: Path) -> None:
    notes: list[str] = []
    image = flat_image(rp2350_elf, on_note=notes.append)
    assert notes == []  # the firmware carries its own IMAGE_DEF: the loader adds nothing
    assert find_image_def(image) == 16 * 4 and image[64:84] == MIN_IMAGE_DEF
    sym = symbols(rp2350_elf)
    assert sym["__embedded_block_end"][0] - SRAM_BASE <= 4096


def test_vector_table_sp_and_pc(rp2350_elf: Path) -> None:
    """What the boot ROM takes from the start of the image when the IMAGE_DEF names no vector table or entry point
    (pico-bootrom-rp2350 varm_launch_image.c): VTOR = 0x20000000, SP = word 0, PC = word 1."""
    image = flat_image(rp2350_elf)
    vectors = struct.unpack_from("<16I", image)
    sp, pc = vectors[0], vectors[1]
    sym = symbols(rp2350_elf)
    assert sp == 0x20082000 == sym["__stack_top"][0]  # the top of scratch Y, pico-sdk's __StackTop
    assert SRAM_BASE < sp <= SRAM_END + 8 * 1024 and sp % 8 == 0
    assert pc & 1, "the reset vector must have the Thumb bit set"
    assert SRAM_BASE + 84 <= pc & ~1 < SRAM_BASE + len(image)
    assert pc & ~1 == sym["reset_handler"][0] and pc == read_elf(rp2350_elf).entry
    for n in (2, 3, 4, 5, 6, 7, 11, 12, 14, 15):  # NMI .. SysTick: all go to a handler in the image
        assert vectors[n] & 1 and SRAM_BASE < vectors[n] & ~1 < SRAM_BASE + len(image), n


def test_linked_at_0x20000000_within_sram(rp2350_elf: Path) -> None:
    elf = read_elf(rp2350_elf)
    loadable = [s for s in elf.segments if s.loadable]
    assert min(s.paddr for s in loadable) == SRAM_BASE
    assert all(s.paddr == s.vaddr for s in loadable)  # a RAM image: everything runs where it is loaded
    assert max(s.paddr + s.memsz for s in loadable) <= SRAM_END  # .bss included; the stack has the scratch banks
    image = flat_image(rp2350_elf)
    assert len(image) <= IMAGE_MAX
    sym = symbols(rp2350_elf)
    assert sym["__bss_end"][0] <= SRAM_END and sym["__bss_start"][0] >= SRAM_BASE + len(image)


def test_it_programs_the_rp2350_registers(rp2350_elf: Path) -> None:
    """The constants its functions load (literal pools): UART0, the XOSC enable key, PLL_USB; and the same C
    library as the QEMU build."""
    image = flat_image(rp2350_elf)
    sym = symbols(rp2350_elf)

    def words(name: str) -> set[int]:
        addr, size = sym[name]
        code = image[addr - SRAM_BASE : addr - SRAM_BASE + size]
        return {struct.unpack_from("<I", code, off)[0] for off in range(0, size - 3, 2)}

    uart = words("board_uart_init") | words("board_uart_putc") | words("board_uart_getc") | words("rx_drain")
    assert 0x40070000 in uart  # UART0 (pico-sdk addressmap.h UART0_BASE)
    clocks = words("board_clock_init")
    assert 0x00FAB000 in clocks  # XOSC CTRL ENABLE = 0xfab << 12 (through the SET alias)
    assert 0x40058000 in clocks  # PLL_USB
    for name in ("main", "rpmsg_remote_init", "rpmsg_send", "sl_init", "mirror_apply", "board_clock_init"):
        assert name in sym, name
