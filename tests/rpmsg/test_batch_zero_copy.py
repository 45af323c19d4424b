"""Batches (``send_many``, ``recv_many``/``recvfrom_many``) and zero-copy sends that reuse their buffer object
(``TxBuffer`` writes, ``send_buffer_reuse``), both roles, every wait mode, with the C path and the endpoints' C
methods and without them (conftest's ``host_path``): one publish and at most one kick per batch, notification
suppression respected, partial success when the ring fills, sizes checked before anything is sent, hostile rings
met by the new calls, nothing completed by the peer lost, and the C methods doing what the Python methods do."""

from __future__ import annotations

import contextlib
import os
import random
import struct
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from rpmsg import MessageTooLong, PeerLost, Profile, RpmsgDevice, RpmsgTimeout, WouldBlock, loopback_pair
from rpmsg.endpoint import Endpoint
from rpmsg.waiting import WaitMode
from tests.rpmsg.conftest import count_python_methods
from transports.doorbell import EventfdSocketDoorbell

PROFILE = Profile(num=16, rx_count=16, tx_count=16)
PY_METHODS = ("_send_many_py", "_get_buffer_py", "_send_buffer_py", "_send_buffer_reuse_py", "_recvfrom_many_py")


@pytest.fixture(
    params=[("block", True), ("spin", True), ("busy", True), ("block", False), ("spin", False)],
    ids=["block-eventfd", "spin-eventfd", "busy-eventfd", "block", "spin"],
)
def pair(request: pytest.FixtureRequest, host_path: str) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    wait: WaitMode = request.param[0]
    host, remote = loopback_pair(PROFILE, wait=wait, eventfd=request.param[1])
    assert (host._fast is not None) == (remote._fast is not None) == (host_path == "c-path")
    assert host._gate.open == (host_path == "c-path" and request.param[1])
    yield host, remote
    remote.close()
    host.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each Python method of the new calls ran."""
    return count_python_methods(monkeypatch, PY_METHODS)


def _connect(host: RpmsgDevice, remote: RpmsgDevice) -> tuple[Endpoint, Endpoint]:
    r = remote.endpoint("svc")
    h = host.open("svc", timeout=5)
    h.send(b"hello")
    assert r.recv() == b"hello"
    h.settimeout(0)
    r.settimeout(0)
    return h, r


def _drain(ep: Endpoint) -> list[bytes]:
    out: list[bytes] = []
    while True:
        try:
            out += ep.recv_many(64)
        except WouldBlock:
            return out


class _Kicks:
    """Kicks one side sent its peer: the eventfd counter the peer reads (kicks written in C and by the doorbell's
    notify alike), or the doorbell's notify calls."""

    def __init__(self, sender: RpmsgDevice, receiver: RpmsgDevice) -> None:
        self.fd = -1
        self.count = 0
        if type(receiver.doorbell) is EventfdSocketDoorbell:
            self.fd = receiver.doorbell.descriptors()[0]
            return
        notify = sender.doorbell.notify

        def counting(queue: int) -> None:
            self.count += 1
            notify(queue)

        sender.doorbell.notify = counting  # type: ignore[method-assign]

    def take(self) -> int:
        n, self.count = self.count, 0
        if self.fd >= 0:
            with contextlib.suppress(BlockingIOError):
                n += os.eventfd_read(self.fd)
        return n


@pytest.mark.parametrize("role", ["host", "remote"])
def test_a_batch_is_one_publish_and_one_kick(pair: tuple[RpmsgDevice, RpmsgDevice], role: str) -> None:
    """Ten messages in one send_many: all arrive in order, with one kick (ten sends: ten kicks); with the
    receiver's kicks turned off, none."""
    host, remote = pair
    h, r = _connect(host, remote)
    sender, receiver = (h, r) if role == "host" else (r, h)
    sdev, rdev = (host, remote) if role == "host" else (remote, host)
    dst = receiver.addr
    kicks = _Kicks(sdev, rdev)
    rdev.request_kicks(True)
    kicks.take()
    msgs = [bytes([i]) * i for i in range(10)]
    assert sender.send_many(msgs, dst) == 10
    assert kicks.take() == 1
    assert _drain(receiver) == msgs
    rdev.request_kicks(True)
    kicks.take()
    for m in msgs:
        sender.sendto(m, dst)
    assert kicks.take() == 10
    assert _drain(receiver) == msgs
    rdev.request_kicks(False)  # suppression: the receiver polls
    kicks.take()
    assert sender.send_many(msgs, dst) == 10
    assert kicks.take() == 0
    assert _drain(receiver) == msgs


@pytest.mark.parametrize("role", ["host", "remote"])
def test_a_full_ring_sends_part_of_the_batch(pair: tuple[RpmsgDevice, RpmsgDevice], role: str) -> None:
    """Partial success: with 16 buffers, a batch of 40 sends 16 (timeout 0) or 16 after waiting (a timeout),
    the rest then goes in later calls in order; with no buffer free, WouldBlock / RpmsgTimeout and nothing sent."""
    host, remote = pair
    h, r = _connect(host, remote)
    sender, receiver = (h, r) if role == "host" else (r, h)
    msgs = [b"m%d" % i for i in range(40)]
    assert sender.send_many(msgs, receiver.addr) == 16
    with pytest.raises(WouldBlock):
        sender.send_many(msgs[16:], receiver.addr)
    sender.settimeout(0.05)
    with pytest.raises(RpmsgTimeout):
        sender.send_many(msgs[16:], receiver.addr)
    assert _drain(receiver) == msgs[:16]
    assert sender.send_many(msgs[16:], receiver.addr) == 16  # waited its timeout for the 8 left over
    assert _drain(receiver) == msgs[16:32]
    assert sender.send_many(iter(msgs[32:]), receiver.addr) == 8  # any iterable
    assert sender.send_many([], receiver.addr) == 0
    assert _drain(receiver) == msgs[32:]


@pytest.mark.parametrize("role", ["host", "remote"])
def test_sizes_are_checked_before_anything_is_sent(pair: tuple[RpmsgDevice, RpmsgDevice], role: str) -> None:
    host, remote = pair
    h, r = _connect(host, remote)
    sender, receiver = (h, r) if role == "host" else (r, h)
    limit = 496 if role == "host" else 65535  # the remote learns the host's buffer size from the buffer
    with pytest.raises(MessageTooLong):
        sender.send_many([b"ok", bytes(limit + 1)], receiver.addr)
    with pytest.raises(TypeError):
        sender.send_many([b"ok", 5], receiver.addr)  # type: ignore[list-item]
    assert _drain(receiver) == []
    h.connect(r.addr)
    assert h.send_many([bytearray(b"a"), memoryview(b"bc")]) == 2
    assert _drain(r) == [b"a", b"bc"]


def test_a_host_buffer_too_small_for_a_later_message_ends_the_batch_there(host_path: str) -> None:
    """Remote role: the host's receive buffers are 64 bytes; a batch whose third message does not fit sends two,
    and sending the third again raises MessageTooLong (the buffer it found stays the next one used)."""
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16, rx_size=64), eventfd=True)
    try:
        h, r = _connect(host, remote)
        assert r.send_many([b"a", b"b", bytes(49), b"c"], h.addr) == 2
        with pytest.raises(MessageTooLong):
            r.send_many([bytes(49), b"c"], h.addr)
        assert r.send_many([b"c"], h.addr) == 1
        assert _drain(h) == [b"a", b"b", b"c"]
    finally:
        remote.close()
        host.close()


@pytest.mark.parametrize("role", ["host", "remote"])
def test_recv_many_waits_for_one_and_takes_what_is_there(pair: tuple[RpmsgDevice, RpmsgDevice], role: str) -> None:
    host, remote = pair
    h, r = _connect(host, remote)
    sender, receiver = (h, r) if role == "host" else (r, h)
    other = (remote if role == "host" else host).endpoint(addr=0x7777, announce=False)
    other.settimeout(0)
    with pytest.raises(WouldBlock):
        receiver.recv_many()
    receiver.settimeout(0.05)
    with pytest.raises(RpmsgTimeout):
        receiver.recvfrom_many(4)
    for i in range(6):
        sender.sendto(b"x%d" % i, receiver.addr)
        sender.sendto(b"o%d" % i, other.addr)  # interleaved with another endpoint's
    assert receiver.recvfrom_many(4, 2) == [(b"x%d" % i, sender.addr) for i in range(4)]  # bufsize 2: truncated
    assert receiver.recv_many(64) == [b"x4", b"x5"]
    assert other.recv_many(64) == [b"o%d" % i for i in range(6)]
    with pytest.raises(ValueError):
        receiver.recv_many(0)


@pytest.mark.parametrize("role", ["host", "remote"])
def test_a_stream_in_batches_never_enters_the_python_methods(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str], role: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 0..496-byte messages one way, taken with recv_many: with the gate open no Python method runs
    (send_many and recvfrom_many in C, the device's _take_waiting never called); closed, one per call."""
    host, remote = pair
    h, r = _connect(host, remote)
    sender, receiver = (h, r) if role == "host" else (r, h)
    waiting = Counter[str]()
    original = RpmsgDevice._take_waiting

    def counted(self: RpmsgDevice, *args: Any) -> None:
        waiting["_take_waiting"] += 1
        original(self, *args)

    monkeypatch.setattr(RpmsgDevice, "_take_waiting", counted)
    for i in range(100):
        msgs = [bytes([i & 0xFF]) * ((i * 7 + j * 31) % 497) for j in range(i % 16 + 1)]
        assert sender.send_many(msgs, receiver.addr) == len(msgs)
        assert receiver.recv_many(16) == msgs
    gate = (host if role == "host" else remote)._gate
    if gate.open:
        assert calls == Counter() and waiting == Counter()
    else:
        assert calls == Counter(_send_many_py=100, _recvfrom_many_py=100)


def test_a_bad_used_entry_after_good_ones_in_a_batch_loses_none_of_them(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """recv_many meets a used entry the remote spoiled after two good ones: both good ones are returned, then
    the broken ring is reported."""
    host, remote = pair
    h, r = _connect(host, remote)
    for m in (b"one", b"two", b"spoiled"):
        r.sendto(m, h.addr)
    lay = PROFILE.rx_layout
    (idx,) = struct.unpack("<H", remote.core.memory.read(lay.used + 2, 2))
    third = lay.used + 4 + ((idx - 1) % PROFILE.num) * 8
    remote.core.memory.write(third + 4, struct.pack("<I", 0x10010))  # longer than any buffer
    got = h.recv_many(8)
    if got == [b"one"]:  # the first came alone (the C receive's single message): the rest next
        got += h.recv_many(8)
    assert got == [b"one", b"two"]
    with pytest.raises(PeerLost, match="vring 0"):
        h.recv_many(8)


def test_a_bad_used_index_met_by_send_many_fails_the_device(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    h, _ = _connect(host, remote)
    assert h.send_many([b"fill"] * 20) == 16
    used_idx = PROFILE.tx_layout.used + 2
    (idx,) = struct.unpack("<H", remote.core.memory.read(used_idx, 2))
    remote.core.memory.write(used_idx, struct.pack("<H", (idx + 100) & 0xFFFF))
    with pytest.raises(PeerLost, match="vring 1"):
        h.send_many([b"reclaims"] * 3)
    assert host.failure is not None
    with pytest.raises(PeerLost):
        h.get_buffer()


def test_a_bad_avail_index_met_by_the_remotes_send_many_fails_the_device(
    pair: tuple[RpmsgDevice, RpmsgDevice],
) -> None:
    host, remote = pair
    h, r = _connect(host, remote)
    avail_idx = PROFILE.rx_layout.avail + 2
    (idx,) = struct.unpack("<H", host.core.memory.read(avail_idx, 2))
    host.core.memory.write(avail_idx, struct.pack("<H", (idx + 100) & 0xFFFF))  # more than the ring holds
    with pytest.raises(PeerLost, match="vring 0"):
        r.send_many([b"a", b"b"], h.addr)


def test_zero_copy_reuse_never_enters_the_python_methods(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str], host_path: str
) -> None:
    """A producer keeping one TxBuffer: write into it, send_buffer_reuse, again; 300 messages arrive intact. With
    the gate open, no Python method runs (no object or view made per message); closed, one per call."""
    host, remote = pair
    h, r = _connect(host, remote)
    buf = h.get_buffer()
    for i in range(300):
        n = i % 497
        buf[:n] = bytes([i & 0xFF]) * n
        if n:
            buf[0] = 0xAB
        if not h.send_buffer_reuse(buf, n):
            assert buf.done
            got = _drain(r)
            assert [len(g) for g in got] == [j % 497 for j in range(i - 15, i + 1)]
            buf = h.get_buffer()
    _drain(r)
    del calls["_recvfrom_many_py"]  # the drain's last receive, nothing waiting: WouldBlock is the Python method's
    if host._gate.open:
        assert calls == Counter()
    else:
        assert calls["_send_buffer_reuse_py"] == 300


def test_a_sent_buffer_refuses_writes_and_its_old_view_is_released(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    h, r = _connect(host, remote)
    buf = h.get_buffer()
    view = buf.view
    view[:3] = b"abc"
    assert h.send_buffer_reuse(buf, 3)
    with pytest.raises(ValueError):
        view[0] = 1  # the sent buffer's view
    buf[:3] = b"xyz"  # re-armed: another buffer
    h.send_buffer(buf, 3)
    assert buf.done
    with pytest.raises(ValueError):
        buf[0] = 1
    with pytest.raises(ValueError):
        buf.view[0] = 1
    with pytest.raises(Exception, match="already sent"):
        h.send_buffer(buf, 3)
    assert _drain(r) == [b"abc", b"xyz"]
    held = []
    while True:  # take every buffer: a reuse with nothing free leaves the buffer sent
        try:
            held.append(h.get_buffer())
        except RpmsgTimeout:  # get_buffer with timeout 0 says RpmsgTimeout (send: WouldBlock)
            break
    buf = held.pop()
    assert not h.send_buffer_reuse(buf, 1)
    assert buf.done


def _writes(buf: Any) -> list[object]:
    """The same writes on a buffer, and what each did (an exception's type)."""
    out: list[object] = []
    for key, value in [
        (slice(0, 3), b"abc"),
        (slice(490, None), b"123456"),
        (slice(490, None), b"1234567"),
        (slice(-2, None), b"zz"),
        (5, 7),
        (-1, 255),
        (496, 1),
        (3, 256),
        (3, "x"),
        (slice(0, 10, 2), b"\1\2\3\4\5"),
        (slice(10, 5), b""),
        (slice(0, 2), 5),
    ]:
        try:
            buf[key] = value
            out.append(None)
        except Exception as exc:
            out.append(type(exc).__name__)
    out.append(bytes(buf.view))
    return out


def test_the_c_buffer_writes_like_the_python_one(monkeypatch: pytest.MonkeyPatch, host_path: str) -> None:
    """Differential: the same writes into a TxBuffer made by the C get_buffer and by the Python path give the
    same results and bytes, and the same message arrives."""
    if host_path != "c-path":
        return
    results = []
    for c in (True, False):
        with monkeypatch.context() as env:
            env.setenv("RPROC_RPMSG_FASTPATH", "1" if c else "0")
            host, remote = loopback_pair(PROFILE, eventfd=True)
        try:
            assert host._gate.open == c
            h, r = _connect(host, remote)
            buf = h.get_buffer()
            got = _writes(buf)
            h.send_buffer(buf, 496)
            results.append((got, r.recv()))
        finally:
            remote.close()
            host.close()
    assert results[0] == results[1]


def test_batches_and_reuse_do_what_the_python_path_does(monkeypatch: pytest.MonkeyPatch, host_path: str) -> None:
    """Differential over random sequences: batches both ways of 0..497-byte messages (too long ones too),
    recv_many with any max, zero-copy reuse, all non-blocking, on a pair with the C methods and one without:
    every result and exception type the same, step by step."""
    if host_path != "c-path":
        return
    rng = random.Random(20)
    ops = [
        (rng.choice(["h.many", "r.many", "h.recv", "r.recv", "h.zc", "h.get"]), rng.randrange(1, 30))
        for _ in range(400)
    ]
    worlds = []
    for c in (True, False):
        with monkeypatch.context() as env:
            env.setenv("RPROC_RPMSG_FASTPATH", "1" if c else "0")
            worlds.append(loopback_pair(PROFILE, eventfd=True))
    try:
        logs: list[list[object]] = []
        for host, remote in worlds:
            h, r = _connect(host, remote)
            buf = None
            log: list[object] = []
            for op, k in ops:
                sizes = [(k * 37 + j * 101) % 498 for j in range(k)]
                try:
                    if op == "h.many":
                        log.append(h.send_many([bytes([j]) * s for j, s in enumerate(sizes)]))
                    elif op == "r.many":
                        log.append(r.send_many([bytes([j]) * s for j, s in enumerate(sizes)], h.addr))
                    elif op in ("h.recv", "r.recv"):
                        log.append((h if op == "h.recv" else r).recvfrom_many(k))
                    elif op == "h.get":
                        buf = h.get_buffer()
                        log.append(buf.capacity)
                    elif buf is not None and not buf.done:
                        buf[: sizes[0]] = bytes([k]) * sizes[0]
                        log.append(h.send_buffer_reuse(buf, sizes[0]))
                except Exception as exc:
                    log.append(type(exc).__name__)
            log.append(host.state()["buffers"])
            logs.append(log)
        assert logs[0] == logs[1]
    finally:
        for host, remote in worlds:
            remote.close()
            host.close()
