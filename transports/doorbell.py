"""Doorbells: "notify queue N" across to the peer, and a pollable fd that becomes readable when the peer
notifies us.

- :class:`EventfdDoorbell`: in-process (``loop://``), one eventfd per direction.
- :class:`SocketDoorbell`: two processes, one byte per kick on a connected AF_UNIX stream socket, the mechanism
  of OpenAMP's Linux-userspace machine. The byte is the queue number. End of file means the peer is gone: a
  peer loss is reported, never a hang.

Every doorbell of this module counts the peer's kicks its :meth:`wait` consumed, exactly, in ``received``: bytes on
a socket, the counter of an eventfd (one per write), datagrams. (A wait returns True for any number of them.) Kicks
that C code consumes through the descriptors directly are not counted.

A doorbell whose kicks C code can write and drain by itself describes how with :meth:`c_doorbell` (a
:class:`CDoorbell`: the rpmsg C paths then kick and sleep without Python per message); an optional method:
:func:`c_doorbell_of` is None for a doorbell without it, or one whose notify/wait a subclass changed.

The doorbells here lend their descriptors (:class:`Loans`: ``lend(on_close)``/``give_back``): the rpmsg device
borrows them for its life, since its C code kicks and drains them by number. Closed while lent, a doorbell tells
each borrower at once (the device fails, as a Python kick through a closed doorbell makes it fail), ends what the
peer sees (a socket is shut down), and closes the descriptors at the last give-back: a number C may still use is
never reused by the process meanwhile (before, a send after the doorbell's close wrote its kick into whatever
file had taken the number).
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import socket
import threading
from collections.abc import Callable
from typing import NamedTuple, Protocol, runtime_checkable

from transports.errors import TransportError


class PeerLostError(TransportError, ConnectionError):
    """The other side of the doorbell went away."""


@runtime_checkable
class Doorbell(Protocol):
    def notify(self, queue: int) -> None: ...

    def wait(self, timeout: float | None) -> bool:
        """Block until the peer notifies (True) or ``timeout`` seconds pass (False); consume the notification."""
        ...

    def fileno(self) -> int: ...

    def interrupt(self) -> None:
        """Wake a thread blocked in :meth:`wait` of this side (before closing)."""
        ...

    def close(self) -> None: ...


# How C code kicks the peer, and how it drains a wake-up (rpmsg/csrc/fastpath.h: RPF_KICK_*, same values).
KICK_EVENTFD = 0  # write the 8-byte value 1 / read the counter
KICK_STREAM_BYTE = 1  # one byte (the queue number) on a stream socket / read what is there
KICK_DATAGRAM = 2  # one one-byte datagram (the queue number) / read every datagram waiting
KICK_EPOLL = 3  # drain only: an epoll of kick eventfds (each registered under its own number) / read each ready one
KICK_MIRROR = 4  # kick only: add 1 << 16 * (queue + 1) to an eventfd the UART mirror's sender thread reads


class CDoorbell(NamedTuple):
    """What C code needs to kick and to wait exactly as the doorbell's :meth:`notify` and :meth:`wait` do (the
    same bytes to the peer, the same errors: a kick that fails other than "the socket is full" is left to
    :meth:`notify`, which reports the peer gone)."""

    kick_fd: int  # where a kick goes (-1: see queue_kick_fds)
    kick: int  # KICK_*: how
    poll_fd: int  # readable when the peer kicked or left (fileno())
    drain_fd: int  # where the kicks that woke us are read
    drain: int  # KICK_*: how
    queue_kick_fds: tuple[int, ...] = ()  # a descriptor per queue (vhost-user's call eventfds), -1 for none

    def kick_fd_of(self, queue: int) -> int:
        """Where a kick of ``queue`` goes (-1: C cannot kick it, the runner's :meth:`notify` does)."""
        if not self.queue_kick_fds:
            return self.kick_fd
        return self.queue_kick_fds[queue] if 0 <= queue < len(self.queue_kick_fds) else -1


def c_doorbell_of(doorbell: object) -> CDoorbell | None:
    """``doorbell.c_doorbell()``, or None: only Python can kick it (no such method, or it said None: a wrapper
    that observes, a doorbell lost or closed, a subclass that changes the kick)."""
    describe = getattr(doorbell, "c_doorbell", None)
    result = describe() if callable(describe) else None
    return result if isinstance(result, CDoorbell) else None


def _own(doorbell: object, cls: type) -> bool:
    """The doorbell kicks and waits with ``cls``'s own methods (a subclass that counts or changes them does not)."""
    kind = type(doorbell)
    return all(getattr(kind, name) is getattr(cls, name) for name in ("notify", "wait", "_drain") if hasattr(cls, name))


class Loans:
    """The borrowers of a doorbell's descriptors, and the close that waits for them (see the module's text)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._borrowers: dict[int, Callable[[PeerLostError], None]] = {}
        self._last = 0
        self._deferred: Callable[[], None] | None = None
        self.closed = False

    def lend(self, on_close: Callable[[PeerLostError], None]) -> int:
        """A loan (its token): the descriptors stay open until :meth:`give_back`; ``on_close`` hears a close."""
        with self._lock:
            if self.closed:
                raise PeerLostError("doorbell closed (on this side)")
            self._last += 1
            self._borrowers[self._last] = on_close
            return self._last

    def give_back(self, token: int) -> None:
        with self._lock:
            self._borrowers.pop(token, None)
            run, self._deferred = (self._deferred, None) if not self._borrowers else (None, self._deferred)
        if run is not None:
            run()

    def close(self, why: PeerLostError, close_descriptors: Callable[[], None]) -> None:
        """Tell every borrower (outside the lock: it may give back at once), then close the descriptors now, or
        at the last give-back."""
        with self._lock:
            self.closed = True
            told = list(self._borrowers.values())
        for on_close in told:
            on_close(why)
        with self._lock:
            if self._borrowers:
                self._deferred = close_descriptors
                return
        close_descriptors()


class DoorbellWrapper:
    """Passes everything to ``inner``: subclasses override what they observe (spy+, conformance kick counts)."""

    def __init__(self, inner: Doorbell) -> None:
        self.inner = inner

    def notify(self, queue: int) -> None:
        self.inner.notify(queue)

    def wait(self, timeout: float | None) -> bool:
        return self.inner.wait(timeout)

    def fileno(self) -> int:
        return self.inner.fileno()

    def interrupt(self) -> None:
        self.inner.interrupt()

    def c_doorbell(self) -> CDoorbell | None:
        """None: a wrapper observes the kicks (spy+, counts), so C code must not go around it."""
        return None

    def __getattr__(self, name: str) -> object:
        # Optional doorbell methods (a mirroring doorbell's publish) pass through; missing ones stay missing.
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)

    def close(self) -> None:
        self.inner.close()


class _EventfdPair:
    """Both eventfds of an in-process pair, closed when both sides have closed (so a late notify from one side
    never writes to a descriptor number the other side closed and the process reused)."""

    def __init__(self) -> None:
        self.fds = (os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC), os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC))
        self.open_sides = 2

    def release(self) -> None:
        self.open_sides -= 1
        if self.open_sides == 0:
            for fd in self.fds:
                os.close(fd)


class EventfdDoorbell:
    """One side of an in-process doorbell pair."""

    _peer: EventfdDoorbell

    def __init__(self, shared: _EventfdPair, side: int) -> None:
        self._shared = shared
        self._rx = shared.fds[side]
        self._tx = shared.fds[1 - side]
        self.closed = False
        self.peer_closed = False
        self.received = 0
        self.loans = Loans()
        self.lend, self.give_back = self.loans.lend, self.loans.give_back

    @classmethod
    def pair(cls) -> tuple[EventfdDoorbell, EventfdDoorbell]:
        shared = _EventfdPair()
        a, b = cls(shared, 0), cls(shared, 1)
        a._peer, b._peer = b, a
        return a, b

    def notify(self, queue: int) -> None:
        if self.closed:
            raise PeerLostError("doorbell closed")
        if self._peer.closed:
            raise PeerLostError("the other side closed its doorbell")
        os.eventfd_write(self._tx, 1)

    def wait(self, timeout: float | None) -> bool:
        if self.closed:
            raise PeerLostError("doorbell closed")
        if self._peer.closed:
            raise PeerLostError("the other side closed its doorbell")
        ready, _, _ = select.select([self._rx], [], [], timeout)
        if not ready:
            return False
        try:
            self.received += os.eventfd_read(self._rx)
        except BlockingIOError:
            return False  # another waiter took it
        return True

    def fileno(self) -> int:
        return self._rx

    def interrupt(self) -> None:
        if not self.closed:
            os.eventfd_write(self._rx, 1)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if not self._peer.closed:
                os.eventfd_write(self._tx, 1)  # wake the peer so it sees we are gone
            self.loans.close(PeerLostError("doorbell closed"), self._shared.release)


class SocketDoorbell:
    """One side of a doorbell over a connected AF_UNIX stream socket (one byte per kick)."""

    def __init__(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self.sock = sock
        self.lost = False
        self.closed = False
        self.received = 0
        self.loans = Loans()
        self.lend, self.give_back = self.loans.lend, self.loans.give_back

    def notify(self, queue: int) -> None:
        if self.closed:
            raise PeerLostError("doorbell closed (on this side)")
        if self.lost:
            raise PeerLostError("the peer closed the doorbell socket")
        try:
            self.sock.send(bytes((queue & 0xFF,)))
        except BlockingIOError:
            pass  # the peer has a backlog of kicks already: it will look at every queue anyway
        except OSError as exc:
            self.lost = True
            raise PeerLostError(f"doorbell: {exc.strerror or exc}") from None

    def wait(self, timeout: float | None) -> bool:
        if self.closed:
            raise PeerLostError("doorbell closed (on this side)")
        if self.lost:
            raise PeerLostError("the peer closed the doorbell socket")
        ready, _, _ = select.select([self.sock], [], [], timeout)
        if not ready:
            return False
        try:
            data = self.sock.recv(4096)
        except BlockingIOError:
            return False
        except OSError as exc:
            if exc.errno in (errno.ECONNRESET, errno.EPIPE):
                data = b""
            else:
                raise
        if not data:
            self.lost = True
            raise PeerLostError("the peer closed the doorbell socket (process gone?)")
        self.received += len(data)
        return True

    def fileno(self) -> int:
        return self.sock.fileno()

    def c_doorbell(self) -> CDoorbell | None:
        """One byte per kick on the socket, the wake-up read from it (end of file left to :meth:`wait`)."""
        if self.lost or not _own(self, SocketDoorbell) or self.sock.fileno() < 0:
            return None
        fd = self.sock.fileno()
        return CDoorbell(fd, KICK_STREAM_BYTE, fd, fd, KICK_STREAM_BYTE)

    def interrupt(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # a waiter sees end of file; the peer sees us gone

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # the peer sees us gone now, even while the descriptor is lent
        self.loans.close(PeerLostError("doorbell closed (on this side)"), self.sock.close)


class EventfdSocketDoorbell:
    """Kicks as eventfd writes (the descriptors were passed over the doorbell socket with SCM_RIGHTS); the
    socket stays connected only to notice the peer's death (end of file). :meth:`fileno` is an epoll descriptor
    watching both, so one select covers kicks and loss."""

    def __init__(self, rx_fd: int, tx_fd: int, sock: socket.socket) -> None:
        self._rx, self._tx, self.sock = rx_fd, tx_fd, sock
        sock.setblocking(False)
        os.set_blocking(rx_fd, False)
        self._epoll = select.epoll()
        self._epoll.register(rx_fd, select.EPOLLIN)
        self._epoll.register(sock.fileno(), select.EPOLLIN | select.EPOLLRDHUP)
        self.lost = False
        self.closed = False
        self.received = 0
        self.loans = Loans()
        self.lend, self.give_back = self.loans.lend, self.loans.give_back

    def _check(self) -> None:
        """PeerLostError once closed here or once the peer's end was seen."""
        if self.closed:
            raise PeerLostError("doorbell closed (on this side)")
        if self.lost:
            raise PeerLostError("the peer closed the doorbell socket")

    def notify(self, queue: int) -> None:
        self._check()
        os.eventfd_write(self._tx, 1)

    def _drain(self) -> bool:
        """Consume the kicks that arrived; True if there were any."""
        try:
            self.received += os.eventfd_read(self._rx)
            return True
        except BlockingIOError:
            return False

    def wait(self, timeout: float | None) -> bool:
        self._check()
        kicked = False
        for fd, _ in self._epoll.poll(-1 if timeout is None else timeout):
            if fd == self._rx:
                kicked = self._drain() or kicked
                continue
            try:
                data = self.sock.recv(64)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            if not data:
                self.lost = True
                raise PeerLostError("the peer closed the doorbell socket (process gone?)")
        return kicked

    def fileno(self) -> int:
        return self._epoll.fileno()

    def descriptors(self) -> tuple[int, int, int]:
        """(kicks in, kicks out, the socket): for C code that waits and kicks by itself (the rpmsg fast path,
        the benchmarks' C remote)."""
        return self._rx, self._tx, self.sock.fileno()

    def c_doorbell(self) -> CDoorbell | None:
        """Eventfd writes out, the eventfd read in, the epoll descriptor (kicks and the socket's end) to poll."""
        if self.lost or self.closed or not _own(self, EventfdSocketDoorbell):
            return None
        return CDoorbell(self._tx, KICK_EVENTFD, self._epoll.fileno(), self._rx, KICK_EVENTFD)

    def interrupt(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._shut()
        self.loans.close(PeerLostError("doorbell closed (on this side)"), self._close_descriptors)

    def _shut(self) -> None:
        """The peer sees us gone now (and a sleeper here wakes), even while the descriptors are lent."""
        self.interrupt()

    def _close_descriptors(self) -> None:
        self._epoll.close()
        for fd in (self._rx, self._tx):
            os.close(fd)
        self._rx = self._tx = -1
        self.sock.close()


class DatagramSocketDoorbell(EventfdSocketDoorbell):
    """The fallback where eventfds cannot be used: kicks are one-byte datagrams on a unix datagram socket pair
    (one end passed to the peer with SCM_RIGHTS); the stream socket still tells of the peer's end."""

    def __init__(self, dgram: socket.socket, sock: socket.socket) -> None:
        self._dgram = dgram
        dgram.setblocking(False)
        super().__init__(dgram.fileno(), dgram.fileno(), sock)

    def notify(self, queue: int) -> None:
        self._check()
        try:
            self._dgram.send(bytes((queue & 0xFF,)))
        except BlockingIOError:
            pass  # kicks pending already: the peer looks at every queue anyway
        except OSError as exc:
            self.lost = True
            raise PeerLostError(f"doorbell: {exc.strerror or exc}") from None

    def c_doorbell(self) -> CDoorbell | None:
        """One datagram per kick out, every datagram waiting read in, the epoll descriptor to poll."""
        if self.lost or self.closed or not _own(self, DatagramSocketDoorbell):
            return None
        fd = self._dgram.fileno()
        return CDoorbell(fd, KICK_DATAGRAM, self._epoll.fileno(), fd, KICK_DATAGRAM)

    def _drain(self) -> bool:
        got = False
        while True:
            try:
                if not self._dgram.recv(64):
                    return got
                self.received += 1
                got = True
            except BlockingIOError:
                return got

    def _shut(self) -> None:
        super()._shut()
        with contextlib.suppress(OSError):
            self._dgram.shutdown(socket.SHUT_RDWR)  # the peer's next kick fails

    def _close_descriptors(self) -> None:
        self._epoll.close()
        self._rx = self._tx = -1
        self._dgram.close()
        self.sock.close()
