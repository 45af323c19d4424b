"""Shared memory without shared memory: each side of a serial link keeps its own copy of the window, and what one
side writes reaches the other as messages {device address, bytes}, applied in order (docs/uart-link.md,
"Mirroring").

Why this keeps virtio exact: every field of a split virtqueue has a single writer (the driver writes descriptors,
the avail ring and its buffers; the device the used ring and device-writable buffers), so the two copies never
disagree about a byte that both write. A side finds what it wrote by comparing its window with a shadow copy of
what both sides last agreed on (the peer's writes update the shadow as they are applied, so they are not sent
back). Ring indices publish what precedes them, so within one batch every changed block goes out before the
blocks that hold the ``idx`` fields, and the receiver applies a batch in order: a reader that sees a new index
sees the data it publishes.

:class:`Mirror` is sans-I/O: :meth:`Mirror.changes` returns the messages to send, :meth:`Mirror.apply` takes one
received. :class:`MirrorDoorbell` puts it on a :class:`~transports.uart.UartLink` as a doorbell for the rpmsg
device: ``notify`` sends the changes, then the kick; ``publish`` (called by the device after it changed the rings
without a kick, and before it blocks) and ``wait`` send them too: a peer that polls sees only what was sent.
"""

from __future__ import annotations

import contextlib
import os
import select
import struct
import threading
from collections.abc import Iterable
from typing import Protocol

from transports.doorbell import KICK_EPOLL, KICK_MIRROR, CDoorbell, Loans, PeerLostError, _own
from transports.errors import TransportError
from transports.memory import RegionMemory

WRITE = 1
KICK = 2
WRITE_HEAD = struct.Struct("<BI")  # kind, device address (32-bit windows; a 64-bit form is for later)
KICK_MSG = struct.Struct("<BH")  # kind, queue
BLOCK = 32  # comparison granularity: a changed block is sent whole
WAKE_EVERY = 64  # the peer's writes applied in one burst before a wake-up all the same (MirrorDoorbell._run)


class MirrorError(TransportError):
    """A mirror message that does not fit the window (the message says what and where)."""


class Mirror:
    def __init__(self, memory: RegionMemory, ranges: Iterable[tuple[int, int]], *, index_fields: Iterable[int] = (),
                 max_payload: int = 256) -> None:  # fmt: skip
        """``ranges``: (device address, size) of what this side writes (the driver: descriptor tables, avail rings,
        its send buffers; the device: used rings and the receive buffers it fills). ``index_fields``: addresses of
        the 2-byte ring indices among them, sent after everything else of a batch. The shadow starts at zero, so
        the first batch carries everything this side set up before the link came up."""
        self.memory = memory
        self.ranges = [(da, size) for da, size in ranges]
        self.shadow = {da: bytearray(size) for da, size in self.ranges}
        self.index_fields = sorted(index_fields)
        self.chunk = max_payload - WRITE_HEAD.size
        if self.chunk < 2:
            raise MirrorError(f"a {max_payload}-byte link payload cannot carry a write")
        self.sent_bytes = 0
        self.applied = 0

    def add_range(self, da: int, size: int) -> None:
        """One more range this side writes, learnt once the link is up (the remote: the host's receive buffers,
        from its descriptors). What it holds now is agreed already (the peer's writes, applied): not sent."""
        self.ranges.append((da, size))
        self.shadow[da] = bytearray(self.memory.read(da, size))

    def _runs(self, da: int, now: bytes, shadow: bytearray) -> list[tuple[int, int]]:
        """Changed (offset, end) runs of whole BLOCKs."""
        runs = []
        size = len(now)
        off = 0
        while off < size:
            if now[off : off + BLOCK] == shadow[off : off + BLOCK]:
                off += BLOCK
                continue
            start = off
            while off < size and now[off : off + BLOCK] != shadow[off : off + BLOCK]:
                off += BLOCK
            runs.append((start, min(off, size)))
        return runs

    def changes(self) -> list[bytes]:
        """WRITE messages for everything this side changed since the last call; ring indices last."""
        data_writes: list[tuple[int, bytes]] = []
        index_writes: list[tuple[int, bytes]] = []
        # The ring indices are read first, the rest after, and what goes out is the indices as read first: another
        # thread may be writing the rings meanwhile (MirrorDoorbell's sender thread publishes for the C path, whose
        # sends do not wait for it). A writer stores a message's data before the index that publishes it, so data
        # read after an index is at least as new as that index needs; an index read after the data (in a later
        # range) could publish data this read missed, and the peer would read a stale message.
        first = {f: self.memory.read(f, 2) for f in self.index_fields}
        for da, size in self.ranges:
            now = self.memory.read(da, size)
            inside = [f for f in self.index_fields if da <= f < da + size]
            if inside:
                patched = bytearray(now)
                for f in inside:
                    patched[f - da : f - da + 2] = first[f]
                now = bytes(patched)
            shadow = self.shadow[da]
            if now == shadow:
                continue
            for start, end in self._runs(da, now, shadow):
                pos = start
                # cut the index fields out of the run: they go last, on their own
                for field in (f - da for f in self.index_fields if da + start <= f < da + end):
                    if field > pos:
                        data_writes.append((da + pos, now[pos:field]))
                    index_writes.append((da + field, now[field : field + 2]))
                    pos = field + 2
                if pos < end:
                    data_writes.append((da + pos, now[pos:end]))
            shadow[:] = now
        out = []
        for da, data in data_writes + index_writes:
            for pos in range(0, len(data), self.chunk):
                piece = data[pos : pos + self.chunk]
                out.append(WRITE_HEAD.pack(WRITE, da + pos) + piece)
                self.sent_bytes += len(piece)
        return out

    def apply(self, message: bytes) -> int | None:
        """Apply one received message: a write (returns None) or a kick (returns its queue)."""
        if not message:
            raise MirrorError("an empty mirror message")
        if message[0] == KICK and len(message) == KICK_MSG.size:
            return int(KICK_MSG.unpack(message)[1])
        if message[0] != WRITE or len(message) < WRITE_HEAD.size:
            raise MirrorError(f"mirror message of kind {message[0]} and {len(message)} bytes is not a write or kick")
        _, da = WRITE_HEAD.unpack_from(message)
        data = message[WRITE_HEAD.size :]
        self.memory.write(da, data)  # AddressError names the address if it is outside the window
        for start, size in self.ranges:  # a peer writing into our ranges (it should not): agreed, not sent back
            lo, hi = max(start, da), min(start + size, da + len(data))
            if lo < hi:
                self.shadow[start][lo - start : hi - start] = data[lo - da : hi - da]
        self.applied += 1
        return None


class MessageLink(Protocol):
    """What the mirror needs of a link: reliable, ordered messages (a :class:`~transports.uart.UartLink`)."""

    def send(self, data: bytes, timeout: float | None = None) -> None: ...

    def recv(self, timeout: float | None = None) -> bytes: ...


class MirrorDoorbell:
    """A doorbell over a :class:`MessageLink` (the UART's): ``notify`` sends this side's changes then the kick;
    a receiver thread applies the peer's messages to memory and turns its kicks into wake-ups.

    For C code (:meth:`c_doorbell`, the rpmsg endpoints' C methods): a kick is an eventfd write that a sender
    thread here turns into the changes and the kick frame (``KICK_MIRROR``: the counter adds ``1 << 16 * (q + 1)``
    for queue q, 1 for a publish without a kick); the rpmsg device's lock asks a publish the same way when a ring
    field its side writes changed (``publish_fd``, DeviceLock.watch). What the link costs (the diff, the frames)
    then runs in that thread, once for however many messages came meanwhile, not in the sender's per message.
    The wake-ups are eventfds (the peer's kicks, its writes) under an epoll the C drain reads (``KICK_EPOLL``),
    and a third for an error, a close or an interrupt: :meth:`fileno` is an epoll of both."""

    def __init__(self, link: MessageLink, mirror: Mirror) -> None:
        self.link = link
        self.mirror = mirror
        self.send_timeout = 10.0  # seconds a message may wait for room in the link's window
        self._lock = threading.Lock()
        self._closed = False
        self.error: str | None = None
        flags = os.EFD_NONBLOCK | os.EFD_CLOEXEC
        self._kicks = os.eventfd(0, flags)  # the peer's kicks, one count each
        self._writes = os.eventfd(0, flags)  # the peer's writes applied (a wake-up that is not a kick)
        self._alarm = os.eventfd(0, flags)  # the link lost, a close, an interrupt
        self.publish_fd = os.eventfd(0, flags)  # C's kicks and the lock's publishes, for the sender thread
        self._wakeups = select.epoll()  # the drain's: kicks and writes (each registered under its own number)
        self._wakeups.register(self._kicks, select.EPOLLIN)
        self._wakeups.register(self._writes, select.EPOLLIN)
        self._epoll = select.epoll()  # what a sleeper polls
        self._epoll.register(self._wakeups.fileno(), select.EPOLLIN)
        self._epoll.register(self._alarm, select.EPOLLIN)
        self.loans = Loans()  # the rpmsg device's C code kicks and polls these descriptors by number
        self.lend, self.give_back = self.loans.lend, self.loans.give_back
        self._thread = threading.Thread(target=self._run, name="mirror", daemon=True)
        self._thread.start()
        self._sender = threading.Thread(target=self._send_loop, name="mirror-send", daemon=True)
        self._sender.start()

    def notify(self, queue: int) -> None:
        self._check()
        self._send_changes((queue,))

    def _check(self) -> None:
        """PeerLostError once closed or lost."""
        if self._closed:
            raise PeerLostError("doorbell closed")
        if self.error is not None:
            raise PeerLostError(self.error)

    def c_doorbell(self) -> CDoorbell | None:
        """For C code (see the class): None once closed or lost, or for a subclass that changes the kick or
        the wait."""
        if self._closed or self.error is not None or not _own(self, MirrorDoorbell):
            return None
        return CDoorbell(self.publish_fd, KICK_MIRROR, self._epoll.fileno(), self._wakeups.fileno(), KICK_EPOLL)

    def _run(self) -> None:
        unannounced = 0  # the peer's writes applied since the last wake-up
        while not self._closed:
            try:
                message = self.link.recv(timeout=0 if unannounced else 0.1)
            except TimeoutError:
                if unannounced:  # the burst ended: one wake-up for it (see below)
                    os.eventfd_write(self._writes, 1)
                    unannounced = 0
                continue
            except Exception as exc:  # the link failed
                self._lost(f"mirror link lost: {exc}")
                return
            try:
                with self._lock:
                    queue = self.mirror.apply(message)
            except Exception as exc:  # a peer writing outside the window: report, keep the link
                self._lost(f"mirror: {exc}")
                return
            # An eventfd counts (it never fills, as the pipe before did after 65,536 kicks nobody waited for).
            if queue is not None:
                os.eventfd_write(self._kicks, 1)  # the sleeper looks at the rings: the writes before are there
                unannounced = 0
                continue
            # The peer's writes wake a sleeper too: a side that asked for kicks and then blocks may have published
            # its "kick me" flag after the peer last looked at it, so the peer sent its message without a kick;
            # only this write tells the sleeper that something arrived (the lost wake-up of two copies of memory).
            # Once the burst has been applied (the link holds no more), or every WAKE_EVERY writes of a long one:
            # a wake-up per write woke a sleeper between a message's data and the index that publishes it, and
            # its look found nothing, turned its kicks off and on again, and sent those flags to the peer: on a
            # pty the spinning round trip took 4.4 ms instead of 2.6.
            unannounced += 1
            if unannounced >= WAKE_EVERY:
                os.eventfd_write(self._writes, 1)
                unannounced = 0

    def _send_loop(self) -> None:
        """Send what C code asked through ``publish_fd``: the changes, then a kick for each queue it kicked (a
        count carried past its 16 bits would be an extra kick of the next queue: harmless)."""
        poller = select.poll()
        poller.register(self.publish_fd, select.POLLIN)
        while not self._closed:
            if not poller.poll(100):
                continue
            try:
                asked = os.eventfd_read(self.publish_fd)
            except BlockingIOError:
                continue
            if self.error is not None:
                continue  # lost: the next wait reports it
            try:
                self._send_asked(asked)
            except PeerLostError:
                os.eventfd_write(self._alarm, 1)  # a sleeper wakes and its doorbell's wait reports it

    def _send_asked(self, asked: int) -> None:
        """The changes, then a kick frame for each queue ``asked`` (the counter's value) holds one for."""
        self._send_changes([queue for queue in range(3) if asked >> 16 * (queue + 1) & 0xFFFF])

    def _send_changes(self, kicks: Iterable[int] = ()) -> None:
        """What this side changed since the last call, then a kick frame for each of ``kicks``: one batch."""
        with self._lock:
            for message in self.mirror.changes():
                self._send(message)
            for queue in kicks:
                self._send(KICK_MSG.pack(KICK, queue))

    def _lost(self, why: str) -> None:
        self.error = why
        os.eventfd_write(self._alarm, 1)

    def add_ranges(self, ranges: Iterable[tuple[int, int]]) -> None:
        """:meth:`Mirror.add_range` each, between two received messages (the receiver thread applies under the
        same lock)."""
        with self._lock:
            for da, size in ranges:
                self.mirror.add_range(da, size)

    def publish(self) -> None:
        """Publish what changed without a kick (a buffer re-posted, a flag flipped, a message the peer will find
        by polling): the peer sees only what we send. The rpmsg device calls it after an operation that changed the
        rings without a kick, and before it blocks."""
        self._check()
        self._send_changes()

    def _send(self, message: bytes) -> None:
        """One message on the link; a link that takes nothing for ``send_timeout`` (the peer acknowledges
        nothing: hung, or gone on a line that never blocks) is the peer lost, for this call and every later one
        (before, the link's own UartError reached the rpmsg caller and the device went on)."""
        try:
            self.link.send(message, timeout=self.send_timeout)
        except PeerLostError:
            raise
        except (TransportError, TimeoutError) as exc:
            self.error = f"mirror link: {exc}"
            raise PeerLostError(self.error) from None

    def wait(self, timeout: float | None) -> bool:
        self.publish()  # a caller that waits here (busy polling, every millisecond) publishes too
        if not self._epoll.poll(-1 if timeout is None else timeout):
            return False
        kicked = self._drain()
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._alarm)
        if self.error is not None:
            raise PeerLostError(self.error)
        return kicked

    def _drain(self) -> bool:
        """Consume the wake-ups (as C's KICK_EPOLL drain does): True if the peer kicked."""
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._writes)
        try:
            return os.eventfd_read(self._kicks) > 0
        except BlockingIOError:
            return False

    def fileno(self) -> int:
        return self._epoll.fileno()

    def interrupt(self) -> None:
        if not self._closed:
            os.eventfd_write(self._alarm, 1)

    def close(self) -> None:
        if self._closed:
            return  # the device and the link may both close it
        self._closed = True
        self._thread.join(timeout=1)
        self._sender.join(timeout=1)
        if self.error is None and not self._sender.is_alive():
            # What C asked last and the sender thread did not get to (the rpmsg device's close: its endpoints'
            # name-service destroys, published by the lock's release just before): sent now, as the Python path
            # sends them before its close.
            with contextlib.suppress(BlockingIOError, PeerLostError):
                self._send_asked(os.eventfd_read(self.publish_fd))
        os.eventfd_write(self._alarm, 1)  # a sleeper here wakes and finds the doorbell closed
        self.loans.close(PeerLostError("doorbell closed"), self._close_descriptors)

    def _close_descriptors(self) -> None:
        self._epoll.close()
        self._wakeups.close()
        for fd in (self._kicks, self._writes, self._alarm, self.publish_fd):
            os.close(fd)
