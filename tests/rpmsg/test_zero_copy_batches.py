"""Batched zero-copy sends (host): ``get_buffers(max)``, ``send_buffers(bufs, lengths, dst=None)`` and
``send_buffers_reuse`` (issue #20), every wait mode, with the C path and the endpoints' C methods and without them
(conftest's ``host_path``): one publish and at most one kick per batch, notification suppression respected,
every buffer checked before anything is sent, another device's buffer refused (by ``send_buffer`` too; the
remote role's own zero-copy sends: test_remote_zero_copy.py), and the C methods doing what the Python methods do
over random sequences."""

from __future__ import annotations

import pickle
from collections import Counter
from typing import Any

import pytest

from rpmsg import (
    EndpointClosed,
    LocalProtocolError,
    MessageTooLong,
    Profile,
    RpmsgDevice,
    RpmsgTimeout,
    loopback_pair,
)
from tests.rpmsg import test_batch_zero_copy
from tests.rpmsg.conftest import count_python_methods
from tests.rpmsg.test_batch_zero_copy import PROFILE, _connect, _drain, _Kicks
from tests.rpmsg.zero_copy_steps import kinds_of, logs_in_three_worlds, random_steps, stream

pair = test_batch_zero_copy.pair  # the same fixture: every wait mode, eventfd doorbells or not

NEW_PY = ("_get_buffers_py", "_send_buffers_py", "_send_buffers_reuse_py")


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """How often each Python method of the batched zero-copy calls ran."""
    return count_python_methods(monkeypatch, NEW_PY)


def test_a_zero_copy_batch_is_one_publish_and_one_kick(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """Ten buffers in one send_buffers: all arrive in order with one kick; with the remote's kicks off, none;
    send_buffers_reuse re-arms the same objects, which then carry the next batch."""
    host, remote = pair
    h, r = _connect(host, remote)
    kicks = _Kicks(host, remote)
    remote.request_kicks(True)
    kicks.take()
    bufs = h.get_buffers(10)
    assert len(bufs) == 10 and len({b.addr for b in bufs}) == 10
    for i, b in enumerate(bufs):
        b[:i] = bytes([i]) * i
    h.send_buffers(bufs, list(range(10)))
    assert kicks.take() == 1
    assert all(b.done for b in bufs)
    assert _drain(r) == [bytes([i]) * i for i in range(10)]
    remote.request_kicks(True)
    kicks.take()
    bufs = h.get_buffers(8)  # 8 of the 16 left free: all 8 re-armed
    for i, b in enumerate(bufs):
        b[:2] = b"r%d" % i
    assert h.send_buffers_reuse(bufs, 2) == 8
    assert kicks.take() == 1
    assert not any(b.done for b in bufs)
    assert _drain(r) == [b"r%d" % i for i in range(8)]
    remote.request_kicks(False)  # suppression: the remote polls
    kicks.take()
    for i, b in enumerate(bufs):
        b[:2] = b"s%d" % i
    assert h.send_buffers_reuse(bufs, 2, r.addr) == 8  # the pool ran dry: reclaimed what the remote gave back
    assert kicks.take() == 0
    assert _drain(r) == [b"s%d" % i for i in range(8)]
    others = h.get_buffers(100)  # every other buffer: none free after this batch goes
    assert len(others) == 8
    for b in bufs:
        b[0] = ord("s")
    assert h.send_buffers_reuse(bufs, 1) == 0  # none re-armed: all stay sent
    assert all(b.done for b in bufs)
    for b in others:
        b[0] = ord("o")
    h.send_buffers(others, 1)
    assert _drain(r) == [b"s"] * 8 + [b"o"] * 8


def test_get_buffers_takes_what_is_free_and_waits_for_the_first(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    h, r = _connect(host, remote)
    held = h.get_buffers(100)  # more than there are: all 16
    assert len(held) == PROFILE.tx_count
    assert host.state()["buffers"]["tx_held"] == 16
    with pytest.raises(RpmsgTimeout):  # none free, timeout 0 (as get_buffer)
        h.get_buffers(4)
    h.settimeout(0.05)
    with pytest.raises(RpmsgTimeout):
        h.get_buffers(4)
    h.send_buffers(held[:3], 0)
    assert _drain(r) == [b""] * 3
    assert len(h.get_buffers(8)) == 3  # reclaimed: the three given back
    for bad in (0, -1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="max"):
            h.get_buffers(bad)  # type: ignore[arg-type]


def test_every_buffer_is_checked_before_anything_is_sent(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """A batch with one bad buffer or length sends none of it (the others stay writable, unsent)."""
    host, remote = pair
    h, r = _connect(host, remote)
    bufs = h.get_buffers(4)
    sent = h.get_buffer()
    h.send_buffer(sent, 1)
    cases: list[tuple[list[Any], Any, type[Exception], str]] = [
        ([bufs[0], sent], 1, LocalProtocolError, "already sent"),
        ([bufs[0], bufs[1], bufs[0]], 1, LocalProtocolError, "twice"),
        (bufs, [1, 2, 497, 3], MessageTooLong, "497 bytes"),
        (bufs, [1, 2, -1, 3], MessageTooLong, "-1 bytes"),
        (bufs, [1, 2], ValueError, "2 lengths for 4 buffers"),
        (bufs, [1, 2, 3.0, 4], TypeError, "must be an int"),
        (bufs, "ab", ValueError, "2 lengths for 4 buffers"),
        ([bufs[0], b"x"], 1, TypeError, "takes a TxBuffer"),
    ]
    for batch, lengths, exc, words in cases:
        with pytest.raises(exc, match=words):
            h.send_buffers(batch, lengths)
        with pytest.raises(exc, match=words):
            h.send_buffers_reuse(batch, lengths)
    assert not any(b.done for b in bufs)
    assert _drain(r) == [b"\0"]  # only the single send
    assert h.send_buffers([], 5) is None  # an empty batch: nothing published
    assert h.send_buffers_reuse((), [], r.addr) == 0
    h.send_buffers(iter(bufs), iter([1, 1, 1, 1]))  # any iterables
    assert _drain(r) == [b"\0"] * 4


def test_a_batch_bigger_than_the_free_descriptors_is_refused_whole(host_path: str) -> None:
    """16 send buffers on an 8-entry vring 1: 16 held buffers in one batch cannot go in one publish: refused
    whole, naming the limit; 8 go, and then the other 8 once the remote gave descriptors back."""
    host, remote = loopback_pair(Profile(num=8, rx_count=8, tx_count=16), eventfd=True)
    try:
        h, r = _connect(host, remote)
        bufs = h.get_buffers(16)
        assert len(bufs) == 16
        for call in (h.send_buffers, h.send_buffers_reuse):
            with pytest.raises(LocalProtocolError, match="16 buffers in one batch, vring 1 has 8 descriptors free"):
                call(bufs, 1)
        assert not any(b.done for b in bufs)
        h.send_buffers(bufs[:8], 0)
        with pytest.raises(LocalProtocolError, match="has 0 descriptors free"):
            h.send_buffers(bufs[8:9], 0)
        assert _drain(r) == [b""] * 8
        h.send_buffers(bufs[8:], 0)  # the reclaim is the remote's: its used entries give the descriptors back
        assert _drain(r) == [b""] * 8
    finally:
        remote.close()
        host.close()


def test_a_closed_endpoint_refuses(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """(The remote role refused these until it had zero-copy sends of its own: test_remote_zero_copy.py.)"""
    host, remote = pair
    h, r = _connect(host, remote)
    bufs = h.get_buffers(2)
    h.close()
    for one in (h.send_buffer, h.send_buffer_reuse):  # before: a closed endpoint's send_buffer sent
        with pytest.raises(EndpointClosed):
            one(bufs[0], 1)
    for call in (h.send_buffers, h.send_buffers_reuse):
        with pytest.raises(EndpointClosed):
            call(bufs, 1)
        with pytest.raises(EndpointClosed):
            call([], 1)
    with pytest.raises(EndpointClosed):
        h.get_buffers(2)
    assert not any(b.done for b in bufs)
    assert _drain(r) == []


def test_another_devices_buffer_is_refused(host_path: str) -> None:
    """A TxBuffer from another device (the same layout: the same addresses) is refused by send_buffer,
    send_buffer_reuse, send_buffers and give_back, and nothing changes; before, send_buffer sent it, putting a
    buffer that was still in this device's pool in flight (tx_held went to -1)."""
    worlds = [loopback_pair(PROFILE, eventfd=True) for _ in range(2)]
    try:
        (h1, r1), (h2, r2) = (_connect(*w) for w in worlds)
        foreign = h2.get_buffer()
        before = worlds[0][0].state()["buffers"]
        for call in (
            lambda: h1.send_buffer(foreign, 1),
            lambda: h1.send_buffer_reuse(foreign, 1),
            lambda: h1.send_buffers([foreign], 1),
            lambda: h1.send_buffers_reuse([h1.get_buffer(), foreign], 1),
            lambda: worlds[0][0].core.give_back(foreign),  # type: ignore[union-attr]
        ):
            with pytest.raises(LocalProtocolError, match="another device"):
                call()
        assert not foreign.done
        assert _drain(r1) == []
        after = worlds[0][0].state()["buffers"]
        assert after["tx_in_flight"] == before["tx_in_flight"]
        assert (before["tx_held"], after["tx_held"]) == (0, 1)  # the one taken for the send_buffers_reuse case
        h2.send_buffer(foreign, 1)  # its own device takes it
        assert _drain(r2) == [b"\0"]
    finally:
        for host, remote in worlds:
            remote.close()
            host.close()


def test_a_view_still_exported_ends_the_batch_there(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """The third buffer's view is exported (a PickleBuffer holds it): the two before it are sent, BufferError is
    raised, the third and fourth stay unsent (before, a buffer whose view could not be released was marked sent
    and lost) and go once the export is gone."""
    host, remote = pair
    h, r = _connect(host, remote)
    bufs = h.get_buffers(4)
    for i, b in enumerate(bufs):
        b[:1] = bytes([65 + i])
    pinned = pickle.PickleBuffer(bufs[2].view)  # holds an export of the view
    with pytest.raises(BufferError):
        h.send_buffers(bufs, 1)
    assert [b.done for b in bufs] == [True, True, False, False]
    assert _drain(r) == [b"A", b"B"]
    del pinned
    h.send_buffers(bufs[2:], 1)
    assert _drain(r) == [b"C", b"D"]
    assert host.state()["buffers"]["tx_held"] == 0


def test_a_batched_zero_copy_stream_never_enters_the_python_methods(
    pair: tuple[RpmsgDevice, RpmsgDevice], calls: Counter[str]
) -> None:
    """A producer keeping its list of buffers: write, send_buffers_reuse, take more when some were not re-armed;
    2000 messages arrive intact; with the gate open, no Python method runs (beyond waiting for buffers)."""
    host, remote = pair
    h, r = _connect(host, remote)
    stream(h, host, r)
    if host._gate.open:
        assert calls == Counter()
    else:
        assert calls["_send_buffers_reuse_py"] >= 2000 // 6


def test_batched_zero_copy_does_what_the_python_path_does(monkeypatch: pytest.MonkeyPatch, host_path: str) -> None:
    """Differential over random sequences: get_buffers of any max, writes, send_buffers and send_buffers_reuse of
    random subsets of the held buffers (sent ones, duplicates, lengths too long or of the wrong count among them),
    single sends, receives, all non-blocking, on a pair with the C methods and one without: every result,
    exception (type and text), the bytes received and the buffer counts the same, step by step."""
    if host_path != "c-path":
        return
    steps = random_steps(2020, 650, ["get", "get", "write", "send", "reuse", "reuse", "single", "recv", "give"])
    logs = logs_in_three_worlds(monkeypatch, PROFILE, steps, "host")
    assert len(logs[0]) > 1000
    assert logs[0] == logs[1] == logs[2]
    kinds = kinds_of(logs[0])
    assert {"LocalProtocolError", "MessageTooLong", "ValueError", "int", "NoneType", "list"} <= set(kinds), kinds
