"""The RP2350 UART boot loader (remoteproc/platforms/rp2350.py): the flat image and its IMAGE_DEF check, then the
whole boot ROM protocol — splash, knock, w with read-back, x — against an emulated boot ROM
(firmware/examples/bootrom_emu) on QEMU's emulated UART."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from remoteproc.platforms.rp2350 import CHUNK, MIN_IMAGE_DEF, BootRomError, UartBootRom, find_image_def, flat_image

pytestmark = pytest.mark.toolchain

IMAGE_SOURCE = """
.syntax unified
.section .text
.global _start
_start:
.word 0x20082000, 0x20000009
{block}
.fill {fill}, 1, 0xa5
"""


def build_image(tmp_path: Path, *, with_block: bool = True, fill: int = 1000, base: int = 0x20000000) -> Path:
    block = ".word 0xffffded3, 0x10210142, 0x000001ff, 0x00000000, 0xab123579" if with_block else ""
    src = tmp_path / "image.s"
    src.write_text(IMAGE_SOURCE.format(block=block, fill=fill))
    elf = tmp_path / "image.elf"
    subprocess.run(
        ["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-nostdlib", f"-Wl,-Ttext={base:#x}", "-Wl,-e,_start",
         str(src), "-o", str(elf)],
        check=True,
    )  # fmt: skip
    return elf


def test_flat_image_and_image_def(tmp_path: Path) -> None:
    notes: list[str] = []
    image = flat_image(build_image(tmp_path), on_note=notes.append)
    assert image[8:28] == MIN_IMAGE_DEF and find_image_def(image) == 8
    assert len(image) == 8 + 20 + 1000 and notes == []  # it had its own block: nothing added, nothing said
    # Without one, the block goes right after the code (the image grows to hold it) ...
    image = flat_image(build_image(tmp_path, with_block=False), on_note=notes.append)
    assert notes == ["added the minimal IMAGE_DEF at 0x200003f0 (the firmware had none)"]
    assert len(image) == 1008 + 20 and image[1008:] == MIN_IMAGE_DEF and find_image_def(image) == 1008
    # ... unless the code fills the first 4 KiB
    with pytest.raises(BootRomError, match=r"no IMAGE_DEF block in the first 4 KiB, and no free .*\.embedded_block"):
        flat_image(build_image(tmp_path, with_block=False, fill=4096))
    with pytest.raises(BootRomError, match=r"outside the RAM image window.*link the firmware at 0x20000000"):
        flat_image(build_image(tmp_path, base=0x10000000))


@pytest.fixture
def bootrom(example_firmware: Path) -> Iterator[serial.Serial]:
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    qemu = subprocess.Popen(
        ["qemu-system-arm", "-machine", "mps2-an505", "-kernel", str(example_firmware.parent / "bootrom_emu.elf"),
         "-chardev", f"socket,id=uart,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
         "-serial", "chardev:uart", "-display", "none", "-monitor", "none"],
        stdin=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                link = serial.serial_for_url(f"socket://127.0.0.1:{port}", timeout=0.05)
                break
            except serial.SerialException:
                assert time.monotonic() < deadline and qemu.poll() is None, "QEMU's UART did not come up"
                time.sleep(0.05)
        yield link
        link.close()
    finally:
        qemu.kill()
        qemu.wait()


def test_load_verify_and_execute_through_the_boot_rom_protocol(tmp_path: Path, bootrom: serial.Serial) -> None:
    image = flat_image(build_image(tmp_path, fill=2000))
    rom = UartBootRom(bootrom, timeout=10)
    rom.connect(timeout=20)  # splash, knock, 'n'
    seen: list[tuple[int, int]] = []
    rom.load(image, progress=lambda done, total: seen.append((done, total)))
    padded = image + bytes(-len(image) % CHUNK)
    assert seen[-1] == (2 * len(padded), 2 * len(padded))  # written, then read back
    rom.execute()
    line = b""
    deadline = time.monotonic() + 10
    while b"\n" not in line and time.monotonic() < deadline:
        line += bootrom.read(64)
    # (then the built-in echo firmware starts its serial link: its frames follow the line)
    assert line.split(b"\n")[0] == f"EXEC {len(padded):08x} {zlib.crc32(padded):08x}".encode()


def test_the_rp2350_firmware_through_the_boot_rom_protocol(example_firmware: Path, bootrom: serial.Serial) -> None:
    """The real RP2350 build of uart_echo (firmware/build/rp2350): written, read back, and what the boot ROM would
    execute is exactly its flat image."""
    image = flat_image(example_firmware.parent / "rp2350" / "uart_echo.elf")
    rom = UartBootRom(bootrom, timeout=10)
    rom.connect(timeout=20)
    rom.load(image)
    rom.execute()
    padded = image + bytes(-len(image) % CHUNK)
    line = b""
    deadline = time.monotonic() + 10
    while b"\n" not in line and time.monotonic() < deadline:
        line += bootrom.read(64)
    assert line.split(b"\n")[0] == f"EXEC {len(padded):08x} {zlib.crc32(padded):08x}".encode()


def test_read_back_mismatch_names_the_address(tmp_path: Path, bootrom: serial.Serial) -> None:
    class Corrupting:
        """Flips one byte of what the boot ROM reads back."""

        def __init__(self, port: serial.Serial) -> None:
            self.port = port
            self.reads = 0

        def read(self, size: int = 1) -> bytes:
            data: bytes = self.port.read(size)
            if len(data) == CHUNK and self.reads == 1:
                data = data[:5] + bytes([data[5] ^ 0xFF]) + data[6:]
            if len(data) == CHUNK:
                self.reads += 1
            return data

        def write(self, data: bytes) -> int | None:
            return int(self.port.write(data) or 0)

    rom = UartBootRom(Corrupting(bootrom), timeout=10)
    rom.connect(timeout=20)
    with pytest.raises(BootRomError, match="read-back differs at 0x20000025"):
        rom.load(flat_image(build_image(tmp_path)))


def test_cli_uart_boot(tmp_path: Path, bootrom: serial.Serial, capsys: pytest.CaptureFixture[str]) -> None:
    from remoteproc.cli import main

    port = bootrom.port  # the socket:// URL: the CLI opens its own connection
    bootrom.close()
    elf = build_image(tmp_path)
    assert main(["uart-boot", str(elf), "--port", port, "--timeout", "20"]) == 0
    captured = capsys.readouterr()
    assert "read back and verified; executing" in captured.out and "note" not in captured.err
    assert main(["uart-boot", str(build_image(tmp_path, with_block=False, fill=4096)), "--port", port]) == 1
    assert "no IMAGE_DEF block in the first 4 KiB" in capsys.readouterr().err


def test_cli_uart_boot_adds_the_missing_image_def(
    tmp_path: Path, bootrom: serial.Serial, capsys: pytest.CaptureFixture[str]
) -> None:
    """A firmware without an IMAGE_DEF: the CLI says where the loader put one, and the boot ROM gets it."""
    from remoteproc.cli import main

    port = bootrom.port
    bootrom.close()
    elf = build_image(tmp_path, with_block=False, fill=100)
    assert main(["uart-boot", str(elf), "--port", port, "--timeout", "20"]) == 0
    captured = capsys.readouterr()
    assert "rproc: note: added the minimal IMAGE_DEF at 0x2000006c (the firmware had none)" in captured.err
    assert "loaded 128 bytes, read back and verified; executing" in captured.out  # 108 + 20, padded to 32


def test_cli_load_rp2350_uart_boots_then_talks(
    tmp_path: Path, bootrom: serial.Serial, capsys: pytest.CaptureFixture[str]
) -> None:
    """`rproc load --platform rp2350-uart`: the boot ROM protocol, then rpmsg over the serial link on the same port
    (after 'x' the emulated chip runs its built-in echo firmware in the loaded image's place)."""
    from remoteproc.cli import main

    port = bootrom.port
    bootrom.close()
    elf = build_image(tmp_path, with_block=False)  # the loader adds the IMAGE_DEF and the CLI says so
    argv = ["load", str(elf), "--platform", "rp2350-uart", "--port", port, "--timeout", "30"]
    assert main([*argv, "--send", "rpmsg-echo:hello over the wire"]) == 0
    captured = capsys.readouterr()
    assert "channels: rpmsg-echo at 0x400" in captured.out
    assert "rpmsg-echo <- b'hello over the wire'" in captured.out
    assert "rproc: note: added the minimal IMAGE_DEF at 0x200003f0 (the firmware had none)" in captured.err


def test_cli_uart_boot_json(tmp_path: Path, bootrom: serial.Serial, capsys: pytest.CaptureFixture[str]) -> None:
    """--json: one JSON document on stdout with what the text line says, the added IMAGE_DEF among its notes (and
    on stderr, as without --json)."""
    from remoteproc.cli import main

    port = bootrom.port
    bootrom.close()
    elf = build_image(tmp_path, with_block=False, fill=100)
    assert main(["uart-boot", str(elf), "--port", port, "--timeout", "20", "--json"]) == 0
    captured = capsys.readouterr()
    note = "added the minimal IMAGE_DEF at 0x2000006c (the firmware had none)"
    assert json.loads(captured.out) == {
        "port": port,
        "baud": 1_000_000,
        "address": "0x20000000",
        "size": 128,
        "verified": True,
        "executing": True,
        "notes": [note],
    }
    assert f"rproc: note: {note}" in captured.err


def test_cli_load_rp2350_uart_json(tmp_path: Path, bootrom: serial.Serial, capsys: pytest.CaptureFixture[str]) -> None:
    """Before: `load --platform rp2350-uart --json` printed its text lines, not JSON."""
    from remoteproc.cli import main

    port = bootrom.port
    bootrom.close()
    argv = ["load", str(build_image(tmp_path)), "--platform", "rp2350-uart", "--port", port, "--timeout", "30"]
    assert main([*argv, "--send", "rpmsg-echo:hello over the wire", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["channels"] == {"rpmsg-echo": "0x400"}
    assert report["replies"] == [{"channel": "rpmsg-echo", "reply": b"hello over the wire".hex()}]
