"""Which doorbells describe themselves to C code (``c_doorbell``, transports.doorbell.CDoorbell) and how: the
kinds the rpmsg C path kicks and drains by itself (vhost-user's a descriptor per queue), and the doorbells that
must stay Python (a wrapper that observes, a subclass that changes notify or wait, the loop's in-process pair,
UIO). The UART mirror's: tests/rpmsg/test_mirror_c_path.py."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from transports.doorbell import (
    KICK_DATAGRAM,
    KICK_EPOLL,
    KICK_EVENTFD,
    KICK_STREAM_BYTE,
    CDoorbell,
    DatagramSocketDoorbell,
    DoorbellWrapper,
    EventfdDoorbell,
    EventfdSocketDoorbell,
    PeerLostError,
    SocketDoorbell,
    c_doorbell_of,
)
from transports.spy import SpyDoorbell
from transports.vhost_user_session import VhostUserDoorbell


@pytest.fixture
def stream() -> Iterator[tuple[SocketDoorbell, socket.socket]]:
    a, b = socket.socketpair()
    bell = SocketDoorbell(a)
    yield bell, b
    bell.close()
    b.close()


def test_a_stream_socket_is_one_byte_per_kick_on_the_socket(stream: tuple[SocketDoorbell, socket.socket]) -> None:
    bell, _ = stream
    fd = bell.sock.fileno()
    assert c_doorbell_of(bell) == CDoorbell(fd, KICK_STREAM_BYTE, fd, fd, KICK_STREAM_BYTE)


def test_a_stream_doorbell_found_lost_describes_nothing(stream: tuple[SocketDoorbell, socket.socket]) -> None:
    bell, peer = stream
    peer.close()
    with pytest.raises(Exception, match="closed the doorbell socket"):
        bell.wait(1)
    assert c_doorbell_of(bell) is None  # its notify raises at once: C must not kick


def test_eventfd_and_datagram_doorbells() -> None:
    rx, tx = os.eventfd(0), os.eventfd(0)
    a, b = socket.socketpair()
    bell = EventfdSocketDoorbell(rx, tx, a)
    assert c_doorbell_of(bell) == CDoorbell(tx, KICK_EVENTFD, bell.fileno(), rx, KICK_EVENTFD)
    bell.close()
    b.close()
    d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    s1, s2 = socket.socketpair()
    dgram = DatagramSocketDoorbell(d1, s1)
    fd = d1.fileno()
    assert c_doorbell_of(dgram) == CDoorbell(fd, KICK_DATAGRAM, dgram.fileno(), fd, KICK_DATAGRAM)
    dgram.close()
    assert c_doorbell_of(dgram) is None  # closed
    for s in (d2, s2):
        s.close()


def test_what_observes_or_changes_the_kicks_stays_python(stream: tuple[SocketDoorbell, socket.socket]) -> None:
    bell, _ = stream
    assert c_doorbell_of(DoorbellWrapper(bell)) is None  # not passed through __getattr__
    assert c_doorbell_of(SpyDoorbell(bell, lambda line: None, None)) is None  # type: ignore[arg-type]

    class Counting(SocketDoorbell):
        def notify(self, queue: int) -> None:
            super().notify(queue)

    a, b = socket.socketpair()
    counting = Counting(a)
    assert c_doorbell_of(counting) is None
    counting.close()
    b.close()
    left, right = EventfdDoorbell.pair()  # the loop's pair: its notify checks the other side's close
    assert c_doorbell_of(left) is None
    left.close()
    right.close()
    assert c_doorbell_of(object()) is None


def _socket_doorbells() -> Iterator[tuple[str, Any, list[socket.socket]]]:
    a, b = socket.socketpair()
    yield "stream", SocketDoorbell(a), [b]
    a, b = socket.socketpair()
    yield "eventfd", EventfdSocketDoorbell(os.eventfd(0), os.eventfd(0), a), [b]
    d1, d2 = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    s1, s2 = socket.socketpair()
    yield "datagram", DatagramSocketDoorbell(d1, s1), [d2, s2]


def test_a_doorbell_closed_on_this_side_says_so() -> None:
    """notify and wait after close: PeerLostError "doorbell closed (on this side)", as the in-process pair's
    (EventfdDoorbell). Before, the eventfd and datagram doorbells raised ValueError from os/select (a negative
    descriptor, a closed epoll) and the stream one blamed the peer ("Bad file descriptor")."""
    for kind, bell, others in _socket_doorbells():
        bell.notify(0)
        bell.close()
        with pytest.raises(PeerLostError, match=r"doorbell closed \(on this side\)"):
            bell.notify(0)
        with pytest.raises(PeerLostError, match=r"doorbell closed \(on this side\)"):
            bell.wait(0)
        assert c_doorbell_of(bell) is None, kind
        for s in others:
            s.close()


def _vhost_bell() -> tuple[VhostUserDoorbell, list[int], list[int]]:
    """A back-end doorbell and the front-end's ends: (doorbell, kick eventfds, call eventfds), one per queue."""
    kicks = [os.eventfd(0, os.EFD_NONBLOCK) for _ in range(2)]
    calls = [os.eventfd(0, os.EFD_NONBLOCK) for _ in range(2)]
    return VhostUserDoorbell(kicks, calls), kicks, calls


def test_vhost_user_calls_each_queue_on_its_own_descriptor() -> None:
    """vhost-user's doorbell: a call per queue on that queue's eventfd, the wake-up's kicks drained through the
    epoll of the kick eventfds (KICK_EPOLL); lost, closed or changed by a subclass: Python only."""
    bell, kicks, calls = _vhost_bell()
    described = c_doorbell_of(bell)
    assert described is not None
    assert (described.kick, described.drain, described.poll_fd) == (KICK_EVENTFD, KICK_EPOLL, bell.fileno())
    assert described.kick_fd == -1 and len(described.queue_kick_fds) == 2
    assert described.drain_fd not in (bell.fileno(), *described.queue_kick_fds)
    for queue in (0, 1):  # the descriptor C writes is the one notify writes
        bell.notify(queue)
        os.write(described.kick_fd_of(queue), (1).to_bytes(8, "little"))
        assert os.eventfd_read(calls[queue]) == 2
        with pytest.raises(BlockingIOError):
            os.eventfd_read(calls[1 - queue])

    class Counting(VhostUserDoorbell):
        def notify(self, queue: int) -> None:
            super().notify(queue)

    counting = Counting(kicks, calls)
    assert c_doorbell_of(counting) is None
    counting.close()
    bell.mark_lost("the front-end hung up")
    assert c_doorbell_of(bell) is None  # its notify raises at once: C must not call
    bell.close()
    assert c_doorbell_of(bell) is None
    fresh, _, _ = _vhost_bell()
    fresh.close()
    assert c_doorbell_of(fresh) is None
    for fd in kicks + calls:
        os.close(fd)


def test_the_c_wait_drains_every_queue_kick_and_leaves_loss_to_the_runner() -> None:
    """rpf_wait with vhost-user's words: kicks on both queues are one wake-up, both eventfds drained (KICKED);
    a lost front-end or an interrupt wakes it with no kick (DOORBELL: the runner's wait looks and reports)."""
    from rpmsg import fastpath

    lib, ffi = fastpath._module().lib, fastpath._module().ffi
    bell, kicks, _calls = _vhost_bell()
    described = c_doorbell_of(bell)
    assert described is not None
    drain = fastpath.kick_word(described.drain_fd, described.drain)

    def wait() -> int:
        return int(lib.rpf_wait(ffi.NULL, 0, described.poll_fd, drain, -1, 200_000_000))

    assert wait() == fastpath.TIMEOUT
    for fd in kicks:
        os.eventfd_write(fd, 3)
    assert wait() == fastpath.KICKED
    for fd in kicks:  # both consumed: nothing is readable
        with pytest.raises(BlockingIOError):
            os.eventfd_read(fd)
    assert wait() == fastpath.TIMEOUT
    bell.interrupt()
    assert wait() == fastpath.DOORBELL
    assert bell.wait(0) is False  # the runner's look: no kick, the interrupt consumed
    bell.mark_lost("the front-end hung up")
    assert wait() == fastpath.DOORBELL
    with pytest.raises(PeerLostError, match="hung up"):
        bell.wait(0)
    bell.close()
    for fd in kicks + _calls:
        os.close(fd)
