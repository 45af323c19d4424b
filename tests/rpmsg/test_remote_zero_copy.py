"""Zero-copy sends from the remote role (issue #20, "in both roles"): ``get_buffer`` lends the host's next posted
receive buffer (held out of vring 0, as OpenAMP's ``rpmsg_get_tx_payload_buffer`` does on a remote), the payload
written in place, ``send_buffer`` gives it to the host with its header (used.len 16 + the length); the batch
calls (``get_buffers``, ``send_buffers``, the ``_reuse`` forms) as the host's. Every wait mode, with the C path
and the endpoints' C methods and without them (conftest's ``host_path``): one publish and at most one kick per
batch, a buffer given back kept for the next send (never returned to the host empty), hostile host buffers
(a chain, one flagged readable, one too small, one outside the memory), and the C methods doing what the Python
methods do over random sequences."""

from __future__ import annotations

import contextlib
import pickle
import struct
import threading
import time
from collections import Counter
from typing import Any

import pytest

from rpmsg import (
    LocalProtocolError,
    MessageTooLong,
    PeerLost,
    Profile,
    RpmsgDevice,
    RpmsgTimeout,
    WouldBlock,
    loopback_pair,
)
from rpmsg.endpoint import Endpoint
from rpmsg.protocol import HEADER_SIZE, pack_header
from tests.rpmsg import test_batch_zero_copy
from tests.rpmsg.conftest import count_python_methods
from tests.rpmsg.test_batch_zero_copy import PROFILE, _connect, _drain, _Kicks
from tests.rpmsg.zero_copy_steps import kinds_of, logs_in_three_worlds, random_steps, stream
from virtio import Buf

pair = test_batch_zero_copy.pair  # every wait mode, eventfd doorbells or not, both paths

PY = (
    "_get_buffer_py",
    "_send_buffer_py",
    "_send_buffer_reuse_py",
    "_get_buffers_py",
    "_send_buffers_py",
    "_send_buffers_reuse_py",
)


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_python_methods(monkeypatch, PY)


def _remote_to_host(host: RpmsgDevice, remote: RpmsgDevice) -> tuple[Endpoint, Endpoint]:
    h, r = _connect(host, remote)
    r.connect(h.addr)
    return h, r


def test_the_remote_writes_into_the_hosts_receive_buffer(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str]
) -> None:
    """get_buffer: a view of the host's posted buffer after its header (496 bytes of Linux's 512), held out of
    vring 0; send_buffer: the host gets the bytes, and used.len is 16 + the length; with the gate open, no Python
    method runs."""
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    before = remote.state()["buffers"]
    buf = r.get_buffer()
    assert buf.capacity == 512 - HEADER_SIZE and len(buf) == buf.capacity
    assert buf.addr in host.core.rx_addrs  # type: ignore[union-attr]
    assert remote.state()["buffers"]["to_host_held"] == 1  # type: ignore[index]
    buf[:5] = b"hello"
    buf.view[5:7] = b"!!"
    r.send_buffer(buf, 7)
    assert buf.done
    with pytest.raises(ValueError, match="was sent"):
        buf[:1] = b"x"
    assert _drain(h) == [b"hello!!"]
    assert remote.state()["buffers"] == before
    if remote._gate.open:
        assert calls == Counter()


def test_used_len_is_the_header_and_the_payload(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """The host's used entry for a zero-copy message: its buffer, and 16 + length bytes (Linux's
    rpmsg_recv_single refuses a used.len shorter than the header: an empty message is 16, not 0)."""
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    seen = []
    for n in (0, 1, 496):
        buf = r.get_buffer()
        buf[:n] = b"z" * n
        r.send_buffer(buf, n)
        used = host.core.rx.get_used()  # type: ignore[union-attr]
        seen.append([(u.token == buf.addr, u.len) for u in used])
        for u in used:  # posted again, as the host's receive does
            host.core.rx.add([Buf(u.token, 512, write=True)], token=u.token)  # type: ignore[union-attr]
        host.core.rx.publish()  # type: ignore[union-attr]
        header = host.core.memory.read(buf.addr, HEADER_SIZE)  # type: ignore[union-attr]
        assert header == pack_header(r.addr, h.addr, n)
    assert seen == [[(True, 16)], [(True, 17)], [(True, 512)]]


def test_a_batch_is_one_publish_and_one_kick(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """send_buffers of ten: one kick with the host's kicks on, none with them off; send_buffers_reuse re-arms
    the same objects with buffers posted now."""
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    kicks = _Kicks(remote, host)
    host.request_kicks(True)
    kicks.take()
    bufs = r.get_buffers(10)
    assert len(bufs) == 10 and len({b.slot for b in bufs}) == 10 and len({b.addr for b in bufs}) == 10
    for i, b in enumerate(bufs):
        b[:i] = bytes([i]) * i
    r.send_buffers(bufs, list(range(10)))
    assert kicks.take() == 1
    assert _drain(h) == [bytes([i]) * i for i in range(10)]
    host.request_kicks(False)
    kicks.take()
    bufs = r.get_buffers(4)
    for b in bufs:
        b[:2] = b"ok"
    assert r.send_buffers_reuse(bufs, 2) == 4  # the host has 12 more posted: all four re-armed
    assert kicks.take() == 0
    assert not any(b.done for b in bufs)
    assert _drain(h) == [b"ok"] * 4
    r.send_buffers(bufs, 0)
    assert _drain(h) == [b""] * 4


def test_every_host_buffer_lent_then_the_wait(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """All 16 host buffers lent: the next get_buffer waits for the host to post one (RpmsgTimeout naming the
    host, at once for timeout 0, as the host's get_buffer), and gets one once the host has read a message."""
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    bufs = r.get_buffers(64)
    assert len(bufs) == 16
    with pytest.raises(RpmsgTimeout, match="the host is not posting any"):
        r.get_buffer()
    r.settimeout(0.05)
    with pytest.raises(RpmsgTimeout, match="host"):
        r.get_buffer()
    r.send_buffer(bufs.pop(), 0)
    assert _drain(h) == [b""]  # the host reads it and posts the buffer again
    again = r.get_buffer()
    assert again.addr not in {b.addr for b in bufs}
    r.send_buffers([*bufs, again], 1)
    assert len(_drain(h)) == 16


def test_a_buffer_given_back_goes_to_the_next_send_and_never_empty_to_the_host(
    pair: tuple[RpmsgDevice, RpmsgDevice],
) -> None:
    """Buffers given back unsent are kept (a buffer returned to the host empty would reach it as a message, and
    Linux drops a used.len under the header with its buffer): with every host buffer taken and given back, 16
    copies still go without the host posting any, then none; the host sees exactly those 16."""
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    bufs = r.get_buffers(64)
    assert len(bufs) == 16
    for b in bufs:
        remote.core.give_back(b)  # type: ignore[union-attr]
        assert b.done
    assert remote.state()["buffers"]["to_host_kept"] == 16  # type: ignore[index]
    assert remote.state()["buffers"]["to_host_held"] == 0  # type: ignore[index]
    assert host.core.rx.has_used() is False  # type: ignore[union-attr]
    assert r.send_many([b"%d" % i for i in range(16)]) == 16
    with pytest.raises(WouldBlock):
        r.send(b"one more")
    assert _drain(h) == [b"%d" % i for i in range(16)]
    assert remote.state()["buffers"]["to_host_kept"] == 0  # type: ignore[index]
    # a kept buffer goes to the next zero-copy buffer too, before the C path lends a fresh one
    b = r.get_buffer()
    remote.core.give_back(b)  # type: ignore[union-attr]
    again = r.get_buffer()
    assert (again.addr, again.slot) == (b.addr, b.slot)
    r.send_buffer(again, 3)
    assert len(_drain(h)) == 1


def test_refused_buffers(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """A length over the capacity, a buffer sent already, one twice in a batch, another device's: refused,
    nothing sent, the buffers still usable."""
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    host2, remote2 = loopback_pair(PROFILE, eventfd=True)
    try:
        _h2, r2 = _remote_to_host(host2, remote2)
        foreign = r2.get_buffer()
        a, b = r.get_buffers(2)
        with pytest.raises(MessageTooLong, match="497 bytes do not fit the buffer's 496"):
            r.send_buffer(a, 497)
        with pytest.raises(LocalProtocolError, match="twice"):
            r.send_buffers([a, b, a], 1)
        for call in (lambda: r.send_buffer(foreign, 1), lambda: r.send_buffers([a, foreign], 1)):
            with pytest.raises(LocalProtocolError, match="another device"):
                call()
        with pytest.raises(LocalProtocolError, match="another device"):
            remote.core.give_back(foreign)  # type: ignore[union-attr]
        assert not (a.done or b.done or foreign.done)
        assert _drain(h) == []
        r.send_buffers([a, b], [1, 2])
        with pytest.raises(LocalProtocolError, match="already sent"):
            r.send_buffer(a, 1)
        assert _drain(h) == [b"\0", b"\0\0"]
        r2.send_buffer(foreign, 0)
    finally:
        remote2.close()
        host2.close()


def test_a_view_still_exported_ends_the_batch_there(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    bufs = r.get_buffers(4)
    for i, b in enumerate(bufs):
        b[:1] = bytes([65 + i])
    pinned = pickle.PickleBuffer(bufs[2].view)
    with pytest.raises(BufferError):
        r.send_buffers(bufs, 1)
    assert [b.done for b in bufs] == [True, True, False, False]
    assert _drain(h) == [b"A", b"B"]
    del pinned
    r.send_buffers(bufs[2:], 1)
    assert _drain(h) == [b"C", b"D"]
    assert remote.state()["buffers"]["to_host_held"] == 0  # type: ignore[index]


@pytest.mark.parametrize("size", [4096, 16384, 65536, 1 << 17])
def test_big_host_buffers_lend_their_size(size: int, host_path: str) -> None:
    """The capacity is the host's buffer after its header, at most the header's u16 len (65,535)."""
    host, remote = loopback_pair(Profile(num=8, rx_count=8, tx_count=8, rx_size=size), eventfd=True)
    try:
        h, r = _remote_to_host(host, remote)
        buf = r.get_buffer()
        assert buf.capacity == min(size - HEADER_SIZE, 0xFFFF)
        data = bytes(range(256)) * (buf.capacity // 256) + b"e" * (buf.capacity % 256)
        buf[:] = data
        r.send_buffer(buf, buf.capacity)
        h.settimeout(5)
        assert h.recv(1 << 17) == data
    finally:
        remote.close()
        host.close()


def test_a_zero_copy_stream_never_enters_the_python_methods(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str]
) -> None:
    """A producer keeping its buffers: write, send_buffers_reuse, take more when some were not re-armed; 2000
    messages arrive intact; with the gate open, no Python method runs (beyond waiting for buffers)."""
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    stream(r, remote, h)
    if remote._gate.open:
        assert calls == Counter()
    else:
        assert calls["_send_buffers_reuse_py"] >= 2000 // 6


# --- a hostile host ----------------------------------------------------------------------------------------------
def _lend_and_send(r: Endpoint, host: RpmsgDevice) -> object:
    """get_buffer, fill it, send it whole: its capacity, the host's used entries (token, len) and the header's
    len at the buffer."""
    buf = r.get_buffer()
    buf[: buf.capacity] = b"c" * buf.capacity
    r.send_buffer(buf, buf.capacity)
    used = host.core.rx.get_used()  # type: ignore[union-attr]
    header = host.core.memory.read(buf.addr, HEADER_SIZE)  # type: ignore[union-attr]
    return buf.capacity, [(u.token, u.len) for u in used], struct.unpack_from("<IIIHH", header)[3]


def _send_copy(r: Endpoint, host: RpmsgDevice) -> object:
    r.send(b"copy")
    return [(u.token, u.len) for u in host.core.rx.get_used()]  # type: ignore[union-attr]


A0, A1 = 0, 1  # the first two host receive buffers (their addresses in the test)
HOSTILE: dict[str, tuple[list[list[tuple[int, int, int, bool]]], list[Any], list[object]]] = {
    # name: (chains of (buffer, offset, length, device-writable), steps, what each step gives)
    "chain": (
        [[(A0, 0, 100, True), (A0, 100, 412, True)]],
        [_lend_and_send],
        [(84, [(A0, 100)], 84)],
    ),
    "header-only": ([[(A0, 0, 16, True)]], [_lend_and_send], [(0, [(A0, 16)], 0)]),
    "readable": (
        [[(A0, 0, 512, False)]],
        [_lend_and_send],
        ["PeerLost: the peer broke the rings: vring 0: host buffer 0 is not device-writable"],
    ),
    "too-small": (
        [[(A0, 0, 12, True)], [(A1, 0, 512, True)]],
        [_lend_and_send, _lend_and_send, _send_copy],
        [
            "MessageTooLong: the host's 12-byte buffer 0 has no room for the 16-byte header",
            "MessageTooLong: the host's 12-byte buffer 0 has no room for the 16-byte header",
            "MessageTooLong: 4 bytes do not fit the host's 12-byte buffer (-4 bytes of payload)",
        ],
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_host_buffers(case: str, host_path: str) -> None:
    """Host receive buffers Linux and OpenAMP never post, met by get_buffer on both paths (the C lend hands every
    one of them to the general path): a chain lends its first descriptor; a buffer of just the header lends 0
    bytes; one flagged readable fails the device as a copying send does; one smaller than the header is kept
    and named by each later send, the device going on."""
    chains, steps, expected = HOSTILE[case]
    host, remote = loopback_pair(PROFILE, eventfd=True)
    try:
        _h, r = _remote_to_host(host, remote)
        assert r.send_many([b"fill"] * 16) == 16  # every posted buffer used: the host takes them back unposted
        rx = host.core.rx  # type: ignore[union-attr]
        assert len(rx.get_used()) == 16
        addrs = host.core.rx_addrs  # type: ignore[union-attr]
        for chain in chains:
            token = addrs[chain[0][0]]
            rx.add([Buf(addrs[i] + off, n, write=w) for i, off, n, w in chain], token=token)
        rx.publish()
        got: list[object] = []
        for step in steps:
            try:
                got.append(step(r, host))
            except Exception as exc:
                got.append(f"{type(exc).__name__}: {exc}")
        want = [(w[0], [(addrs[t], n) for t, n in w[1]], w[2]) if isinstance(w, tuple) else w for w in expected]
        assert got == want
        assert (remote.failure is not None) == (case == "readable")
        if case == "too-small":
            assert remote.state()["buffers"]["to_host_kept"] == 1  # type: ignore[index]
            r.close()  # its name-service destroy does not fit either: it closes all the same (it raised before)
            assert r.closed
    finally:
        remote.close()
        host.close()


def test_a_host_buffer_outside_the_memory_fails_the_device(host_path: str) -> None:
    """A descriptor pointing outside the memory (the host's engine refuses to post one: written over in shared
    memory, as a hostile host would): get_buffer fails the device naming vring 0, on both paths."""
    host, remote = loopback_pair(PROFILE, eventfd=True)
    try:
        _h, r = _remote_to_host(host, remote)
        assert r.send_many([b"fill"] * 16) == 16
        rx = host.core.rx  # type: ignore[union-attr]
        assert len(rx.get_used()) == 16
        addr = host.core.rx_addrs[0]  # type: ignore[union-attr]
        rx.add([Buf(addr, 512, write=True)], token=addr)
        for i in range(PROFILE.num):  # every descriptor's address (the free ones too)
            host.core.memory.write(rx.layout.desc + 16 * i, struct.pack("<Q", 0xFFFF_0000))  # type: ignore[union-attr]
        rx.publish()
        with pytest.raises(PeerLost, match="vring 0"):
            r.get_buffer()
        assert remote.failure is not None
    finally:
        remote.close()
        host.close()


# --- the C methods against the Python ones ---------------------------------------------------------------------
def test_remote_zero_copy_does_what_the_python_path_does(monkeypatch: pytest.MonkeyPatch, host_path: str) -> None:
    """Differential over random sequences: get_buffer(s), writes, send_buffer(s) and their _reuse forms on random
    subsets of the held buffers (sent ones, duplicates, lengths too long or of the wrong count among them), give
    backs, copying sends and the host's receives, all non-blocking, on a pair with the C methods and one without:
    every result, exception (type and text), the bytes received and the buffer state the same, step by step."""
    if host_path != "c-path":
        return
    kinds = ["get", "get", "one", "write", "send", "reuse", "reuse", "single", "recv", "give", "copy"]
    steps = random_steps(2026, 700, kinds)
    logs = logs_in_three_worlds(monkeypatch, PROFILE, steps, "remote")
    assert len(logs[0]) > 1100
    assert logs[0] == logs[1] == logs[2]
    got = kinds_of(logs[0])
    want = {"LocalProtocolError", "MessageTooLong", "ValueError", "WouldBlock", "RpmsgTimeout", "int", "list", "bool"}
    assert want <= set(got), got


@pytest.mark.parametrize("send", ["copy", "zero-copy", "batch"])
def test_a_host_buffer_over_its_own_ring_fails_nothing_of_ours(host_path: str, send: str) -> None:
    """A host buffer placed over the host's own descriptor table and avail ring (found by the remote_sends fuzz
    target): the send writes over them. The remote's C copy wrote before taking the buffer out of the ring, so its
    own message moved the avail index under it and the take failed with the engine's LocalError ("ARG: bad
    argument") out of ``send``. Now every send takes the buffer first: it goes, on both paths, and what the host
    does with its ring afterwards is the host's (a later send may find the ring broken: PeerLost, nothing else)."""
    host, remote = loopback_pair(PROFILE, eventfd=True)
    try:
        _h, r = _remote_to_host(host, remote)
        assert r.send_many([b"fill"] * 16) == 16
        rx = host.core.rx  # type: ignore[union-attr]
        assert len(rx.get_used()) == 16
        over = rx.layout.desc + 0x34  # 512 bytes from here cover the descriptors and the avail ring
        rx.add([Buf(over, 512, write=True)], token=over)
        rx.publish()
        if send == "copy":
            r.send(bytes(208))
        elif send == "zero-copy":
            buf = r.get_buffer()
            buf[:208] = bytes(208)
            r.send_buffer(buf, 208)
        else:
            assert r.send_many([bytes(208)]) == 1
        used = rx.get_used()
        assert [(u.token, u.len) for u in used] == [(over, 16 + 208)]
        with contextlib.suppress(PeerLost, WouldBlock):
            r.send(b"next")  # the host's ring is whatever our message left in it
    finally:
        remote.close()
        host.close()


@pytest.mark.parametrize("role", ["host", "remote"])
def test_the_devices_give_back_takes_its_lock(pair: tuple[RpmsgDevice, RpmsgDevice], role: str) -> None:
    """``device.give_back(buf)``, both roles: a buffer taken and not sent goes back under the device's lock (the
    core's give_back changes the pool or the kept buffers another thread's send uses); twice does nothing; another
    device's is refused; the buffer then carries the next send."""
    host, remote = pair
    h, r = _remote_to_host(host, remote)
    dev, ep, peer = (host, h, r) if role == "host" else (remote, r, h)
    buf = ep.get_buffer()
    done = threading.Event()
    with dev.lock:
        t = threading.Thread(target=lambda: (dev.give_back(buf), done.set()))
        t.start()
        time.sleep(0.1)
        assert not done.is_set() and not buf.done
    t.join(5)
    assert done.is_set() and buf.done
    dev.give_back(buf)  # twice: nothing
    foreign = peer.get_buffer()
    with pytest.raises(LocalProtocolError, match="another device"):
        dev.give_back(foreign)
    (remote if role == "host" else host).give_back(foreign)
    ep.send(b"after")
    assert _drain(peer) == [b"after"]


def test_after_waiting_for_the_first_buffer_the_rest_are_taken_in_c(
    monkeypatch: pytest.MonkeyPatch, host_path: str
) -> None:
    """get_buffers with every host buffer lent waits (the Python method) for the first; the rest, posted by the
    host meanwhile, are taken in C (``_take_buffers``): one Python take (RemoteCore.get_tx_buffer, ~10 us), not
    one per buffer, which held a zero-copy producer to 77 k msgs/s (benchmarks/python_remote_stream.py)."""
    from rpmsg.remote_core import RemoteCore

    host, remote = loopback_pair(PROFILE, eventfd=True)
    try:
        h, r = _remote_to_host(host, remote)
        held = r.get_buffers(64)
        assert len(held) == 16
        r.send_buffers(held, 1)
        takes = Counter[str]()
        original = RemoteCore.get_tx_buffer

        def counted(self: RemoteCore) -> Any:
            buf = original(self)  # (WouldBlock while none is posted: not a take)
            takes["python"] += 1
            return buf

        monkeypatch.setattr(RemoteCore, "get_tx_buffer", counted)
        r.settimeout(5)
        threading.Timer(0.05, lambda: _drain(h)).start()  # the host reads all 16: 16 buffers posted again
        got = r.get_buffers(16)
        assert 1 <= len(got) <= 16
        assert takes["python"] == (1 if host_path == "c-path" else len(got))
        remote.give_back(got[0])
        for b in got[1:]:
            remote.give_back(b)
    finally:
        remote.close()
        host.close()
