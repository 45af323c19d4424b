"""The C path kicks and drains every doorbell kind C can (transports.doorbell.CDoorbell): eventfds, one byte per
kick on a stream socket (OpenAMP's Linux layout, QEMU's chardev), one-byte datagrams, vhost-user's eventfds (a
kick and a call descriptor per queue, the wait's kicks drained through an epoll of them). For each kind, the C path
and the Python path run the same scripted exchange in both roles and must show the peer the same kicks (counted
at the peer's descriptor: a stream kick is one byte, a datagram one datagram, an eventfd its counter), respect
the peer's notification suppression the same way, and report a dead peer the same way (``PeerLost``). With the C
path the endpoints' C methods take every message, sleeps included: no Python method runs per message.
(Before the doorbells described themselves to C, only an eventfd doorbell opened the gate.)"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

import pytest

from rpmsg import PeerLost, Profile, RpmsgDevice, WouldBlock
from tests.rpmsg.conftest import count_python_methods, fd_is_open
from transports.doorbell import (
    KICK_DATAGRAM,
    KICK_EPOLL,
    KICK_EVENTFD,
    KICK_STREAM_BYTE,
    DatagramSocketDoorbell,
    Doorbell,
    EventfdSocketDoorbell,
    SocketDoorbell,
    c_doorbell_of,
)
from transports.loop import loop_pair
from transports.vhost_user_session import VhostUserDoorbell

PROFILE = Profile(num=16, rx_count=16, tx_count=16)
KINDS = {"eventfd": KICK_EVENTFD, "stream": KICK_STREAM_BYTE, "dgram": KICK_DATAGRAM, "vhost": KICK_EVENTFD}
DRAINS = {**KINDS, "vhost": KICK_EPOLL}  # how each kind's wake-up is drained
PY_METHODS = ("_send_py", "_sendto_py", "_recv_py", "_recvfrom_py", "_recvfrom_many_py", "_send_many_py")


def _bells(kind: str) -> tuple[Doorbell, Doorbell]:
    """(host's, remote's) doorbell of ``kind``, in this process, as the shm transport makes them."""
    if kind == "stream":
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return SocketDoorbell(a), SocketDoorbell(b)
    if kind == "dgram":
        da, db = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        sa, sb = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        return DatagramSocketDoorbell(da, sa), DatagramSocketDoorbell(db, sb)
    if kind == "vhost":  # the remote is vhost-user's back-end; the host mirrors it (its kicks in are the calls)
        kicks = [os.eventfd(0, os.EFD_CLOEXEC) for _ in range(2)]
        calls = [os.eventfd(0, os.EFD_CLOEXEC) for _ in range(2)]
        bells = VhostUserDoorbell(calls, kicks), VhostUserDoorbell(kicks, calls)
        for fd in kicks + calls:
            os.close(fd)  # the doorbells hold duplicates
        return bells
    to_remote, to_host = os.eventfd(0, os.EFD_CLOEXEC), os.eventfd(0, os.EFD_CLOEXEC)
    a, b = socket.socketpair()
    return EventfdSocketDoorbell(to_host, to_remote, a), EventfdSocketDoorbell(os.dup(to_remote), os.dup(to_host), b)


def _pair(kind: str, monkeypatch: pytest.MonkeyPatch, c_path: bool, wait: Any = "block") -> tuple[RpmsgDevice, ...]:
    monkeypatch.setenv("RPROC_RPMSG_FASTPATH", "1" if c_path else "0")
    host_side, remote_side = loop_pair(PROFILE.base + PROFILE.size)
    host_side.doorbell.close()
    remote_side.doorbell.close()
    host_bell, remote_bell = _bells(kind)
    host = RpmsgDevice(PROFILE.host_core(host_side.memory), host_bell, wait=wait, limits=PROFILE.limits)
    host.start()
    remote = RpmsgDevice(PROFILE.remote_core(remote_side.memory), remote_bell, wait=wait, limits=PROFILE.limits)
    assert host._gate.open == remote._gate.open == c_path, (kind, c_path)
    return host, remote


def _take_kicks(bell: Doorbell, values: list[bytes] | None = None) -> int:
    """The kicks waiting at this side's descriptor, consumed: what the peer sent us, counted as it arrives (and,
    for the socket kinds, the bytes themselves appended to ``values``: each kick's queue number)."""
    described = c_doorbell_of(bell)
    assert described is not None
    fd, n = described.drain_fd, 0
    if described.drain == KICK_EPOLL:  # vhost-user: the kick eventfd of each queue; the queue numbers kept
        assert isinstance(bell, VhostUserDoorbell)
        for queue, kick in enumerate(bell._kicks):
            with contextlib.suppress(BlockingIOError):
                count = os.eventfd_read(kick)
                n += count
                if values is not None:
                    values.append(bytes([queue]) * count)
        return n
    if described.drain == KICK_EVENTFD:
        try:
            return os.eventfd_read(fd)
        except BlockingIOError:
            return 0
    while True:
        try:
            data = os.read(fd, 4096)
        except BlockingIOError:
            return n
        if not data:
            return n
        n += len(data) if described.drain == KICK_STREAM_BYTE else 1
        if values is not None:
            values.append(data)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_python_methods(monkeypatch, PY_METHODS)


def _script(host: RpmsgDevice, remote: RpmsgDevice, values: list[bytes]) -> list[tuple[Any, ...]]:
    """One exchange, single-threaded (nobody reads a doorbell but this script): after every step, what it
    returned and the kicks each side's peer saw."""
    seen: list[tuple[Any, ...]] = []

    def step(what: str, fn: Callable[[], object]) -> None:
        try:
            result: object = fn()
        except Exception as exc:  # the same exception on both paths is part of the comparison
            result = (type(exc).__name__, str(exc))
        seen.append(
            (
                what,
                result,
                "kicks to remote",
                _take_kicks(remote.doorbell, values),
                "to host",
                _take_kicks(host.doorbell, values),
            )
        )

    r = remote.endpoint("svc")
    h = host.open("svc", timeout=5)
    h.settimeout(0)
    r.settimeout(0)
    _take_kicks(remote.doorbell)
    _take_kicks(host.doorbell)
    for i in range(40):  # more than the rings hold: buffers recycle
        payload = bytes([i]) * (i * 13 % 497)
        step("host send", partial(h.send, payload))
        step("remote recvfrom", lambda: r.recvfrom())
        step("remote reply", partial(r.sendto, payload[::-1], h.addr))
        step("host recv", lambda: h.recv())
        step("host recv, nothing", lambda: h.recv())
    # The peer turns its kicks off (busy polling): no kick, either path; on again: kicked again.
    remote.request_kicks(False)
    host.request_kicks(False)
    for _ in range(3):
        step("host send, remote suppresses", lambda: h.send(b"quiet"))
        step("remote reply, host suppresses", lambda: r.send(b"quiet"))
    step("remote recv_many", lambda: r.recv_many(64))
    step("host recv_many", lambda: h.recv_many(64))
    remote.request_kicks(True)
    host.request_kicks(True)
    step("host send_many", lambda: h.send_many([b"a", b"bb", b"ccc"]))
    step("remote send_many", lambda: r.send_many([b"x", b"yy"]))
    step("remote recv_many", lambda: r.recv_many(64))
    step("host recv_many", lambda: h.recv_many(64))
    for _ in range(3):
        step("host send", lambda: h.send(b"m"))
        step("remote recv", lambda: r.recv())
        step("remote send", lambda: r.send(b"n"))
        step("host recv", lambda: h.recv())
    return seen


def _dead_peer(host: RpmsgDevice, remote: RpmsgDevice, role: str) -> list[Any]:
    """The peer's doorbell closes (its process died): the next kick fails; what each call reports."""
    r = remote.endpoint("svc")
    h = host.open("svc", timeout=5)
    h.settimeout(0)
    r.settimeout(0)
    remote.request_kicks(True)
    host.request_kicks(True)
    me, peer, to = (h, remote, r.addr) if role == "host" else (r, host, h.addr)
    peer.doorbell.close()
    out: list[Any] = []
    for _ in range(3):
        try:
            out.append(me.sendto(b"hello", to))
        except (PeerLost, WouldBlock) as exc:
            # The OS's words aside: a datagram socket reports ECONNREFUSED once, to whichever send meets it
            # first (the C kick), and ENOTCONN after (the runner's kick that reports it).
            text = str(exc).replace("Connection refused", "Transport endpoint is not connected")
            out.append((type(exc).__name__, text))
    return out


@pytest.mark.parametrize("wait", ["spin", "block"])
def test_the_same_kicks_and_results_on_both_paths(
    wait: str, monkeypatch: pytest.MonkeyPatch, calls: Counter[str]
) -> None:
    """In ``"spin"`` both paths leave the kicks as the script sets them: the C path of every kind and the Python
    path show the same kicks. In ``"block"`` the C receive turns the peer's kicks off while it looks (and the
    general path does not), so there every kind's C path is compared with the eventfd's."""
    c_calls: dict[str, Counter[str]] = {}
    c_traces: dict[str, list[tuple[Any, ...]]] = {}
    for kind in KINDS:
        traces = []
        values: dict[bool, list[bytes]] = {True: [], False: []}  # the socket kinds' kick bytes, as they came
        for c_path in (True, False):
            host, remote = _pair(kind, monkeypatch, c_path, wait=wait)
            calls.clear()
            try:
                traces.append(_script(host, remote, values[c_path]))
            finally:
                remote.close()
                host.close()
            if c_path:
                c_calls[kind] = Counter(calls)
        c_traces[kind] = traces[0]
        if wait == "spin":
            assert traces[0] == traces[1], kind
            assert values[True] == values[False], kind  # the same queue numbers in the same datagrams/reads
        if kind != "eventfd":
            assert b"".join(values[True]) and set(b"".join(values[True])) <= {0, 1}, kind
        assert [t[:2] for t in traces[0]] == [t[:2] for t in traces[1]], kind  # the same results
        kicks = [(t[3], t[5]) for t in traces[0]]
        assert sum(a + b for a, b in kicks) >= (20 if wait == "spin" else 3), (kind, kicks)  # through the descriptor
        quiet = [t for t in traces[0] if "suppresses" in str(t[0])]
        assert quiet and all(t[3] == 0 and t[5] == 0 for t in quiet), kind  # suppression respected
    assert c_traces["stream"] == c_traces["dgram"] == c_traces["eventfd"] == c_traces["vhost"]
    # The C methods hand over to the Python ones for the socket kinds exactly where they do for eventfds (nothing
    # waiting with timeout 0, ...): before, every send and receive with a socket or datagram doorbell did.
    assert c_calls["stream"] == c_calls["dgram"] == c_calls["eventfd"] == c_calls["vhost"], c_calls
    assert c_calls["eventfd"]["_send_py"] < 10 and c_calls["eventfd"]["_sendto_py"] == 0, c_calls


def _on_both_paths(
    kind: str, monkeypatch: pytest.MonkeyPatch, script: Callable[[RpmsgDevice, RpmsgDevice], Any]
) -> list[Any]:
    """``script(host, remote)`` on a pair of ``kind`` with the C path, then without: its two results."""
    results = []
    for c_path in (True, False):
        host, remote = _pair(kind, monkeypatch, c_path)
        try:
            results.append(script(host, remote))
        finally:
            for device in (host, remote):
                with contextlib.suppress(Exception):  # a dead side's close may kick through a closed doorbell
                    device.close()
    return results


@pytest.mark.parametrize("role", ["host", "remote"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_dead_peer_is_reported_the_same_way(kind: str, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    results = _on_both_paths(kind, monkeypatch, lambda host, remote: _dead_peer(host, remote, role))
    assert results[0] == results[1]
    if kind not in ("eventfd", "vhost"):  # an eventfd write cannot fail: the peer's end is seen at the next wait
        assert results[0][0] == 5 and results[0][1][0] == "PeerLost", results[0]


def _open_fds() -> set[int]:
    return {int(name) for name in os.listdir("/proc/self/fd")}


def _own_doorbell_closed(host: RpmsgDevice, remote: RpmsgDevice, role: str) -> tuple[list[Any], list[bytes]]:
    """This side's own doorbell closes under its device (its link closed first); every descriptor number it had
    that is free then is taken by a socket holding b"keep" (what a process opening files meanwhile would do):
    what the device's calls report, and what each socket shows after them (b"keep" and nothing written: a kick
    into the reused number, or a drain from it, changes that)."""
    r = remote.endpoint("svc")
    h = host.open("svc", timeout=5)
    remote.request_kicks(True)
    host.request_kicks(True)
    me, mine, peer_ep = (h, host, r) if role == "host" else (r, remote, h)
    peer_ep.sendto(b"waiting", me.addr)  # a message already there when the doorbell closes
    described = c_doorbell_of(mine.doorbell)
    assert described is not None
    numbers = {described.poll_fd, described.drain_fd, *(described.kick_fd_of(q) for q in (0, 1))} - {-1}
    carriers = [socket.socketpair() for _ in numbers]  # made first: they must not take the numbers themselves
    mine.doorbell.close()
    taken = []
    for n, (a, b) in zip(sorted(numbers), carriers, strict=True):
        if not fd_is_open(n):
            os.dup2(a.fileno(), n)
            b.send(b"keep")
            taken.append((n, b))
        a.close()
    try:
        me.settimeout(1)
        out: list[Any] = []
        for call in [lambda: me.sendto(b"hello", peer_ep.addr)] * 3 + [
            me.recv,
            me.recv,
            lambda: me.send_many([b"a", b"b"], peer_ep.addr),
        ]:
            try:
                out.append(call())
            except (PeerLost, WouldBlock) as exc:
                out.append((type(exc).__name__, str(exc)))
        shown = []
        for n, b in taken:
            b.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                shown.append(b"written: " + b.recv(64))
            os.set_blocking(n, False)
            try:
                shown.append(os.read(n, 64))
            except BlockingIOError:
                shown.append(b"")
        return out, shown
    finally:
        for n, _ in taken:
            os.close(n)
        for _, b in carriers:
            b.close()


@pytest.mark.parametrize("role", ["host", "remote"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_a_doorbell_closed_under_its_device(kind: str, role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The device fails at once, with the doorbell's own words, on both paths the same (a message that had
    arrived is still delivered, as after any failure), and its C code never
    writes into (nor reads from) a descriptor number the process reused: the doorbell's descriptors stay open
    while the device lives (transports.doorbell.Loans) and close with it. Before, the C path's sends went on
    kicking the closed eventfd's number: the kicks landed in whatever the process opened next (here, sockets)."""
    before = _open_fds()
    results = _on_both_paths(kind, monkeypatch, lambda host, remote: _own_doorbell_closed(host, remote, role))
    assert results[0] == results[1]
    out, held = results[0]
    assert all(shown == b"keep" for shown in held), held
    closed = "vhost-user: doorbell closed (on this side)" if kind == "vhost" else "doorbell closed (on this side)"
    lost = ("PeerLost", f"rpmsg device unusable: {closed}")
    assert out == [lost, lost, lost, b"waiting", lost, lost], out  # what had arrived is still delivered
    assert _open_fds() == before  # every descriptor closed with the devices


@pytest.mark.parametrize("timeout", [None, 5.0])
@pytest.mark.parametrize("wait", ["block", "spin"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_sleeping_receivers_are_woken_in_c(
    kind: str, wait: str, timeout: float | None, monkeypatch: pytest.MonkeyPatch, calls: Counter[str], host_path: str
) -> None:
    """Both roles sleep on the doorbell (the kick drained in C) and answer: no Python method per message, with
    the endpoints' timeout set too (the C receive keeps it; before, a timeout meant the Python method)."""
    c_path = host_path == "c-path"
    host, remote = _pair(kind, monkeypatch, c_path, wait=wait)
    try:
        r = remote.endpoint("svc")
        h = host.open("svc", timeout=5)
        r.settimeout(timeout)
        h.settimeout(timeout)
        h.send(b"first")
        assert r.recv() == b"first"
        rounds = 200

        def echo() -> None:
            for _ in range(rounds):
                data, src = r.recvfrom()
                r.sendto(data, src)

        thread = threading.Thread(target=echo)
        calls.clear()
        thread.start()
        for i in range(rounds):
            h.send(b"%d" % i)
            assert h.recv() == b"%d" % i
        thread.join(10)
        assert not thread.is_alive()
        if c_path and wait == "block":
            assert calls == Counter(), calls  # failed before: every socket or datagram kind ran _recv_py etc.
        elif not c_path:
            assert calls["_send_py"] == rounds
    finally:
        remote.close()
        host.close()


def _doorbells(kind: str) -> Iterator[Doorbell]:
    yield from _bells(kind)


@pytest.mark.parametrize("kind", list(KINDS))
def test_the_kick_word_matches_the_doorbell(kind: str) -> None:
    from rpmsg import fastpath

    for bell in _doorbells(kind):
        described = c_doorbell_of(bell)
        assert described is not None and described.kick == KINDS[kind] and described.drain == DRAINS[kind]
        for queue in (0, 1):
            fd = described.kick_fd_of(queue)
            assert fd >= 0 and fastpath.kick_word(fd, described.kick) == fd | KINDS[kind] << 24
        if kind == "vhost":  # a descriptor per queue, none for a queue it does not have
            assert described.kick_fd == -1 and described.kick_fd_of(0) != described.kick_fd_of(1)
            assert described.kick_fd_of(2) == -1
        bell.close()
    assert fastpath.kick_word(1 << 24, KICK_EVENTFD) == -1  # does not fit: the runner kicks
    assert fastpath.kick_word(3, 7) == -1


@pytest.mark.parametrize("kind", ["stream", "dgram"])
def test_the_c_kick_is_the_python_kick(kind: str) -> None:
    """rpf_kick against the doorbell's notify, on the same socket: the same bytes for each queue, a full socket
    accepted by both (kicks are pending: the peer looks at every queue), a dead peer refused by both (C returns
    0 and leaves the report to notify, which raises PeerLostError)."""
    from rpmsg import fastpath
    from transports.doorbell import PeerLostError

    lib = fastpath._module().lib
    ours, theirs = _bells(kind)
    described = c_doorbell_of(ours)
    assert described is not None
    word = fastpath.kick_word(described.kick_fd, described.kick)
    peer_fd = c_doorbell_of(theirs).drain_fd  # type: ignore[union-attr]

    def read_all() -> list[bytes]:
        got = []
        while True:
            try:
                got.append(os.read(peer_fd, 4096 if kind == "stream" else 64))
            except BlockingIOError:
                return got

    for queue in (0, 1, 257):
        assert lib.rpf_kick(word, queue) == 1
        c_bytes = read_all()
        ours.notify(queue)
        assert c_bytes == read_all() == [bytes([queue & 0xFF])]
    sender = socket.socket(fileno=os.dup(described.kick_fd))
    sender.setblocking(False)
    try:
        while True:  # fill the socket until a send would block
            sender.send(b"\1" * (4096 if kind == "stream" else 1))
    except BlockingIOError:
        pass
    finally:
        sender.close()
    full = 0
    for _ in range(3):
        full += lib.rpf_kick(word, 1)
        ours.notify(1)  # no error either
    assert full == 3
    read_all()
    theirs.close()
    assert lib.rpf_kick(word, 1) == 0  # the peer is gone: the runner's notify reports it
    with pytest.raises(PeerLostError):
        ours.notify(1)
    ours.close()
