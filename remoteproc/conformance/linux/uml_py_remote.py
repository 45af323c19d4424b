"""rproc's Python rpmsg remote (``rpmsg.RemoteCore`` + ``RpmsgDevice``) as the remote processor of the kernel's
uml_rproc driver: the same command line, socket protocol and output lines as the C remote
(remoteproc/conformance/linux/host/uml_remote.c), so tests/conformance/linux/test_remoteproc_linux.py and
``rproc conformance --peer linux-remoteproc`` run both.

    python -m remoteproc.conformance.linux.uml_py_remote MEMFILE SOCKET RSC_DA SNAPSHOT

Linux's descriptors hold guest-physical addresses (PHYS, sent right after HELLO); when they differ from the
device addresses (``uml_rproc.da=``), the file is mapped at both, so the vrings (at their da) and the buffers (at
their pa) are both found. The socket carries the driver's control messages and its kicks; a reader in the main
loop passes the kicks to the rpmsg device through a pipe (:class:`SocketDoorbell`), so the device waits on an fd
as with any doorbell.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from remoteproc.conformance.linux.uml_socket import (
    CRASH,
    HELLO,
    KICK,
    MSG,
    PHYS,
    START,
    STOP,
    STOPPED,
    accept_kernel,
    say,
)
from rpmsg.core import RemoteCore
from rpmsg.device import RpmsgDevice
from rpmsg.errors import EndpointClosed, PeerLost, RpmsgTimeout
from rpmsg.protocol import RX_VRING, TX_VRING
from transports.doorbell import PeerLostError
from transports.memory import MappedRegion, RegionMemory
from virtio import VringLayout
from virtio.features import STATUS_DRIVER_OK

RSC_TRACE, RSC_VDEV = 2, 3
DRIVER_OK_TIMEOUT = 30.0


class SocketDoorbell:
    """The rpmsg device's doorbell: notify() sends KICK on the socket; the kernel's kicks arrive through a pipe
    the main loop writes (it owns the socket's reading)."""

    def __init__(self, sock: socket.socket, lock: threading.Lock) -> None:
        self.sock = sock
        self.lock = lock
        self.rfd, self.wfd = os.pipe()
        os.set_blocking(self.rfd, False)
        os.set_blocking(self.wfd, False)
        self.kicks_out = 0
        self.lost = False

    def ring(self) -> None:
        with contextlib.suppress(BlockingIOError):  # a wake-up is already pending
            os.write(self.wfd, b"k")

    def notify(self, queue: int) -> None:
        self.kicks_out += 1
        try:
            with self.lock:
                self.sock.sendall(MSG.pack(KICK, queue, 0))
        except OSError as exc:
            raise PeerLostError(f"the kernel's socket is gone: {exc}") from None

    def wait(self, timeout: float | None) -> bool:
        ready, _, _ = select.select([self.rfd], [], [], timeout)
        if not ready:
            return False
        try:
            os.read(self.rfd, 4096)
        except BlockingIOError:
            return False
        if self.lost:
            raise PeerLostError("the kernel's socket is gone")
        return True

    def fileno(self) -> int:
        return self.rfd

    def interrupt(self) -> None:
        self.ring()

    def close(self) -> None:
        for fd in (self.rfd, self.wfd):
            with contextlib.suppress(OSError):
                os.close(fd)


ECHO_NAME = "rpmsg-raw"  # rpmsg_char (Linux 6.1) binds channels of this name to /dev/rpmsgN
ECHO_ADDR = 0x400  # the first address the C library gives, too
CRASH_REQUEST = b"crash"


class Service:
    """Echoes every message to its sender on ``rpmsg-raw``, every other one by a zero-copy send; ``crash`` makes
    it report a crash instead (the core faulted: nothing more is served until Linux restarts it)."""

    def __init__(self, device: RpmsgDevice, on_crash: Callable[[], None]) -> None:
        self.endpoint = device.endpoint(ECHO_NAME, addr=ECHO_ADDR)
        self.addr = ECHO_ADDR
        self.on_crash = on_crash
        self.echoed = 0
        self.zero_copy = 0  # of them, echoed by a zero-copy send
        self.failure: BaseException | None = None
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="echo", daemon=True)
        self.thread.start()

    def run(self) -> None:
        ep = self.endpoint
        ep.settimeout(0.2)
        try:
            while not self.stopped.is_set():
                try:
                    data, src = ep.recvfrom()
                except RpmsgTimeout:
                    continue
                if data == CRASH_REQUEST:
                    self.on_crash()
                    return
                if self.echoed % 2:
                    # every other echo written in place into Linux's own receive buffer (a zero-copy send:
                    # get_buffer lends the buffer vring 0 holds next, as OpenAMP's rpmsg_get_tx_payload_buffer)
                    buf = ep.get_buffer()
                    buf[: len(data)] = data
                    ep.send_buffer(buf, len(data), src)
                    self.zero_copy += 1
                else:
                    ep.sendto(data, src)
                self.echoed += 1
        except (PeerLost, EndpointClosed) as exc:
            if not self.stopped.is_set():
                self.failure = exc
        except BaseException as exc:  # reported at stop
            self.failure = exc

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)


class Remote:
    def __init__(self, memfile: Path, sock: socket.socket, rsc_da: int, snapshot: str) -> None:
        self.memfile = memfile
        self.sock = sock
        self.lock = threading.Lock()
        self.rsc_da = rsc_da
        self.snapshot = snapshot
        fd = os.open(memfile, os.O_RDWR)
        self.size = os.fstat(fd).st_size
        self.map = mmap.mmap(fd, self.size)
        os.close(fd)
        self.base: int | None = None
        self.phys: int | None = None
        self.memory: RegionMemory | None = None
        self.device: RpmsgDevice | None = None
        self.service: Service | None = None
        self.doorbell: SocketDoorbell | None = None
        self.boots = 0
        self.kicks_in = 0
        self.echoed = 0
        self.zero_copy = 0
        self.stopped = False
        self.buf = b""

    def send(self, kind: int, arg: int = 0) -> None:
        with self.lock:
            self.sock.sendall(MSG.pack(kind, arg, 0))

    def recv(self, timeout: float | None) -> tuple[int, int, int] | None:
        """One message, None on timeout; EOFError at the socket's end."""
        while len(self.buf) < MSG.size:
            ready, _, _ = select.select([self.sock], [], [], timeout)
            if not ready:
                return None
            data = self.sock.recv(4096)
            if not data:
                raise EOFError
            self.buf += data
        kind, arg, value = MSG.unpack_from(self.buf)
        self.buf = self.buf[MSG.size :]
        return kind, arg, value

    def entry(self, kind: int) -> int | None:
        """The da of the first resource-table entry of ``kind``."""
        assert self.memory is not None
        _ver, num = struct.unpack("<II", self.memory.read(self.rsc_da, 8))
        for off in struct.unpack(f"<{num}I", self.memory.read(self.rsc_da + 16, 4 * num)):
            (entry_kind,) = struct.unpack("<I", self.memory.read(self.rsc_da + off, 4))
            if entry_kind == kind:
                return self.rsc_da + int(off)
        return None

    def status(self) -> int:
        """The vdev's status byte as it is in memory now (what the kernel wrote last), 0xff without a table."""
        if self.memory is None:
            return 0xFF
        vdev = self.entry(RSC_VDEV)
        return 0xFF if vdev is None else self.memory.read(vdev + 24, 1)[0]

    def copy_to(self, path: str) -> None:
        self.map.flush()
        with open(path, "wb") as out:
            out.write(self.map[: self.size])

    def boot(self) -> None:
        assert self.memory is not None
        vdev = self.entry(RSC_VDEV)
        if vdev is None:
            say("error no vdev entry in the resource table")
            return
        deadline = time.monotonic() + DRIVER_OK_TIMEOUT
        while not self.memory.read(vdev + 24, 1)[0] & STATUS_DRIVER_OK:
            if time.monotonic() > deadline:
                say("error no DRIVER_OK")
                return
            message = self.recv(0.001)
            if message is not None and message[0] == KICK:
                self.kicks_in += 1
        self.boots += 1
        self.copy_to(f"{self.snapshot}.{self.boots}")
        status = self.memory.read(vdev + 24, 1)[0]
        (gfeatures,) = struct.unpack("<I", self.memory.read(vdev + 16, 4))
        say(f"driver-ok status={status:#04x}")
        rings = [struct.unpack("<IIIII", self.memory.read(vdev + 28 + 20 * n, 20)) for n in range(2)]
        core = RemoteCore(
            self.memory,
            VringLayout.legacy(rings[RX_VRING][0], rings[RX_VRING][2], rings[RX_VRING][1]),
            VringLayout.legacy(rings[TX_VRING][0], rings[TX_VRING][2], rings[TX_VRING][1]),
        )
        self.doorbell = SocketDoorbell(self.sock, self.lock)
        self.device = RpmsgDevice(core, self.doorbell, wait="block", ns=bool(gfeatures & 1))
        self.service = Service(self.device, self.crash)
        trace = self.entry(RSC_TRACE)
        if trace is not None:
            da, length = struct.unpack("<II", self.memory.read(trace + 4, 8))
            text = b"uml-remote: rpmsg-raw announced\n"
            self.memory.write(da, text + bytes(length - len(text)))
        say(f"announced name=rpmsg-raw addr={self.service.addr}")

    def map_phys(self) -> None:
        """Map the file at its guest-physical address too (where Linux's descriptors point) when that is not
        its device address."""
        if self.base is None or self.phys is None or self.phys == self.base:
            return
        if self.phys < self.base + self.size and self.base < self.phys + self.size:
            say(f"error pa {self.phys:#x} and da {self.base:#x} ranges overlap: descriptors are ambiguous")
            return
        self.memory = RegionMemory(
            [
                MappedRegion("rproc", self.base, self.size, self.map),
                MappedRegion("rproc-phys", self.phys, self.size, self.map),
            ]
        )

    def crash(self) -> None:
        say("crash sent")
        self.send(CRASH)

    def halt(self) -> None:
        if self.service is not None:
            self.service.stop()  # first: its thread counts an echo after sending it
            self.echoed += self.service.echoed
            self.zero_copy += self.service.zero_copy
            if self.service.failure is not None:
                say(f"error the echo service failed: {self.service.failure!r}")
        if self.device is not None:
            self.device.close()
        if self.doorbell is not None:
            self.doorbell.close()
        self.service = self.device = self.doorbell = None

    def run(self) -> int:
        while True:
            try:
                message = self.recv(None)
            except EOFError:
                say(f"end of socket stopped={int(self.stopped)}")
                self.halt()
                return 0 if self.stopped else 3
            assert message is not None
            kind, arg, value = message
            if kind == HELLO:
                self.base = value
                self.size = min(self.size, arg)
                self.memory = RegionMemory([MappedRegion("rproc", value, self.size, self.map)])
                say(f"hello da={value:#x} size={arg:#x}")
            elif kind == PHYS:
                self.phys = value
                say(f"phys pa={value:#x}")
                self.map_phys()
            elif kind == START:
                say(f"start boot={value:#x} status={self.status():#04x}")
                self.stopped = False
                self.boot()
            elif kind == STOP:
                kicks_out = self.doorbell.kicks_out if self.doorbell is not None else 0
                status = self.status()
                self.halt()
                self.stopped = True
                self.copy_to(f"{self.snapshot}.stop.{self.boots}")
                say(
                    f"stop status={status:#04x} kicks_in={self.kicks_in} kicks_out={kicks_out} echoed={self.echoed} "
                    f"zero_copy={self.zero_copy}"
                )
                self.send(STOPPED)
            elif kind == KICK:
                self.kicks_in += 1
                if self.doorbell is not None:
                    self.doorbell.ring()
            else:
                say(f"unknown message type={kind}")


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: uml_py_remote MEMFILE SOCKET RSC_DA SNAPSHOT", file=sys.stderr)
        return 2
    memfile, path, rsc_da, snapshot = argv
    return Remote(Path(memfile), accept_kernel(path), int(rsc_da, 0), snapshot).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
