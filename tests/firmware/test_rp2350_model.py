"""The RP2350 build of uart_echo running on a Cortex-M33 (the Unicorn engine) with a register model of the RP2350
blocks it uses (tests/firmware/rp2350_model.py): started from its vector table as the boot ROM starts a RAM
image, it must bring up the clocks and UART0 without breaking a rule the model knows, send the serial link's
HELLO at 1 Mbaud, and then echo rpmsg messages from rproc's host over a pty. The model is written from the same
sources as the firmware (pico-sdk's registers, the boot ROM's sequence): it checks the firmware against them and
runs the whole C stack on the RP2350 memory map, not against the silicon."""

from __future__ import annotations

import os
import random
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpmsg.wiring import UART_PROFILE, host_on
from tests.firmware.rp2350_model import CLOCKS, PLL_USB, RESETS, UART0, XOSC, Rp2350Model
from transports.serial_frames import decode_frame
from transports.uart import UartLink, UartWindowLink

pytestmark = pytest.mark.toolchain


@pytest.fixture(scope="module")
def rp2350_elf(example_firmware: Path) -> Path:
    elf = example_firmware.parent / "rp2350" / "uart_echo.elf"
    assert elf.is_file()
    return elf


def test_boot_clocks_uart_and_the_first_hello(rp2350_elf: Path) -> None:
    model = Rp2350Model(rp2350_elf)
    model.run(count=3_000_000)
    assert model.violations == []
    assert model.clk_sys_hz() == 48_000_000 and model.clk_peri_hz() == 48_000_000
    assert model.baud() == 1_000_000  # IBRD 3, FBRD 0 from 48 MHz
    written = [reg for reg, _ in model.writes]
    # the order of the boot ROM's setup: XOSC, then PLL_USB, then the clock switches, then UART0
    assert written.index(XOSC) < written.index(PLL_USB + 0x8) < written.index(UART0 + 0x24)
    before = model.writes[written.index(UART0 + 0x24) - 1]  # UART0 released from reset just before
    assert before[0] == RESETS and not before[1] & (1 << 26)
    assert written.index(CLOCKS + 0x48) < written.index(UART0 + 0x24)  # ... and after clk_peri was set up
    # the serial link's HELLO (docs/uart-link.md): type 1, seq and ack 0, version 2, window 8, max payload 256
    frame = bytes(model.tx[: model.tx.index(0)])
    body = decode_frame(frame)
    assert body[:5] == bytes([1, 0, 0, 0, 0]) and body[5] == 2 and body[6] == 8
    assert struct.unpack_from("<H", body, 7)[0] == 256 and len(body) == 13


@pytest.fixture
def running(rp2350_elf: Path) -> Iterator[tuple[Rp2350Model, UartLink]]:
    master, slave = os.openpty()
    model = Rp2350Model(rp2350_elf, uart_fd=master)
    link = UartLink.open(f"uart://{os.ttyname(slave)}?baud=1000000", rto=0.2)
    model.start()
    try:
        link.wait_connected(30)
        yield model, link
    finally:
        link.close()
        model.stop()
        os.close(master)
        os.close(slave)


def test_rpmsg_echo_through_the_modelled_uart(running: tuple[Rp2350Model, UartLink]) -> None:
    model, link = running
    device = host_on(UartWindowLink(link, UART_PROFILE.size, "host"), UART_PROFILE, wait="block")
    try:
        ep = device.open("rpmsg-echo", timeout=30)  # announced by the firmware's name service
        ep.settimeout(30)
        rng = random.Random(9)
        for size in (1, 2, 15, 16, 17, 100, 255, 256, 257, 300, 495, 496):
            payload = rng.randbytes(size)
            ep.send(payload)
            assert ep.recv() == payload
        sent = received = 0
        while received < 100:  # pipelined, 8 in flight, every payload checked
            while sent < 100 and sent - received < 8:
                ep.send(sent.to_bytes(4, "little") * 32)
                sent += 1
            assert ep.recv() == received.to_bytes(4, "little") * 32
            received += 1
        ep.close()
    finally:
        device.close()
    assert model.error is None and model.violations == []
    assert link.core.bad_frames == 0


def test_the_model_flags_what_the_firmware_must_not_do(rp2350_elf: Path) -> None:
    """The rules hold: each of these would be a firmware bug on the chip."""
    model = Rp2350Model(rp2350_elf)
    model.write(CLOCKS + 0x3C, 0x20)  # clk_sys aux = PLL_USB ...
    model.write(CLOCKS + 0x3C + 0x2000, 0x1)  # ... and onto it, before the PLL runs
    assert any("not running" in v for v in model.violations)
    model.violations.clear()
    assert model.read(RESETS + 0x8) & (1 << 26) == 0  # UART0's reset cannot complete without clk_peri
    model.write(UART0 + 0x24, 3)  # UART0 held in reset
    assert any("held in reset" in v for v in model.violations)
    model.violations.clear()
    model.write(RESETS + 0x3000, 1 << 26)
    model.write(UART0, 0x55)  # a byte sent with nothing set up
    assert any(v.startswith("TX: UART0 not enabled") for v in model.violations)
    model.violations.clear()
    model.write(0x40060000, 1)  # a block this firmware has no business with
    assert model.violations == ["write 0x1 to an unmodelled register 0x40060000"]
