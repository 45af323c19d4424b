"""The firmware library speaking rpmsg over the serial link on QEMU's emulated UART (firmware/examples/uart_echo):
no shared memory, each side its own window, the link carrying every write. Echo of sizes up to the maximum, the
limit, a pipelined stream with every payload checked."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from remoteproc.platforms.qemu_uart import QemuUartSession
from rpmsg.errors import MessageTooLong

pytestmark = pytest.mark.toolchain


@pytest.fixture(scope="module")
def session(example_firmware: Path) -> QemuUartSession:  # example_firmware: make has built every example
    with QemuUartSession(example_firmware.parent / "uart_echo.elf") as s:
        yield s  # type: ignore[misc]


def test_echo_every_kind_of_size_and_the_limit(session: QemuUartSession) -> None:
    ep = session.rpmsg.open("rpmsg-echo", timeout=30)  # announced through the link
    ep.settimeout(30)
    rng = random.Random(4)
    for size in (1, 2, 15, 16, 17, 100, 255, 256, 257, 300, 495, 496):
        payload = rng.randbytes(size)
        ep.send(payload)
        assert ep.recv() == payload
    with pytest.raises(MessageTooLong):
        ep.send(bytes(497))
    ep.close()


def test_pipelined_stream_every_payload_checked(session: QemuUartSession) -> None:
    ep = session.rpmsg.open("rpmsg-echo", timeout=30)
    ep.settimeout(30)
    total, window, sent, received = 200, 8, 0, 0
    while received < total:
        while sent < total and sent - received < window:
            ep.send(sent.to_bytes(4, "little") * 16)
            sent += 1
        assert ep.recv() == received.to_bytes(4, "little") * 16
        received += 1
    ep.close()
    assert session.link.core.bad_frames == 0
