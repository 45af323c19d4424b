"""The endpoints' C receive in a stream, both roles (issue 20: rproc host <-> rproc remote one-way): the messages
a receive takes from the ring all for its endpoint are served by the next receives in C (the first returned, the
rest queued as copies the Python path reads too), and a receive with nothing waiting waits in C in every wait
mode (spin: spin then sleep; busy: spin in slices), so that a stream pays no Python method per message. Every
result matches the Python path only (conftest's ``host_path``: the C path off)."""

from __future__ import annotations

import select
import signal
import threading
import time
from array import array
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rpmsg import Profile, RpmsgDevice, WouldBlock, loopback_pair
from rpmsg.endpoint import Endpoint
from rpmsg.waiting import WaitMode
from tests.rpmsg.conftest import eventfd_pair

PROFILE = Profile(num=16, rx_count=16, tx_count=16)
PY_METHODS = ("_recv_py", "_recvfrom_py", "_recvfrom_many_py")


@pytest.fixture(params=["block", "spin", "busy"])
def pair(request: pytest.FixtureRequest, host_path: str) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    yield from eventfd_pair(host_path, PROFILE, wait=request.param)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each receiving Python method ran (host endpoint: "_recv_py"; remote: "remote_recv_py")."""
    counts: Counter[str] = Counter()
    for name in PY_METHODS:
        original = getattr(Endpoint, name)

        def counted(self: Endpoint, *args: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            counts[_name if type(self.device.core).__name__ == "HostCore" else "remote" + _name] += 1
            return _original(self, *args, **kw)

        monkeypatch.setattr(Endpoint, name, counted)
    return counts


def _connect(host: RpmsgDevice, remote: RpmsgDevice) -> tuple[Endpoint, Endpoint]:
    r = remote.endpoint("svc")
    h = host.open("svc", timeout=5)
    h.send(b"hello")
    assert r.recv() == b"hello"
    r.sendto(b"hi", h.addr)
    assert h.recv() == b"hi"
    return h, r


def test_a_stream_waiting_in_the_ring_is_received_in_c(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str], host_path: str
) -> None:
    """Ten messages wait for one endpoint, either role: recv, recvfrom (with a smaller bufsize too) and
    recvfrom_many take them one after the other without entering the Python methods (before: the first receive
    took all ten, the other nine were each the Python method's)."""
    host, remote = pair
    h, r = _connect(host, remote)
    calls.clear()
    for sender, receiver, to in ((h, r, None), (r, h, h.addr)):
        payloads = [bytes([i]) * (i * 40) for i in range(10)]
        for p in payloads:
            assert (sender.send(p) if to is None else sender.sendto(p, to)) == len(p)
        assert receiver.recv() == payloads[0]
        assert receiver.recvfrom() == (payloads[1], sender.addr)
        assert receiver.recvfrom(50) == (payloads[2][:50], sender.addr)
        assert receiver.recv(3) == payloads[3][:3]
        assert receiver._state()["queued"] == 6
        assert receiver._state()["queued_bytes"] == sum(map(len, payloads[4:]))
        assert receiver.recvfrom_many(3) == [(p, sender.addr) for p in payloads[4:7]]
        assert receiver.recvfrom_many(64, 100) == [(p[:100], sender.addr) for p in payloads[7:]]
        assert receiver._state()["queued"] == receiver._state()["queued_bytes"] == 0
        for p in payloads:  # what a wait took in, all taken at once by the next recvfrom_many
            assert (sender.send(p) if to is None else sender.sendto(p, to)) == len(p)
        assert receiver.recvfrom() == (payloads[0], sender.addr)
        assert receiver.recvfrom_many() == [(p, sender.addr) for p in payloads[1:]]
        assert receiver._state()["queued"] == receiver._state()["queued_bytes"] == 0
    if host_path == "c-path":
        assert calls == Counter()


def test_what_the_c_receive_queued_is_read_by_the_python_path_too(
    pair: tuple[RpmsgDevice, RpmsgDevice], host_path: str
) -> None:
    """The rest of a batch waits in the queue as copies: recv_message, a receive with a timeout, close and the
    state read them as the Message the Python path queues would be."""
    host, remote = pair
    h, r = _connect(host, remote)
    for i in range(5):
        r.sendto(b"m%d" % i, h.addr)
    assert h.recv() == b"m0"
    msg = h.recv_message()
    assert (msg.src, msg.dst, msg.payload, msg.held) == (r.addr, h.addr, b"m1", False)
    h.settimeout(1)
    assert h.recvfrom() == (b"m2", r.addr)  # (a timeout: the Python method's)
    state = h._state()
    assert (state["queued"], state["queued_bytes"], state["held_in_queue"]) == (2, 4, 0)
    h.close()  # two copies still queued: nothing to give back, nothing raised
    assert h._state()["queued"] == h._state()["queued_bytes"] == 0


def test_the_queue_bounds_apply_to_the_batch_a_receive_takes(
    pair: tuple[RpmsgDevice, RpmsgDevice], host_path: str
) -> None:
    """A batch larger than the endpoint's queue bound: the general delivery drops what the bound does not take,
    as the Python path does (the C receive queues only what fits whole)."""
    host, remote = pair
    h, r = _connect(host, remote)
    h.max_queued = 3
    for i in range(8):
        r.sendto(b"n%d" % i, h.addr)
    got = [h.recv() for _ in range(3)]
    assert got == [b"n0", b"n1", b"n2"]
    h.settimeout(0)
    with pytest.raises(WouldBlock):
        h.recv()
    assert h.dropped == 5


SEQ = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 496)),
        st.tuples(
            st.sampled_from(["recv", "recvfrom", "recv_message", "recv_many", "recv_many_into"]), st.integers(1, 600)
        ),
    ),
    max_size=50,
)


# Four messages (1,501 bytes) waiting and recvfrom_many(4): the C receive took all four into its list; the Python
# path delivered them to the endpoint's queue first, whose bound (1,500 bytes here) dropped the fourth.
PAST_THE_QUEUE_BOUND = [("send", 13), ("send", 496), ("send", 496), ("send", 496), ("recv_many", 3)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=SEQ)
@example(ops=PAST_THE_QUEUE_BOUND)
def test_a_stream_gives_the_same_results_with_and_without_the_c_receive(
    ops: list[tuple[str, int]], host_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random runs of remote -> host sends (several waiting at once) and every kind of receive on the host,
    non-blocking: the same results, queue state and drops with the C methods as with the Python path only."""
    if host_path != "c-path":
        return  # one comparison is enough: each run builds both worlds
    results = []
    for c_path in (True, False):
        with monkeypatch.context() as env:
            env.setenv("RPROC_RPMSG_FASTPATH", "1" if c_path else "0")
            host, remote = loopback_pair(Profile(num=8, rx_count=8, tx_count=8), wait="block", eventfd=True)
        assert host._gate.open == c_path
        try:
            r = remote.endpoint("svc")
            h = host.open("svc", timeout=5)
            h.max_queued, h.max_queued_bytes = 5, 1500
            h.settimeout(0)
            r.settimeout(0)
            out: list[object] = []
            for op, arg in ops:
                try:
                    if op == "send":
                        out.append(r.sendto(bytes([arg & 0xFF]) * arg, h.addr))
                    elif op == "recv":
                        out.append(h.recv(arg))
                    elif op == "recvfrom":
                        out.append(h.recvfrom(arg))
                    elif op == "recv_many":
                        out.append(h.recvfrom_many(1 + arg % 4, arg))
                    elif op == "recv_many_into":  # 1..4 slots of arg bytes
                        buf, sizes = bytearray(arg * (1 + arg % 4)), array("I", bytes(4 * (1 + arg % 4)))
                        n = h.recv_many_into(buf, sizes, arg)
                        out.append((n, bytes(buf), list(sizes)))
                    else:
                        with h.recv_message() as msg:
                            out.append((msg.src, msg.dst, bytes(msg.payload)))
                except Exception as exc:
                    out.append(type(exc).__name__)
                state = h._state()
                out.append((state["queued"], state["queued_bytes"], h.dropped))
            results.append(out)
        finally:
            remote.close()
            host.close()
    assert results[0] == results[1]


def test_a_receive_with_nothing_waiting_waits_in_c_in_modes_spin_and_busy(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str], host_path: str
) -> None:
    """No timeout, nothing waiting: spin spins then sleeps in C, busy spins in C (a slice longer than the wait
    here), block sleeps in C; the message that comes later is taken there (before: the Python method waited,
    in spin and busy)."""
    host, remote = pair
    h, r = _connect(host, remote)
    if host.wait_mode == "busy":
        host._gate.busy_ns = remote._gate.busy_ns = 10**10
    calls.clear()
    for i in range(5):
        timer = threading.Timer(0.02, lambda i=i: r.sendto(b"late %d" % i, h.addr))
        timer.start()
        assert h.recv() == b"late %d" % i
        timer.join()
        timer = threading.Timer(0.02, lambda i=i: h.send(b"back %d" % i))
        timer.start()
        assert r.recvfrom_many() == [(b"back %d" % i, h.addr)]
        timer.join()
    if host_path == "c-path":
        assert calls == Counter()
    assert host.waiting.owner is None and remote.waiting.owner is None


def test_a_busy_slice_that_ends_empty_hands_over_to_the_python_method(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str], host_path: str
) -> None:
    """Busy: a slice (1 ms) that ends with nothing waiting goes on in the Python method, which looks at the
    doorbell now and then (the peer's end); the message is received all the same."""
    host, remote = pair
    if host.wait_mode != "busy":
        return
    h, r = _connect(host, remote)
    calls.clear()
    sent: list[float] = []
    timer = threading.Timer(0.1, lambda: (sent.append(time.monotonic()), r.sendto(b"late", h.addr)))
    timer.start()
    entered = time.monotonic()
    assert h.recv() == b"late"
    timer.join()
    if entered < sent[0] - 0.01:  # (a loaded machine may run the timer first: then the message was waiting)
        assert calls["_recv_py"] == 1


def test_a_signal_reaches_python_while_a_receive_spins_in_c(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """Spinning in C (spin, busy) or sleeping (block): a handler that raises ends the receive with its exception
    and leaves the doorbell unowned; the next receive gets its message."""
    host, remote = pair
    h, r = _connect(host, remote)
    if host.wait_mode == "busy":
        host._gate.busy_ns = 10**8  # one slice of 0.1 s in C: the handler runs when it ends

    class Stop(Exception):
        pass

    def stop(signum: int, frame: object) -> None:
        raise Stop

    saved = signal.signal(signal.SIGALRM, stop)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.03)
        with pytest.raises(Stop):
            h.recv()
        assert host.waiting.owner is None
        r.sendto(b"still served", h.addr)
        assert h.recv() == b"still served"
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, saved)


class _Stop(Exception):
    pass


class _RaisingAfterRelease:
    """The device's lock, with a signal handler's exception raised once just as a release returns (where an
    alarm's handler runs: after the C call, before the next bytecode), after ``skip`` releases."""

    def __init__(self, lock: Any, skip: int) -> None:
        self.lock, self.skip = lock, skip

    def release(self) -> None:
        self.lock.release()
        self.skip -= 1
        if self.skip == -1:
            raise _Stop

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lock, name)

    def __enter__(self) -> bool:
        return bool(self.lock.acquire())

    def __exit__(self, *exc: object) -> None:
        self.lock.release()


@pytest.mark.parametrize("wait", ["block", "spin", "busy"])
def test_a_signal_right_after_the_wait_lets_go_of_the_lock_ends_the_receive_cleanly(
    wait: WaitMode, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Python wait lets go of the device's lock while it waits (busy: around each slice; spin and block: while
    it owns the doorbell). A signal handler that raises just after that release used to skip the re-acquire: the
    receive's ``with lock`` then failed with "cannot release un-acquired lock" instead of the handler's exception
    (test_a_signal_reaches_python_while_a_receive_spins_in_c failed so now and then, python-path busy). Now the
    handler's exception ends the receive, the lock is free, the doorbell unowned, the next receive served."""
    monkeypatch.setenv("RPROC_RPMSG_FASTPATH", "0")
    host, remote = loopback_pair(PROFILE, wait=wait, eventfd=True)
    try:
        h, r = _connect(host, remote)
        h.settimeout(5)
        real = host._lock
        host._lock = _RaisingAfterRelease(real, skip=0)  # type: ignore[assignment]
        with pytest.raises(_Stop):
            h.recv()
        host._lock = real
        assert not real._is_owned()
        assert real.acquire(False)  # nobody holds it
        real.release()
        assert host.waiting.owner is None
        r.sendto(b"still served", h.addr)
        assert h.recv() == b"still served"
    finally:
        remote.close()
        host.close()


def test_a_pollable_descriptor_sees_what_the_c_receive_queued(
    pair: tuple[RpmsgDevice, RpmsgDevice], host_path: str
) -> None:
    """fileno() after the C receive queued the rest of a batch: readable while those wait, not once they are
    taken (the pump thread it starts closes the C methods: the Python method takes them)."""
    host, remote = pair
    h, r = _connect(host, remote)
    for i in range(3):
        r.sendto(b"p%d" % i, h.addr)
    assert h.recv() == b"p0"
    fd = h.fileno()
    assert select.select([fd], [], [], 0)[0] == [fd]
    assert [h.recv(), h.recv()] == [b"p1", b"p2"]
    assert select.select([fd], [], [], 0)[0] == []


def test_recvfrom_many_that_waits_takes_the_batch_its_wait_took_in(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str], host_path: str
) -> None:
    """recvfrom_many with nothing waiting, then a batch of ten in one publish: the first ``max`` are returned (cut
    to bufsize), the rest wait in the queue whole for the next receives, as the Python path leaves them; no
    Python method runs on the C path."""
    host, remote = pair
    h, r = _connect(host, remote)
    if host.wait_mode == "busy":
        host._gate.busy_ns = remote._gate.busy_ns = 10**10
    calls.clear()
    for sender, receiver, to in ((h, r, None), (r, h, h.addr)):
        payloads = [bytes([i + 1]) * (i * 30) for i in range(10)]
        timer = threading.Timer(0.02, sender.send_many, (payloads,) if to is None else (payloads, to))
        timer.start()
        assert receiver.recvfrom_many(4, 100) == [(p[:100], sender.addr) for p in payloads[:4]]
        timer.join()
        assert receiver._state()["queued"] == 6
        assert receiver._state()["queued_bytes"] == sum(map(len, payloads[4:]))
        assert receiver.recv() == payloads[4]
        assert receiver.recvfrom_many() == [(p, sender.addr) for p in payloads[5:]]
    if host_path == "c-path":
        assert calls == Counter()


@pytest.mark.parametrize("role", ["host", "remote"])
@pytest.mark.parametrize("zero_copy_beside", [False, True])
def test_a_batch_receive_takes_what_its_max_allows_past_the_queue_bound(
    host_path: str, role: str, zero_copy_beside: bool
) -> None:
    """recvfrom_many(max) takes the messages waiting up to max straight to the caller on every path: the
    endpoint's queue bound is for messages nobody takes yet, and it dropped the last of four here on the Python
    path (the batch was queued first), while the C receive took all four. Beside a zero-copy endpoint too."""
    host, remote = loopback_pair(Profile(num=8, rx_count=8, tx_count=8), eventfd=True)
    try:
        local, peer = (host, remote) if role == "host" else (remote, host)
        if zero_copy_beside:
            local.endpoint("held", zero_copy=True)
        ep = local.endpoint("svc")
        other = peer.endpoint(peer=ep.addr)
        ep.max_queued, ep.max_queued_bytes = 5, 1500
        ep.settimeout(5)
        sent = [bytes([n & 0xFF]) * n for n in (13, 496, 496, 496)]  # 1,501 bytes
        assert other.send_many(sent) == 4
        assert ep.recvfrom_many(4) == [(data, other.addr) for data in sent]
        assert ep.dropped == 0
    finally:
        remote.close()
        host.close()
