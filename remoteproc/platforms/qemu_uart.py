"""Firmware on QEMU's mps2-an505 talking rpmsg over the emulated UART0 (no shared memory): the serial link of
docs/uart-link.md on a TCP chardev (``nodelay=on``), each side with its own copy of the window.

QEMU feeds the guest about one received byte per main-loop pass (some 20 KB/s host -> guest): that is the
emulator, not the link's ceiling.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from remoteproc import children
from remoteproc.errors import RemoteprocError
from rpmsg.device import RpmsgDevice
from rpmsg.wiring import UART_PROFILE, host_on
from transports.uart import UartError, UartLink, UartWindowLink


class QemuUartSession:
    """Start ``firmware`` (built from firmware/examples/uart_echo or alike) and connect the host role to it."""

    def __init__(self, firmware: Path, *, qemu: str = "qemu-system-arm", timeout: float = 20.0) -> None:
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
        probe.close()
        cmd = [
            qemu, "-machine", "mps2-an505", "-kernel", str(firmware),
            # wait=on: the guest starts once we are connected. With wait=off it runs at once and QEMU drops what
            # it sends before a client connects: the host joined mid-frame and counted a bad frame (seen in CI
            # on a loaded machine; harmless for the link, which resynchronises, but not a clean start).
            "-chardev", f"socket,id=uart,host=127.0.0.1,port={port},server=on,wait=on,nodelay=on",
            "-serial", "chardev:uart", "-display", "none", "-monitor", "none",
        ]  # fmt: skip
        try:
            self.process = children.start(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
            )
        except FileNotFoundError:
            raise RemoteprocError(f"{qemu} not found: install qemu-system-arm (./scripts/setup does)") from None
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.link = UartLink.open(f"uart:socket://127.0.0.1:{port}", rto=0.2)
                break
            except UartError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.close()
                    raise RemoteprocError(f"QEMU's UART did not come up on port {port}") from None
                time.sleep(0.05)
        try:
            self.link.wait_connected(timeout)
            self.rpmsg: RpmsgDevice = host_on(
                UartWindowLink(self.link, UART_PROFILE.size, "host"), UART_PROFILE, wait="block"
            )
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if getattr(self, "rpmsg", None) is not None:
            self.rpmsg.close()
        if getattr(self, "link", None) is not None:
            self.link.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    def __enter__(self) -> QemuUartSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
