"""The UART mirror's doorbell on the C path (issue 20, "the C path for every doorbell kind"): the endpoints' C
methods kick it through an eventfd its sender thread turns into the changes and the kick frame (KICK_MIRROR), the
device's lock asks that thread for a publish when a ring field this side writes changed (DeviceLock.watch), and a
sleeper drains the peer's kicks and writes in C (KICK_EPOLL). Before, a doorbell that carries memory closed the C
path for its device: every message ran the Python methods and a diff of the window in the caller's thread."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rpmsg import PeerLost
from rpmsg._native import fastpath_module
from rpmsg.device import RpmsgDevice
from rpmsg.fastpath import kick_word
from rpmsg.wiring import UART_PROFILE, host_on, remote_on
from tests.rpmsg.conftest import count_python_methods
from tests.transports.test_mirror import QueueLink, pty_links
from transports.doorbell import KICK_EPOLL, KICK_MIRROR, c_doorbell_of
from transports.memory import bytearray_memory
from transports.mirror import KICK, KICK_MSG, WRITE, Mirror, MirrorDoorbell
from transports.uart import UartLink, UartWindowLink

PY_METHODS = ("_send_py", "_sendto_py", "_recv_py", "_recvfrom_py", "_recvfrom_many_py", "_send_many_py")


def _until(what: Callable[[], bool], seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


@pytest.fixture
def bell() -> Iterator[tuple[MirrorDoorbell, QueueLink, Any]]:
    link = QueueLink()
    mem = bytearray_memory(0x200, da=0x1000)
    doorbell = MirrorDoorbell(link, Mirror(mem, [(0x1000, 0x80)], index_fields=[0x1002]))
    yield doorbell, link, mem
    doorbell.close()


def test_the_mirror_describes_itself_to_c(bell: tuple[MirrorDoorbell, QueueLink, Any]) -> None:
    doorbell, _, _ = bell
    described = c_doorbell_of(doorbell)
    assert described is not None
    assert (described.kick_fd, described.kick) == (doorbell.publish_fd, KICK_MIRROR)
    assert (described.poll_fd, described.drain) == (doorbell.fileno(), KICK_EPOLL)

    class Counting(MirrorDoorbell):
        def notify(self, queue: int) -> None:  # observes each kick: C must not go around it
            super().notify(queue)

    other = Counting(QueueLink(), Mirror(bytearray_memory(0x100), [(0, 0x10)]))
    try:
        assert c_doorbell_of(other) is None
    finally:
        other.close()
    doorbell.error = "mirror link lost: gone"
    assert c_doorbell_of(doorbell) is None
    doorbell.error = None
    doorbell.close()
    assert c_doorbell_of(doorbell) is None


def test_a_kick_written_in_c_is_the_changes_then_the_kick(bell: tuple[MirrorDoorbell, QueueLink, Any]) -> None:
    """rpf_kick on the mirror's kick word: its sender thread sends what changed (the index field last), then one
    kick frame per queue kicked; a "queue" past 2 is a publish without a kick."""
    doorbell, link, mem = bell
    rpf_kick = fastpath_module().lib.rpf_kick
    word = kick_word(doorbell.publish_fd, KICK_MIRROR)
    mem.write(0x1000, bytes(range(1, 9)))  # the index field at 0x1002 among them
    assert rpf_kick(word, 1) == 1
    _until(lambda: KICK_MSG.pack(KICK, 1) in link.sent)
    writes = [m for m in link.sent if m[0] == WRITE]
    assert link.sent[-1] == KICK_MSG.pack(KICK, 1) and len(writes) == len(link.sent) - 1
    assert writes[-1][1:5] == (0x1002).to_bytes(4, "little")  # the index last
    link.sent.clear()
    mem.write(0x1040, b"more")
    assert rpf_kick(word, 7) == 1  # a publish only
    _until(lambda: bool(link.sent))
    time.sleep(0.05)
    assert [m[0] for m in link.sent] == [WRITE] and b"more" in link.sent[0]
    link.sent.clear()
    for queue in (0, 1, 0):  # kicks coalesced while the thread is busy: at most one frame per queue each time
        assert rpf_kick(word, queue) == 1
    _until(lambda: KICK_MSG.pack(KICK, 0) in link.sent and KICK_MSG.pack(KICK, 1) in link.sent)
    assert all(m[0] == KICK for m in link.sent)  # nothing changed: kicks only


def test_the_peers_kicks_and_writes_are_drained_in_c(bell: tuple[MirrorDoorbell, QueueLink, Any]) -> None:
    """rpf_wait on the mirror's descriptors: the peer's kick (and a write that comes without one) ends a sleep as
    RPF_KICKED; an interrupt or a lost link leaves the drain empty (RPF_DOORBELL), for the runner's wait to say."""
    doorbell, link, _ = bell
    lib = fastpath_module().lib
    described = c_doorbell_of(doorbell)
    assert described is not None
    drain = kick_word(described.drain_fd, described.drain)

    def wait(timeout_ns: int) -> int:
        return int(lib.rpf_wait(fastpath_module().ffi.NULL, 0, described.poll_fd, drain, -1, timeout_ns))

    assert wait(0) == lib.RPF_TIMEOUT
    link.inbox.put(KICK_MSG.pack(KICK, 0))
    assert wait(2_000_000_000) == lib.RPF_KICKED
    assert wait(0) == lib.RPF_TIMEOUT  # consumed
    link.inbox.put(bytes([WRITE]) + (0x1100).to_bytes(4, "little") + b"peer")
    assert wait(2_000_000_000) == lib.RPF_KICKED
    doorbell.interrupt()
    assert wait(2_000_000_000) == lib.RPF_DOORBELL
    assert doorbell.wait(0) is False  # the runner's look: the interrupt consumed
    link.inbox.put(bytes([9]))  # not a mirror message: the peer is lost
    assert wait(2_000_000_000) == lib.RPF_DOORBELL
    with pytest.raises(ConnectionError, match="mirror: mirror message of kind 9"):
        doorbell.wait(0)


def test_the_lock_watches_two_rings_or_none() -> None:
    from rpmsg._endpoint_c import DeviceLock

    lock = DeviceLock()
    with pytest.raises(ValueError, match="two rings"):
        lock.watch(5, 0, 0)
    lock.watch(-1, 0, 0)  # nothing watched: a release asks nothing
    with lock:
        pass


@pytest.fixture
def uart_links() -> Iterator[tuple[UartLink, UartLink]]:
    with pty_links() as pair:
        yield pair


def _devices(links: tuple[UartLink, UartLink], wait: str, remote_wait: str | None = None) -> list[RpmsgDevice]:
    a, b = links
    p = UART_PROFILE
    host = host_on(UartWindowLink(a, p.size, "host"), p, wait=wait)  # type: ignore[arg-type]
    remote = remote_on(UartWindowLink(b, p.size, "remote"), p, wait=remote_wait or wait)  # type: ignore[arg-type]
    return [host, remote]


@pytest.mark.parametrize("wait", ["block", "spin"])
def test_rpmsg_over_a_serial_line_runs_no_python_method(
    uart_links: tuple[UartLink, UartLink], wait: str, monkeypatch: pytest.MonkeyPatch, host_path: str
) -> None:
    """Round trips, one-way sends, batches both ways over a pty: no endpoint Python method runs, both roles
    (before: the gate stayed closed for a doorbell that carries memory, and every message ran them); the same
    exchange on the Python path."""
    calls: Counter[str] = count_python_methods(monkeypatch, PY_METHODS)
    host, remote = devices = _devices(uart_links, wait)
    c_path = host_path == "c-path"
    try:
        assert host._gate.open == remote._gate.open == c_path
        served = remote.endpoint("svc")
        ep = host.open("svc", timeout=10)
        ep.settimeout(10)
        served.settimeout(10)
        ep.send(b"hello")
        assert served.recvfrom()[0] == b"hello"
        rng = random.Random(20)
        payloads = [rng.randbytes(rng.randrange(0, 497)) for _ in range(150)]  # > 16 buffers: recycled
        got: list[bytes] = []

        def serve() -> None:
            for _ in payloads:
                data, src = served.recvfrom()
                served.sendto(data[::-1], src)
            while len(got) < 13:  # the three batches, however many receives they take
                taken = served.recvfrom_many(64)
                got.extend(data for data, _ in taken)
            served.send_many([b"a", b"bb", b"ccc"], taken[-1][1])

        calls.clear()
        thread = threading.Thread(target=serve)
        thread.start()
        for payload in payloads:
            ep.send(payload)
            assert ep.recv() == payload[::-1]
        for batch in ([b"1", b"2"], [b"3"] * 10, [b"4"]):
            want = len(got) + len(batch)  # counted before the send: the remote may take the batch at once
            assert ep.send_many(batch) == len(batch)
            _until(lambda want=want: len(got) == want, 10)  # taken before the next is sent
        back = []
        while len(back) < 3:
            back += [m for m, _ in ep.recvfrom_many(8)]
        thread.join(10)
        assert not thread.is_alive()
        assert got == [b"1", b"2"] + [b"3"] * 10 + [b"4"] and back == [b"a", b"bb", b"ccc"]
        if c_path:
            assert calls == Counter(), calls
        else:
            assert calls["_send_py"] == calls["_recv_py"] == len(payloads), calls
    finally:
        for d in devices:
            d.close()


def test_the_same_messages_on_both_paths(uart_links: tuple[UartLink, UartLink], host_path: str) -> None:
    """Host and remote sleeping (block): a script of sends, replies and batches gives the same messages on either
    path (conftest's host_path), and the device reports the path it took; every reply is checked."""
    host, remote = devices = _devices(uart_links, "block")
    try:
        assert host._gate.open == remote._gate.open == (host_path == "c-path")
        assert (host._fast is not None) == (host_path == "c-path")
        served = remote.endpoint("svc")
        ep = host.open("svc", timeout=10)
        served.settimeout(10)
        ep.settimeout(10)
        log = []
        for i in range(40):
            ep.send(b"q%d" % i * (i % 7 + 1))
            data, src = served.recvfrom()
            served.sendto(data.upper(), src)
            log.append((data, ep.recv()))
        assert ep.send_many([b"x%d" % i for i in range(12)]) == 12
        seen: list[bytes] = []
        while len(seen) < 12:
            seen += [m for m, _ in served.recvfrom_many(32)]
        log.append((b"batch", b"|".join(seen)))
        assert log[0] == (b"q0", b"Q0") and log[-1][1] == b"|".join(b"x%d" % i for i in range(12))
        assert all(reply == question.upper() for question, reply in log[:-1])
    finally:
        for d in devices:
            d.close()


def test_the_lock_publishes_only_what_changed(uart_links: tuple[UartLink, UartLink], host_path: str) -> None:
    """A release of the device lock that changed no ring field this side writes asks no publish (a busy receiver
    takes the lock a million times a second); a C send that the peer asked no kick for still reaches it (the
    lock's publish carries it: the peer polls)."""
    host, remote = devices = _devices(uart_links, "block", remote_wait="busy")
    try:
        served = remote.endpoint("svc")
        ep = host.open("svc", timeout=10)
        served.settimeout(10)
        bell = host.doorbell
        assert isinstance(bell, MirrorDoorbell)
        runs = Counter[str]()
        changes = bell.mirror.changes

        def counted() -> list[bytes]:
            runs["changes"] += 1
            return changes()

        bell.mirror.changes = counted  # type: ignore[method-assign]
        time.sleep(0.2)
        runs.clear()
        for _ in range(1000):
            host._lock.acquire()
            host._lock.release()
        time.sleep(0.2)
        assert runs["changes"] == 0
        for i in range(30):
            ep.send(b"m%d" % i)  # the busy remote polls: it asked for no kick
            assert served.recvfrom()[0] == b"m%d" % i
        assert runs["changes"] > 0
        assert (host._fast is not None) == host._gate.open == (host_path == "c-path")
    finally:
        for d in devices:
            d.close()


def test_a_closing_remote_still_announces_its_endpoints_end(uart_links: tuple[UartLink, UartLink]) -> None:
    """The remote's close publishes its endpoints' name-service destroys (on the C path through the lock's
    release, then its doorbell closes): the host learns the channels are gone, on both paths, even when the
    sender thread is still busy with the first when the doorbell closes (before, what it had not read yet was
    never sent)."""
    host, remote = devices = _devices(uart_links, "busy", remote_wait="block")  # the host polls: no kicks
    try:
        served = [remote.endpoint(name) for name in ("a", "b", "c")]
        opened = [host.open(name, timeout=10) for name in ("a", "b", "c")]
        opened[0].send(b"hello")
        served[0].settimeout(10)
        src = served[0].recvfrom()[1]
        link = uart_links[1]
        send = link.send

        def slow(data: bytes, timeout: float | None = None) -> None:
            time.sleep(0.03)  # a slow line: the sender thread is still sending when the doorbell closes
            send(data, timeout)

        link.send = slow  # type: ignore[method-assign]
        served[0].sendto(bytes(400), src)  # the sender thread busy with it ...
        time.sleep(0.01)  # (its diff taken)
        remote.close()  # ... when the close's destroys are asked for and the doorbell closes

        def gone() -> bool:
            host.process()
            return not {"a", "b", "c"} & set(host.channels())

        _until(gone, 10)
    finally:
        for d in devices:
            d.close()


def test_a_receiver_asleep_when_the_link_fails_hears_of_it(uart_links: tuple[UartLink, UartLink]) -> None:
    """The host's receive sleeps (in C on the C path: the epoll of kicks and writes, with the alarm beside it)
    when its own port fails: the mirror's receiver thread records the loss and rings the alarm, which the C drain
    leaves to the doorbell's own wait, which raises: PeerLost from the sleeping receive, not a sleep to its
    timeout. (tests/transports/test_mirror.py: a peer that acknowledges nothing, on the default path.)"""
    host, remote = devices = _devices(uart_links, "block")
    try:
        served = remote.endpoint("svc")
        ep = host.open("svc", timeout=10)
        served.settimeout(10)
        ep.send(b"first")
        assert served.recvfrom()[0] == b"first"
        ep.settimeout(20)
        outcome: list[BaseException] = []

        def sleeper() -> None:
            try:
                ep.recv()
            except BaseException as exc:
                outcome.append(exc)

        thread = threading.Thread(target=sleeper)
        thread.start()
        time.sleep(0.3)  # asleep on the doorbell by now
        start = time.monotonic()
        uart_links[0].close()  # the host's port goes: its link fails
        thread.join(10)
        assert not thread.is_alive() and time.monotonic() - start < 5
        assert len(outcome) == 1 and isinstance(outcome[0], PeerLost), outcome
        assert "mirror link lost" in str(outcome[0])
        with pytest.raises(PeerLost):
            ep.send(b"again")
    finally:
        for d in devices:
            d.close()
