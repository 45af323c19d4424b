"""A fake SoC mailbox and its interrupt lines as UIO shows them, for tests of the devmem transport and the
linux-sysfs/devmem platforms (tests/rpmsg/conftest.py's devmem pair, tests/remoteproc/fake_soc.py)."""

from __future__ import annotations

import contextlib
import mmap
import socket
import struct
import threading
import time
from pathlib import Path


class FakeInterruptHardware:
    """Stands in for an SoC's mailbox and interrupt lines, as UIO with an irqcontrol (uio_pdrv_genirq) shows them:
    a doorbell register written non-zero by one side raises the other side's interrupt (a 4-byte count on its
    UIO descriptor) and is cleared, and the line is then masked until the driver writes 1 to re-enable it. A
    register written while its line is masked stays set and fires at the enable, so at most one count ever waits
    unread on a descriptor, as with the kernel's UIO (interrupts coalesce; they never queue up). A line closed by
    a test (the remote's end as the host sees it) is dropped; the others go on.

    The hardware is a thread that polls the registers: a kick reaches the receiver some time after the write (plus
    ``latency`` seconds, an interrupt controller's delay made long), as on an SoC. :meth:`settle` waits until every
    write made before it has been delivered, or is held by a masked line."""

    def __init__(self, path: Path, mailboxes: dict[int, socket.socket], *, latency: float = 0.0) -> None:
        self.path = path
        self.mailboxes = dict(mailboxes)  # register offset -> the hardware end of the receiver's UIO descriptor
        self.enabled = {offset: False for offset in mailboxes}  # until the driver's first enable write
        self.latency = latency
        self.raised: dict[int, tuple[float, int]] = {}  # offset -> (when it is delivered, the pass that took it)
        self.passes = 0  # polling passes over every register, completed
        self.stop = threading.Event()
        self.count = 0
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def settle(self, timeout: float = 2.0) -> None:
        """Returns once every register write made before the call has reached its receiver's descriptor (or its
        line is masked: a count is there unread, and the write fires at the enable)."""
        start = self.passes
        deadline = time.monotonic() + timeout
        # A pass that began after the call has seen every earlier write; what it raised is delivered after latency.
        while self.thread.is_alive() and time.monotonic() < deadline:
            if self.passes >= start + 2 and all(taken > start + 1 for _, taken in list(self.raised.values())):
                return
            time.sleep(0.00002)

    def _run(self) -> None:
        with open(self.path, "r+b") as f, mmap.mmap(f.fileno(), 0) as m:
            words = memoryview(m).cast("I")
            try:
                for line in self.mailboxes.values():
                    line.setblocking(False)
                while not self.stop.is_set():
                    for offset, line in list(self.mailboxes.items()):
                        try:
                            self._serve(words, offset, line)
                        except OSError:  # closed: that side is gone
                            del self.mailboxes[offset]
                            self.raised.pop(offset, None)
                    self.passes += 1
                    time.sleep(0.00002)
            finally:
                words.release()

    def _serve(self, words: memoryview, offset: int, line: socket.socket) -> None:
        with contextlib.suppress(BlockingIOError):
            if not line.recv(4096):
                raise OSError("the UIO descriptor was closed")
            self.enabled[offset] = True  # the driver's enable write (the value is always 1)
        if self.enabled[offset] and offset not in self.raised and words[offset // 4]:
            words[offset // 4] = 0
            self.raised[offset] = (time.monotonic() + self.latency, self.passes)
        due = self.raised.get(offset)
        if due is not None and time.monotonic() >= due[0]:
            del self.raised[offset]
            self.count += 1
            self.enabled[offset] = False  # masked until the driver has read the count and enables again
            line.send(struct.pack("<I", self.count))
