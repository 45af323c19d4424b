"""Zero-copy receive (``endpoint(zero_copy=True)`` + ``recv_message``), both roles: a message waiting for a
zero-copy endpoint is lent in its buffer by the endpoint's C ``recv_message`` (rpmsg/csrc/endpoint_message.c: no
Python method runs; before, every one went through the Python path's poll, ~16 us a message in one process),
and ``Message.release`` gives the buffer back in C. The Python path does the same (RpmsgDevice._give_back): the
buffer back under the device's lock, the peer kicked when it asked (before: a release from another thread
changed the ring without the lock, and its kick waited for our next receive), nothing after the device closed
(before: ``LocalError: queue 1 is closed``), the message left held while its view is exported (before: that
buffer was never given back). The random runs hold the C path to the Python one, shared memory byte for byte."""

from __future__ import annotations

import random
import select
import signal
import struct
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpmsg import Endpoint, Message, Profile, RpmsgDevice, RpmsgTimeout, WouldBlock, loopback_pair
from rpmsg.protocol import pack_header
from tests.rpmsg.conftest import count_python_methods
from virtio import Buf

PROFILE = Profile(num=8, rx_count=8, tx_count=8)


@pytest.fixture(params=["host", "remote"])
def ends(request: pytest.FixtureRequest, host_path: str) -> Iterator[tuple[RpmsgDevice, RpmsgDevice, str]]:
    """(the device receiving zero-copy, its peer, its role), in this process with eventfd kicks."""
    host, remote = loopback_pair(PROFILE, wait="block", eventfd=True)
    local, peer = (host, remote) if request.param == "host" else (remote, host)
    yield local, peer, request.param
    remote.close()
    host.close()


def _held(dev: RpmsgDevice) -> int:
    buffers = dev.state()["buffers"]
    assert isinstance(buffers, dict)
    return int(buffers["rx_held" if "rx_held" in buffers else "from_host_held"])


def _connect(local: RpmsgDevice, peer: RpmsgDevice) -> tuple[Endpoint, Endpoint]:
    zc = local.endpoint("zc", zero_copy=True)
    other = peer.endpoint(peer=zc.addr)
    zc.settimeout(5)
    other.settimeout(5)
    return zc, other


def test_a_waiting_message_is_lent_in_c(
    ends: tuple[RpmsgDevice, RpmsgDevice, str], host_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    local, peer, _ = ends
    zc, other = _connect(local, peer)
    other.send(b"first")  # a device's first message settles the channel in Python
    with zc.recv_message() as msg:
        assert bytes(msg.payload) == b"first"
    calls: Counter[str] = count_python_methods(monkeypatch, ["_recv_message_py"])
    for round_ in range(3):  # 3 x 8: more than the ring holds, so releases really recycle the buffers
        sent = [bytes([round_ * 8 + i]) * (i * 61) for i in range(8)]
        assert other.send_many(sent) == 8
        held = [zc.recv_message() for _ in range(8)]
        assert _held(local) == 8
        for msg, data in zip(held, sent, strict=True):
            assert isinstance(msg, Message) and msg.held
            assert isinstance(msg.payload, memoryview) and msg.payload.readonly
            assert (msg.src, msg.dst, bytes(msg.payload)) == (other.addr, zc.addr, data)
        for msg in held:
            msg.release()
            assert not msg.held
            with pytest.raises(ValueError):
                bytes(msg.payload)  # released: the buffer may already carry another message
            msg.release()  # twice: nothing more
        assert _held(local) == 0
    assert calls == (Counter() if host_path == "c-path" else Counter({"_recv_message_py": 24}))
    zc.settimeout(0)
    with pytest.raises(WouldBlock):
        zc.recv_message()  # nothing waiting: the Python method says so (the C one only lends)


@pytest.mark.parametrize("wait", ["block", "spin"])
def test_what_wakes_a_waiting_receive_is_lent_in_c(
    ends: tuple[RpmsgDevice, RpmsgDevice, str], host_path: str, wait: str
) -> None:
    """A zero-copy receive with nothing waiting waits (in C since stop 35; the Python method's wait looks through
    ``_lend`` after each wait): the messages that wake it from its sleep on the doorbell are lent in C, not taken
    in by the Python path's poll, which would queue them all (~13 us a message). (Wait mode busy never sleeps:
    between its spin slices the Python method looks at the rings itself, so what comes meanwhile may be taken
    either way.)"""
    local, peer, _ = ends
    local.wait_mode = wait  # type: ignore[assignment]
    zc, other = _connect(local, peer)
    got: list[Message] = []
    t = threading.Thread(target=lambda: got.append(zc.recv_message()))
    t.start()
    deadline = time.monotonic() + 10
    while local._gate.owner is None:  # until it sleeps on the doorbell (spin: once its spin gave up)
        assert time.monotonic() < deadline, "the receive never slept on the doorbell"
        time.sleep(0.001)
    sent = [bytes([i]) * (100 + i) for i in range(5)]
    assert other.send_many(sent) == 5
    t.join(5)
    assert len(got) == 1 and bytes(got[0].payload) == sent[0]
    assert zc._state()["queued"] == (0 if host_path == "c-path" else 4)
    got += [zc.recv_message() for _ in range(4)]
    assert [bytes(m.payload) for m in got] == sent
    for msg in got:
        msg.release()
    assert _held(local) == 0


@pytest.mark.parametrize("timeout", [None, 5.0])
@pytest.mark.parametrize("wait", ["block", "spin"])
def test_a_zero_copy_receive_waits_in_c(
    ends: tuple[RpmsgDevice, RpmsgDevice, str],
    host_path: str,
    wait: str,
    timeout: float | None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """recv_message with nothing waiting waits in C, as the copying receives do (endpoint_wait.c's wait_turn, a
    look that lends instead of taking): 50 messages, each sent while the receive waits for it (asleep on the
    doorbell, or spinning), lent with no Python method run; before, every such receive ran the Python method
    (its poll, Waiter.wait, then the C look). The Python path's twin runs it each time."""
    local, peer, _ = ends
    local.wait_mode = wait  # type: ignore[assignment]
    zc, other = _connect(local, peer)
    zc.settimeout(timeout)
    other.send(b"first")  # a device's first message settles the channel in Python
    with zc.recv_message() as msg:
        assert bytes(msg.payload) == b"first"
    calls: Counter[str] = count_python_methods(monkeypatch, ["_recv_message_py"])
    got: list[bytes] = []
    ready = threading.Event()

    def receive() -> None:
        for _ in range(50):
            ready.set()
            with zc.recv_message() as m:
                got.append(bytes(m.payload))

    t = threading.Thread(target=receive)
    t.start()
    sent = [bytes([i]) * (i + 1) for i in range(50)]
    for data in sent:
        ready.wait(5)
        ready.clear()
        time.sleep(0.001)  # the receive is waiting by now (most of the time: the test holds either way)
        other.send(data)
    t.join(10)
    assert got == sent
    assert calls == (Counter() if host_path == "c-path" else Counter({"_recv_message_py": 50}))
    assert _held(local) == 0


@pytest.mark.parametrize("wait", ["block", "spin"])
def test_a_zero_copy_receive_times_out_in_c(
    ends: tuple[RpmsgDevice, RpmsgDevice, str], host_path: str, wait: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its timeout kept in C: RpmsgTimeout after it (not before), naming the endpoint, without the Python method;
    then a message sent is lent as usual."""
    local, peer, _ = ends
    local.wait_mode = wait  # type: ignore[assignment]
    zc, other = _connect(local, peer)
    other.send(b"first")
    zc.recv_message().release()
    calls: Counter[str] = count_python_methods(monkeypatch, ["_recv_message_py"])
    zc.settimeout(0.05)
    start = time.monotonic()
    with pytest.raises(RpmsgTimeout, match=r"no message on .* within 0.05 s"):
        zc.recv_message()
    assert time.monotonic() - start >= 0.05
    assert calls == (Counter() if host_path == "c-path" else Counter({"_recv_message_py": 1}))
    other.send(b"after")
    with zc.recv_message() as msg:
        assert bytes(msg.payload) == b"after"


def test_a_signal_handler_raising_in_the_c_wait_loses_nothing(
    ends: tuple[RpmsgDevice, RpmsgDevice, str], host_path: str
) -> None:
    """SIGALRM's handler raises while recv_message sleeps in C: the exception comes out of recv_message, the
    device is usable, the doorbell is not left owned, and the next message is lent."""
    local, peer, _ = ends
    zc, other = _connect(local, peer)
    zc.settimeout(None)

    class Alarm(Exception):
        pass

    def handler(signum: int, frame: object) -> None:
        raise Alarm

    old = signal.signal(signal.SIGALRM, handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 0.05)
        with pytest.raises(Alarm):
            zc.recv_message()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert local._gate.owner is None and local.failure is None
    other.send(b"next")
    zc.settimeout(5)
    with zc.recv_message() as msg:
        assert bytes(msg.payload) == b"next"
    assert _held(local) == 0


def test_a_release_gives_the_buffer_back_under_the_device_lock(ends: tuple[RpmsgDevice, RpmsgDevice, str]) -> None:
    """Another thread holding the device's lock (changing the rings) holds a release back until it lets go."""
    local, peer, _ = ends
    zc, other = _connect(local, peer)
    other.send(b"x")
    msg = zc.recv_message()
    done = threading.Event()
    with local.lock:
        t = threading.Thread(target=lambda: (msg.release(), done.set()))
        t.start()
        time.sleep(0.2)
        assert _held(local) == 1 and not done.is_set()  # before: given back at once, the lock not asked for
    t.join(5)
    assert done.is_set() and _held(local) == 0


@pytest.mark.parametrize("role", ["host", "remote"])
def test_two_threads_releasing_one_message_give_it_back_once(role: str, host_path: str) -> None:
    """Both wait for the device's lock; the second finds it given back. Rings with room for more descriptors than
    buffers, so that a second give-back would not be refused by a full ring: the host would post the buffer
    twice (one more buffer posted than it has), the remote push a chain it does not hold."""
    host, remote = loopback_pair(Profile(num=16, rx_count=8, tx_count=8), wait="block", eventfd=True)
    local, peer = (host, remote) if role == "host" else (remote, host)
    zc, other = _connect(local, peer)
    other.send(b"x")
    msg = zc.recv_message()
    with local.lock:
        threads = [threading.Thread(target=msg.release) for _ in range(2)]
        for t in threads:
            t.start()
        time.sleep(0.1)
    for t in threads:
        t.join(5)
    assert _held(local) == 0
    for round_ in range(3):  # every buffer through the ring again, more than once
        assert other.send_many([bytes([round_, i]) for i in range(8)]) == 8
        for i in range(8):
            with zc.recv_message() as m:
                assert bytes(m.payload) == bytes([round_, i])
    assert local.failure is None and peer.failure is None and _held(local) == 0
    remote.close()
    host.close()


def test_a_release_kicks_a_peer_that_waits_for_buffers(ends: tuple[RpmsgDevice, RpmsgDevice, str]) -> None:
    """The peer asked to hear of buffers coming back (a sender waiting for one): the release kicks it then, not
    at the receiver's next receive."""
    local, peer, _ = ends
    zc, other = _connect(local, peer)
    for i in range(8):
        other.send(bytes([i]))
    held = [zc.recv_message() for _ in range(8)]
    fd = peer.doorbell.fileno()
    with peer.lock:
        assert not peer.core.want_buffer_wakeup(True)  # none back yet: the peer asks to be kicked
        while select.select([fd], [], [], 0)[0]:
            peer.doorbell.wait(0)  # what earlier kicks left there
        held[0].release()
        assert select.select([fd], [], [], 1)[0], "the release did not kick the waiting peer"
        peer.core.want_buffer_wakeup(False)
    for msg in held[1:]:
        msg.release()
    other.send(b"after")
    with zc.recv_message() as msg:
        assert bytes(msg.payload) == b"after"


def test_a_release_after_the_device_closed_does_nothing(ends: tuple[RpmsgDevice, RpmsgDevice, str]) -> None:
    local, peer, _ = ends
    zc, other = _connect(local, peer)
    other.send(b"kept")
    msg = zc.recv_message()
    local.close()
    msg.release()  # before: LocalError "queue 1 is closed" from the ring engine
    assert not msg.held


def test_a_release_while_the_view_is_exported_leaves_the_message_held(
    ends: tuple[RpmsgDevice, RpmsgDevice, str],
) -> None:
    local, peer, _ = ends
    zc, other = _connect(local, peer)
    other.send(b"exported")
    msg = zc.recv_message()
    export = struct.iter_unpack("B", msg.payload)  # holds an export of the payload's view until exhausted
    with pytest.raises(BufferError):
        msg.release()
    assert msg.held and _held(local) == 1 and bytes(msg.payload) == b"exported"
    assert bytes(b for (b,) in export) == b"exported"  # exhausted: the export is gone
    msg.release()
    assert not msg.held and _held(local) == 0  # before: the buffer was never given back


def _raw_from_host(host: RpmsgDevice, kind: str, src: int, dst: int) -> None:
    """The host posts on vring 1 what its API would refuse: ``short`` a header whose len runs past the
    descriptor, ``chain`` a message over two descriptors, ``writable`` a send buffer flagged device-writable."""
    core, mem = host.core, host.core.memory
    with host.lock:
        a = core.tx.pool_take()
        assert a is not None
        if kind == "short":
            mem.write(a, pack_header(src, dst, 400) + bytes(10))
            core.tx.add([Buf(a, 16 + 10)], token=a)
        elif kind == "chain":
            b = core.tx.pool_take()
            assert b is not None
            message = pack_header(src, dst, 30) + b"c" * 30
            mem.write(a, message[:20])
            mem.write(b, message[20:])
            core.tx.add([Buf(a, 20), Buf(b, len(message) - 20)], token=a)
        else:
            mem.write(a, pack_header(src, dst, 5) + b"w" * 5)
            core.tx.add([Buf(a, 21, write=True)], token=a)
        core.tx.publish()


def _raw_from_remote(remote: RpmsgDevice, src: int, dst: int) -> None:
    """The remote fills a host receive buffer with a header whose len runs past the used length it reports."""
    core, mem = remote.core, remote.core.memory
    with remote.lock:
        chain = core.to_host.pop()
        assert chain is not None
        mem.write(chain.descs[0].addr, pack_header(src, dst, 300) + bytes(10))
        core.to_host.push(chain.head, 16 + 10)
        core.to_host.publish()


def test_a_hostile_peer_s_messages_are_dropped_and_the_good_ones_lent(
    ends: tuple[RpmsgDevice, RpmsgDevice, str], host_path: str
) -> None:
    """Between good messages the peer puts what no well-behaved peer sends: the lend takes the good ones in place,
    the rest goes to the Python path, which drops the malformed ones with their reason (counted) and delivers a
    chain whole as a copy, on either path alike."""
    local, peer, role = ends
    zc, other = _connect(local, peer)
    zc.settimeout(0)
    other.send(b"first")
    kinds = ["short", "chain", "writable"] if role == "remote" else ["short"]
    for kind in kinds:
        if role == "remote":
            _raw_from_host(peer, kind, other.addr, zc.addr)
        else:
            _raw_from_remote(peer, other.addr, zc.addr)
        other.send(kind.encode())
    got = []
    while True:
        try:
            msg = zc.recv_message()
        except WouldBlock:
            break
        got.append((bytes(msg.payload), msg.held))
        msg.release()
    expected = [(b"first", True)]
    for kind in kinds:
        expected += [(b"c" * 30, False)] if kind == "chain" else []
        expected.append((kind.encode(), True))
    assert got == expected
    assert local.core.dropped == len([k for k in kinds if k != "chain"])
    assert _held(local) == 0 and local.failure is None
    other.send(b"after")  # the rings still work, every buffer back
    zc.settimeout(5)
    with zc.recv_message() as msg:
        assert bytes(msg.payload) == b"after"


def _memory(dev: RpmsgDevice) -> list[object]:
    """The device's shared memory as the protocol sees it: the buffers byte for byte; of each ring, the indices,
    flags and event fields, the descriptors its avail entries name (address, length, flags: which descriptor
    carries a buffer is the engine's free-list order, not a rule) and the used entries' lengths. The last two
    sorted: the Python path's poll gives a copied message's buffer back at once, where the C receive gives it
    back when that message is received (after the lent one before it, say): which order they come back in is
    timing, that each comes back once, whole, is the rule."""
    core = dev.core
    memory = core.memory
    queues = [core.rx, core.tx] if hasattr(core, "rx") else [core.from_host, core.to_host]
    image = bytearray(b"".join(bytes(memory.view(r.da, r.size)) for r in memory.regions))
    base = memory.regions[0].da
    out: list[object] = []
    for q in queues:
        lay, num = q.layout, q.layout.num
        desc = bytes(memory.view(lay.desc, 16 * num))
        avail = bytes(memory.view(lay.avail, 6 + 2 * num))
        used = bytes(memory.view(lay.used, 6 + 8 * num))
        heads = struct.unpack_from(f"<{num}H", avail, 4)
        out.append(avail[:4] + avail[-2:] + used[:4] + used[-2:])
        out.append(sorted(struct.unpack_from("<QIH", desc, 16 * (h % num)) for h in heads))
        out.append(sorted(struct.unpack_from("<I", used, 8 + 8 * i) for i in range(num)))
        for start, size in ((lay.desc, 16 * num), (lay.avail, 6 + 2 * num), (lay.used, 6 + 8 * num)):
            image[start - base : start - base + size] = bytes(size)
    out.append(bytes(image))
    return out


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(0, 496)),  # the peer to the zero-copy endpoint
        st.tuples(st.just("send_other"), st.integers(0, 496)),  # the peer to a copying endpoint beside it
        st.tuples(st.just("recv_message"), st.integers(0, 0)),
        st.tuples(st.just("recv_other"), st.integers(0, 0)),
        st.tuples(st.just("release"), st.integers(0, 7)),  # the i-th message held, in order taken
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=OPS, role=st.sampled_from(["host", "remote"]), event_idx=st.booleans())
def test_zero_copy_runs_give_the_same_results_and_memory_with_and_without_the_c_path(
    ops: list[tuple[str, int]], role: str, event_idx: bool, host_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random runs of sends to a zero-copy endpoint and to a copying one beside it, lends, receives and releases
    in any order (non-blocking): the same results and drops with the C methods as with the Python path only, and
    once all is taken and released, the same shared memory (rings and buffers, byte for byte)."""
    if host_path != "c-path":
        return  # one comparison is enough: each run builds both worlds
    worlds = []
    for c_path in (True, False):
        with monkeypatch.context() as env:
            env.setenv("RPROC_RPMSG_FASTPATH", "1" if c_path else "0")
            # 64 buffers each way for at most 60 sends: no send finds the peer's buffers all taken. When it could,
            # the two worlds may differ in when it does: the Python path's poll copies out every message waiting
            # (a copy's buffer back at once) where the C lend takes the one at the head and leaves those behind it
            # in the ring until their own receive (or the Python path, when one heads the ring) takes them.
            big = Profile(num=64, rx_count=64, tx_count=64)
            host, remote = loopback_pair(big, wait="block", eventfd=True, event_idx=event_idx)
        try:
            local, peer = (host, remote) if role == "host" else (remote, host)
            zc, other = _connect(local, peer)
            cp = local.endpoint("cp")
            to_cp = peer.endpoint(peer=cp.addr)
            for ep in (zc, cp, other, to_cp):
                ep.settimeout(0)
            assert local._gate.peek_open == c_path
            held: list[Message] = []
            out: list[object] = []
            rng = random.Random(len(ops))
            for op, arg in ops:
                try:
                    if op == "send":
                        out.append(other.send(bytes([rng.randrange(256)]) * arg))
                    elif op == "send_other":
                        out.append(to_cp.send(bytes([rng.randrange(256)]) * arg))
                    elif op == "recv_message":
                        msg = zc.recv_message()
                        held.append(msg)
                        out.append((msg.src, msg.dst, bytes(msg.payload), msg.held))
                    elif op == "recv_other":
                        out.append(cp.recvfrom())
                    elif held:
                        msg = held.pop(arg % len(held))
                        msg.release()
                        out.append(("released", msg.held))
                except Exception as exc:
                    out.append(type(exc).__name__)
                out.append(local.core.dropped)
            # Where a message waits meanwhile may differ (the Python path's poll for one endpoint also takes in
            # the next one for another: lent into the zero-copy endpoint's queue, where the C receive left it in
            # the ring); what each receive returns may not. Then everything is taken and given back: the rings
            # and buffers must be the same.
            for msg in held:
                msg.release()
            for ep in (zc, cp):
                while True:
                    try:
                        with ep.recv_message() as msg:
                            out.append((msg.src, msg.dst, bytes(msg.payload)))
                    except WouldBlock:
                        break
            out.append((_held(local), local.core.dropped))
            out.append(_memory(local))
            worlds.append(out)
        finally:
            remote.close()
            host.close()
    assert worlds[0] == worlds[1]
