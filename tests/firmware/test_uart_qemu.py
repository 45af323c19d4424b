"""The firmware library speaking rpmsg over the serial link on QEMU's emulated UART (firmware/examples/uart_echo):
no shared memory, each side its own window, the link carrying every write. Echo of sizes up to the maximum, the
limit, a pipelined stream with every payload checked; between frames the firmware sleeps (docs/mcu.md, "Sleeping")."""

from __future__ import annotations

import os
import random
import time
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


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/PID/stat fields 14 and 15), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_an_idle_link_lets_the_core_sleep(session: QemuUartSession) -> None:
    """Connected, nothing to send or acknowledge (sl_quiet): the firmware waits in WFI for UART0's receive
    interrupt, so the emulator runs no guest code. The polling build (build/poll/uart_echo.elf) kept QEMU at
    25-28 % of a core here, on a loaded machine; a whole core on an idle one."""
    ep = session.rpmsg.open("rpmsg-echo", timeout=30)
    ep.settimeout(30)
    ep.send(b"then nothing")
    assert ep.recv() == b"then nothing"
    time.sleep(0.5)  # the last ACKs go through, the link is quiet
    pid = session.process.pid
    before, start = cpu_seconds(pid), time.monotonic()
    time.sleep(2.0)
    share = (cpu_seconds(pid) - before) / (time.monotonic() - start)
    assert share < 0.05, f"QEMU took {share:.0%} of a core while the link was idle"
    ep.send(b"and again")
    assert ep.recv() == b"and again"
    ep.close()
