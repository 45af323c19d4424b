"""``uart:``: the reliable message link of docs/uart-link.md over any pyserial port — a tty (``/dev/ttyACM0``),
``socket://host:port``, a pty, or any object with pyserial's ``read``/``write``/``close``.

    link = UartLink.open("uart:///dev/ttyACM0?baud=1000000")
    link.wait_connected(5)
    link.send(b"...")
    data = link.recv(timeout=1)

The protocol is :class:`transports.serial_link.LinkCore` (no I/O); this module is its runner, two threads: one
reads the port (returning as soon as bytes are there, or after the port's read timeout: 5 ms for ports opened
here) and feeds the core, and never writes; the other writes what the core transmits (ACKs at once) and keeps its
retransmission deadline. A send writes its frame from the caller's thread when the writer is not writing. Why the
reader never writes: a write waits while the line is full, and a line fills when both sides send at once; a
reader waiting on a write stops draining the other direction, the other side's reader does the same, and both
wait until the write timeout.
"""

from __future__ import annotations

import collections
import contextlib
import fcntl
import os
import select
import struct
import termios
import threading
import time
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

from transports.doorbell import Doorbell, PeerLostError
from transports.errors import TransportError
from transports.link import Link, ParsedUrl
from transports.memory import MappedRegion, RegionMemory
from transports.mirror import Mirror, MirrorDoorbell
from transports.serial_link import Connected, LinkCore, Message, PeerReset

DEFAULT_BAUD = 1_000_000  # the RP2350 boot ROM's fixed rate, and what our firmware uses


def line_rto(baud: int, window: int = 8, max_payload: int = 256, floor: float = 0.05) -> float:
    """A retransmission timeout that a full window can meet on a ``baud`` line: a full window of frames
    (payload, 5-byte header, CRC-32, COBS's byte per 254, the delimiter; 10 bits a byte with start and stop) may
    be on the line ahead of the last one, and as much again of the peer's frames ahead of its ACK; 2.5 times a
    window's line time, at least ``floor``. Below it the sender resends the window before it has left (at 115200
    baud a window of 256-byte frames takes 0.19 s), and the line carries mostly copies."""
    frame = max_payload + 5 + 4 + (max_payload + 9) // 254 + 2
    return max(floor, 2.5 * window * frame * 10 / baud)


class UartError(TransportError):
    """The serial port cannot be opened or used (the message names the port and what to do)."""


class Port(Protocol):
    """What :class:`UartLink` needs of a port (pyserial's ``Serial`` has it)."""

    def read(self, size: int = 1) -> bytes: ...

    def write(self, data: bytes) -> int | None: ...

    def close(self) -> None: ...


class FdPort:
    """A raw file descriptor as a port (the master side of a pty, a pipe pair's end): reads wait at most
    ``timeout`` seconds; a write that cannot move a byte for ``write_timeout`` seconds (the other end reads
    nothing: its process stopped, its link closed) raises TimeoutError, as pyserial's ports opened with a
    write timeout do (``UartLink.open``: 5 s); the bytes moved each way are counted. The descriptor is made
    non-blocking: a blocking write to a pty waits for room for all of it, past any timeout."""

    def __init__(self, fd: int, timeout: float = 0.005, write_timeout: float = 5.0) -> None:
        self.fd = fd
        self.timeout = timeout
        self.write_timeout = write_timeout
        self.read_bytes = 0
        self.written = 0
        os.set_blocking(fd, False)

    @property
    def in_waiting(self) -> int:
        """Bytes ready to read (as pyserial's): the runner reads them in one call, not a byte per call."""
        waiting: int = struct.unpack("i", fcntl.ioctl(self.fd, termios.FIONREAD, b"\0\0\0\0"))[0]
        return waiting

    def read(self, size: int = 1) -> bytes:
        if not select.select([self.fd], [], [], self.timeout)[0]:
            return b""
        try:
            data = os.read(self.fd, size)
        except BlockingIOError:
            return b""  # another reader took it
        self.read_bytes += len(data)
        return data

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        while view:
            if not select.select([], [self.fd], [], self.write_timeout)[1]:
                self.written += len(data) - len(view)
                raise TimeoutError(
                    f"write timed out: no room for {len(view)} of {len(data)} bytes in {self.write_timeout} s "
                    "(the other end reads nothing)"
                )
            try:
                view = view[os.write(self.fd, view) :]
            except BlockingIOError:
                continue  # the room select saw was taken meanwhile
        self.written += len(data)
        return len(data)

    def close(self) -> None:
        """The descriptor stays its owner's to close."""


def parse_uart_url(url: str) -> tuple[str, int]:
    """``uart:///dev/ttyACM0?baud=115200`` -> (``/dev/ttyACM0``, 115200); ``uart:socket://h:p`` -> the pyserial URL."""
    if not url.startswith("uart:"):
        raise UartError(f"{url!r} is not a uart: URL")
    rest = url[len("uart:") :]
    target, _, query = rest.partition("?")
    baud = DEFAULT_BAUD
    if query:
        params = parse_qs(query)
        unknown = set(params) - {"baud"}
        if unknown:
            raise UartError(f"{url}: unknown parameter(s) {', '.join(sorted(unknown))} (known: baud)")
        try:
            baud = int(params["baud"][-1])
        except ValueError:
            raise UartError(f"{url}: baud {params['baud'][-1]!r} is not a number") from None
    if target.startswith("//"):
        parts = urlsplit("uart:" + target)
        if parts.netloc:
            raise UartError(f"{url}: a device path is uart:///dev/...; for a network port use uart:socket://host:port")
        target = parts.path
    if not target:
        raise UartError(f"{url}: no port given")
    return target, baud


class UartLink:
    def __init__(
        self,
        port: Port,
        *,
        name: str = "uart",
        window: int = 8,
        max_payload: int = 256,
        rto: float = 0.05,
        seed: int | None = None,
        max_inbox: int = 4096,
    ) -> None:
        """``max_inbox``: received messages held for :meth:`recv` at most; past it the link takes (and so
        acknowledges) nothing more until the caller receives: the peer waits, memory stays bounded."""
        self.port = port
        self.name = name
        self.max_inbox = max_inbox
        self.core = LinkCore(
            seed=seed,  # None: the session nonces come from the OS's random source
            window=window,
            max_payload=max_payload,
            rto=rto,
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._tx_lock = threading.Lock()  # transmit + write as one step: frames reach the line in core order
        self._inbox: collections.deque[bytes] = collections.deque()
        self.resets: list[PeerReset] = []
        self.connected: Connected | None = None
        self.failure: str | None = None
        self._closing = False
        self.core.start(time.monotonic())
        self._thread = threading.Thread(target=self._run, name=f"uart {name}", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name=f"uart {name} writer", daemon=True)
        self._thread.start()
        self._writer.start()

    @classmethod
    def open(cls, url: str, **kwargs: object) -> UartLink:
        """A ``uart:`` URL: the pyserial port it names, at its ``baud``; without an ``rto`` the link's is
        :func:`line_rto` of that baud, window and payload."""
        import serial  # pyserial: imported here, the only module of ours that needs it

        target, baud = parse_uart_url(url)
        if "rto" not in kwargs:
            window, payload = kwargs.get("window", 8), kwargs.get("max_payload", 256)
            assert isinstance(window, int) and isinstance(payload, int)
            kwargs["rto"] = line_rto(baud, window, payload)
        try:
            port = serial.serial_for_url(target, baudrate=baud, timeout=0.005, write_timeout=5)
        except (serial.SerialException, ValueError, OSError) as exc:
            raise UartError(f"{target}: {exc} (is the device there, and may this user open it?)") from None
        return cls(port, name=target, **kwargs)  # type: ignore[arg-type]

    # --- the caller's side -------------------------------------------------------------------------------------
    def wait_connected(self, timeout: float) -> Connected:
        with self._changed:
            if not self._changed.wait_for(lambda: self.connected is not None or self.failure is not None, timeout):
                raise UartError(f"{self.name}: no link peer answered within {timeout} s (is the other side running?)")
            self._check()
            assert self.connected is not None
            return self.connected

    def send(self, data: bytes, timeout: float | None = None) -> None:
        """Queue one message (waits while ``2 x window`` messages are unacknowledged)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._changed:
            while True:
                self._check()
                if self.core.up and self.core.pending < 2 * self.core.window:
                    self.core.send(data)
                    self._changed.notify_all()  # the writer, if it is writing now, sends it next
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise UartError(f"{self.name}: the peer acknowledged nothing for {timeout} s")
                self._changed.wait(left)
        if self._tx_lock.acquire(blocking=False):  # now, from this thread, unless the writer is at it
            try:
                self._transmit()
            finally:
                self._tx_lock.release()

    def _transmit(self) -> None:
        """Take what the core transmits and write it (the caller holds ``_tx_lock``)."""
        with self._lock:
            out = self.core.transmit(time.monotonic())
        if out:
            try:
                self.port.write(out)
            except Exception as exc:  # a write timeout (the peer reads nothing), the port gone, the port's own error
                with self._changed:
                    if self.failure is None:
                        self.failure = f"port failed: {exc}"
                    self._changed.notify_all()
                raise PeerLostError(f"{self.name}: {self.failure}") from None

    def recv(self, timeout: float | None = None) -> bytes:
        """The next message; TimeoutError after ``timeout``; PeerLostError once the link failed or was closed
        (messages received before are still returned first). Before, a closed link only timed out: a mirror
        reading it (transports/mirror.py) read on forever and its sleepers slept to their own timeouts."""
        with self._changed:
            ready = lambda: bool(self._inbox) or self.failure is not None or self._closing  # noqa: E731
            if not self._changed.wait_for(ready, timeout):
                raise TimeoutError(f"{self.name}: no message within {timeout} s")
            if self._inbox:
                return self._inbox.popleft()  # room again: the peer's next retransmission is taken
            self._check()
            raise PeerLostError(f"{self.name}: closed on this side")

    def flush(self, timeout: float) -> None:
        """Wait until the peer acknowledged everything sent."""
        with self._changed:
            if not self._changed.wait_for(lambda: self.core.pending == 0 or self.failure is not None, timeout):
                raise UartError(f"{self.name}: {self.core.pending} messages still unacknowledged after {timeout} s")
            self._check()

    def _check(self) -> None:
        if self.failure is not None:
            raise PeerLostError(f"{self.name}: {self.failure}")

    def close(self) -> None:
        with self._changed:
            self._closing = True
            self._changed.notify_all()
        self._thread.join(timeout=2)
        self._writer.join(timeout=2)
        with contextlib.suppress(Exception):
            self.port.close()

    def __enter__(self) -> UartLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the runner --------------------------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while True:
                with self._lock:
                    if self._closing:
                        return
                # What is there (at least one byte, or nothing after the port's timeout): pyserial's read(n)
                # would wait for all n bytes.
                waiting = getattr(self.port, "in_waiting", 0)
                data = self.port.read(waiting or 1)
                if data and (more := getattr(self.port, "in_waiting", 0)):
                    data += self.port.read(more)
                if not data:
                    continue
                with self._changed:
                    room = self.max_inbox - len(self._inbox)
                    for ev in self.core.receive(data, time.monotonic(), room):
                        if isinstance(ev, Message):
                            self._inbox.append(ev.data)
                        elif isinstance(ev, Connected):
                            self.connected = ev
                        elif isinstance(ev, PeerReset):
                            self.resets.append(ev)
                    self._changed.notify_all()  # receivers, and the writer (an ACK is due)
        except Exception as exc:  # the port went away (a USB adapter unplugged, a socket closed)
            with self._changed:
                if self.failure is None:
                    self.failure = f"port failed: {exc}"
                self._changed.notify_all()

    def _write_loop(self) -> None:
        """Write what the core has to send as it comes due: ACKs, HELLOs, retransmissions, messages queued while
        another write was on."""
        while True:
            with self._changed:
                while True:
                    if self._closing or self.failure is not None:
                        return
                    now = time.monotonic()
                    if self.core.has_output(now):
                        break
                    due = self.core.deadline()
                    self._changed.wait(None if due is None else max(due - now, 0.0))
            with self._tx_lock:
                try:
                    self._transmit()
                except PeerLostError:
                    return


class UartWindowLink(Link):
    """``uart:PORT?size=N[&baud=B]``: this side's own copy of an N-byte window, mirrored over a :class:`UartLink`
    (transports/mirror.py, docs/uart-link.md). The rpmsg layer declares what it writes before connecting.

    ``uart``: the port's ``uart:`` URL, opened on :meth:`connect` and closed with this link; or a
    :class:`UartLink` the caller opened (a board booted over the same port first) and keeps, and closes."""

    def __init__(self, uart: str | UartLink, size: int, role: str) -> None:
        super().__init__(RegionMemory([MappedRegion("uart-window", 0, size, bytearray(size))]), role)
        self._url = uart if isinstance(uart, str) else None
        self._uart = None if isinstance(uart, str) else uart
        self._writes: tuple[list[tuple[int, int]], list[int]] | None = None

    mirrors = True

    def declare_writes(self, ranges: list[tuple[int, int]], index_fields: list[int]) -> None:
        if isinstance(self._doorbell, MirrorDoorbell):
            if index_fields:
                raise TransportError("uart: ring indices are declared before connecting")
            self._doorbell.add_ranges(ranges)
        else:
            self._writes = (list(ranges), list(index_fields))

    def _connect(self, timeout: float) -> Doorbell:
        if self._writes is None:
            raise TransportError("uart: the rpmsg layer must declare what this side writes before connecting")
        if self._uart is None:
            assert self._url is not None
            self._uart = UartLink.open(self._url)
        connected = self._uart.wait_connected(timeout)
        ranges, index = self._writes
        mirror = Mirror(self.memory, ranges, index_fields=index, max_payload=connected.max_payload)
        return MirrorDoorbell(self._uart, mirror)

    def close(self) -> None:
        super().close()
        if self._uart is not None and self._url is not None:
            self._uart.close()


def open_url(url: ParsedUrl, role: str, **options: object) -> UartWindowLink:
    query = "&".join(f"{k}={v}" for k, v in url.params.items() if k == "baud")
    return UartWindowLink(f"uart:{url.target}" + (f"?{query}" if query else ""), url.int_param("size"), role)
