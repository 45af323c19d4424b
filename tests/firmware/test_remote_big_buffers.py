"""Big buffers in the firmware's C remote (firmware/lib/rpmsg_remote.c) next to rproc's Python remote
(rpmsg/core.py RemoteCore): both take a buffer's size from the host's descriptor, never from a constant, and hold
the one payload rule of rpmsg/protocol.py, min(buffer - 16, 65535). Each case runs the two remotes on two
identical copies of the same rings and compares what they return and what they write.

A hostile or broken host whose descriptors are smaller than its profile announced gets a clear refusal (C:
RPMSG_ERR_TOO_BIG; Python: MessageTooLong naming the limit), a header claiming more than its descriptor holds is
dropped and counted, and nothing past a descriptor is written or read (a canary after each buffer stays)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rpmsg import HostCore, MessageTooLong, Profile, RemoteCore, WouldBlock
from rpmsg.protocol import HEADER_SIZE, MAX_PAYLOAD, pack_header
from tests.firmware.remote_lib import (
    RPMSG_ERR_NO_BUFFER,
    RPMSG_ERR_TOO_BIG,
    RPMSG_OK,
    FirmwareRemote,
    write_table,
)
from transports.memory import MappedRegion, RegionMemory
from virtio import Buf

BASE = 0x8000_0000
TABLE = 0x1000  # the profile's rings and buffers start here; the resource table at BASE
KIB = 1024
CANARY = b"\xa5" * 64


def limit(size: int) -> int:
    return min(size - HEADER_SIZE, MAX_PAYLOAD)


@dataclass
class Twin:
    """One host (Python HostCore) and a remote of either kind on its own copy of the memory."""

    backing: bytearray
    mem: RegionMemory
    host: HostCore
    c: FirmwareRemote | None = None
    py: RemoteCore | None = None


def twin(p: Profile, kind: str, *, host_rx_size: int | None = None, host_tx_size: int | None = None) -> Twin:
    """The host posts buffers of ``host_*_size`` (default: what the profile says) with a canary after the pool."""
    size = p.size + TABLE + 2 * len(CANARY)
    backing = bytearray(size)
    mem = RegionMemory([MappedRegion("ram", BASE, size, backing)])
    rx, tx = p.rx_layout, p.tx_layout
    write_table(backing, [(rx.desc, p.align, p.num), (tx.desc, p.align, p.num)])
    host = HostCore(
        mem,
        rx,
        tx,
        pool_da=p.pool_da,
        rx_count=p.rx_count,
        tx_count=p.tx_count,
        rx_size=host_rx_size or p.rx_size,
        tx_size=host_tx_size or p.tx_size,
    )
    host.start()
    t = Twin(backing, mem, host)
    if kind == "c":
        t.c = FirmwareRemote(backing, BASE)
        assert t.c.init() == RPMSG_OK
        assert t.c.create_ept(b"", 0x400) == (RPMSG_OK, 0x400)
    else:
        t.py = RemoteCore(mem, rx, tx)
    return t


def at(p: Profile, **kw: int) -> Profile:
    return Profile(num=8, rx_count=8, tx_count=8, base=BASE + TABLE, **kw)


def remote_send(t: Twin, payload: bytes) -> tuple[str, int | None]:
    """("ok", None) or ("too big", the limit the remote names; C has no field for it: None)."""
    if t.c is not None:
        rc = t.c.send(0x400, 0x500, payload)
        assert rc in (RPMSG_OK, RPMSG_ERR_TOO_BIG, RPMSG_ERR_NO_BUFFER), rc
        return {RPMSG_OK: ("ok", None), RPMSG_ERR_TOO_BIG: ("too big", None)}.get(rc, ("no buffer", None))
    assert t.py is not None
    try:
        t.py.send(0x400, 0x500, payload)
    except MessageTooLong as exc:
        return "too big", exc.limit
    except WouldBlock:
        return "no buffer", None
    return "ok", None


def remote_poll(t: Twin) -> list[tuple[int, int, bytes]]:
    if t.c is not None:
        n = t.c.poll()
        assert n >= 0
        got, t.c.received[:] = list(t.c.received), []
        return got
    assert t.py is not None
    return [(m.src, m.dst, bytes(m.payload)) for m in t.py.poll() if hasattr(m, "payload")]


def remote_dropped(t: Twin) -> int:
    return t.c.dropped if t.c is not None else t.py.dropped  # type: ignore[union-attr]


SIZES = [(512, 512), (4 * KIB, 4 * KIB), (16 * KIB, 16 * KIB), (64 * KIB, 64 * KIB), (512, 64 * KIB),
         (64 * KIB, 4 * KIB), (MAX_PAYLOAD + HEADER_SIZE + 1, 16 * KIB)]  # fmt: skip


@pytest.mark.parametrize(("rx_size", "tx_size"), SIZES, ids=[f"rx{a}-tx{b}" for a, b in SIZES])
def test_both_remotes_hold_the_limit_each_way(rx_size: int, tx_size: int) -> None:
    p = at(Profile(), rx_size=rx_size, tx_size=tx_size)
    outcomes = []
    for kind in ("c", "py"):
        t = twin(p, kind)
        down, up = limit(tx_size), limit(rx_size)
        message = bytes((i * 13) & 0xFF for i in range(down))
        t.host.send(0x500, 0x400, message)  # host -> remote at the limit exactly, one byte more refused
        with pytest.raises(MessageTooLong):
            t.host.send(0x500, 0x400, message + b"!")
        assert remote_poll(t) == [(0x500, 0x400, message)]
        reply = bytes((i * 7) & 0xFF for i in range(up))
        too_big = remote_send(t, reply + b"!")
        assert too_big[0] == "too big"
        assert remote_send(t, reply) == ("ok", None)  # the buffer refused above is kept and taken now
        got = [(m.src, m.dst, bytes(m.payload)) for m in t.host.poll() if hasattr(m, "payload")]
        assert got == [(0x400, 0x500, reply)]
        if rx_size > MAX_PAYLOAD + HEADER_SIZE:
            assert remote_send(t, bytes(MAX_PAYLOAD + 1))[0] == "too big"  # the header's u16, not the buffer
        outcomes.append((too_big[0], bytes(t.backing)))
    assert outcomes[0] == outcomes[1]  # same answers, same bytes in memory: rings, buffers, canary


@pytest.mark.parametrize("kind", ["c", "py"])
def test_host_buffers_smaller_than_announced_are_refused_not_overrun(kind: str) -> None:
    """The profile says 64 KiB buffers each way; the host posts 512-byte ones. The remote believes the
    descriptors: a send past 496 bytes is refused (Python names the limit), nothing is written past the buffer."""
    p = at(Profile(), rx_size=64 * KIB, tx_size=64 * KIB)
    t = twin(p, kind, host_rx_size=512)
    last_rx_end = p.pool_da + (p.rx_count - 1) * 512 + 512  # the host packed its smaller buffers
    before = t.mem.read(p.pool_da, 8 * 512 + 4 * KIB)
    assert remote_send(t, bytes(497)) == ("too big", None if kind == "c" else 496)
    assert remote_send(t, bytes(65_520)) == ("too big", None if kind == "c" else 496)
    assert t.mem.read(p.pool_da, 8 * 512 + 4 * KIB) == before  # no byte written anywhere in the pool
    assert remote_send(t, b"y" * 496) == ("ok", None)
    got = [bytes(m.payload) for m in t.host.poll() if hasattr(m, "payload")]
    assert got == [b"y" * 496]
    assert t.mem.read(last_rx_end, 4 * KIB) == before[8 * 512 :]


@pytest.mark.parametrize("kind", ["c", "py"])
def test_a_header_longer_than_its_descriptor_is_dropped(kind: str) -> None:
    """A host message whose header claims 65,520 bytes in a 512-byte descriptor (buffers smaller than announced,
    or a lie): dropped and counted, the buffer returned, the next message delivered; the bytes after the
    descriptor (a canary) are never delivered."""
    p = at(Profile(), rx_size=512, tx_size=64 * KIB)
    t = twin(p, kind)
    addr = t.host.tx.pool_take()  # a send buffer of the host's, as a send takes one
    assert addr is not None
    t.mem.write(addr, pack_header(0x500, 0x400, 65_520))
    t.mem.write(addr + 512, CANARY * 8)
    t.host.tx.add([Buf(addr, 512)], token=addr)  # the descriptor says 512
    t.host.tx.publish()
    t.host.send(0x500, 0x400, b"next")
    assert remote_poll(t) == [(0x500, 0x400, b"next")]
    assert remote_dropped(t) == 1


@pytest.mark.parametrize("kind", ["c", "py"])
def test_one_poll_takes_every_waiting_message_past_the_batch_buffer(kind: str) -> None:
    """An empty message and one of 65,505 bytes (65,537 with headers: one byte past the Python remote's 64 KiB
    batch buffer): one poll delivers both, as the C library's rpmsg_poll does. Found by the differential test
    below: the Python remote delivered the second only at the next poll (and a device salvaging a lost peer's
    messages polls once)."""
    t = twin(at(Profile(), rx_size=512, tx_size=64 * KIB), kind)
    t.host.send(0x500, 0x400, b"")
    t.host.send(0x500, 0x400, b"\xe1" * 65_505)
    assert remote_poll(t) == [(0x500, 0x400, b""), (0x500, 0x400, b"\xe1" * 65_505)]


CLASSES = [512, 4 * KIB, 64 * KIB, MAX_PAYLOAD + HEADER_SIZE, MAX_PAYLOAD + HEADER_SIZE + 1]
SIZE = st.one_of(
    st.integers(0, MAX_PAYLOAD + 2),
    st.sampled_from([0, 495, 496, 497, 4079, 4080, 4081, 65519, 65520, 65521, 65534, 65535, 65536]),
)
OPS = st.lists(
    st.one_of(
        st.tuples(st.just("hsend"), SIZE),
        st.tuples(st.just("rsend"), SIZE),
        st.tuples(st.just("poll")),
        st.tuples(st.just("hpoll")),
    ),
    min_size=1,
    max_size=30,
)


def step(t: Twin, op: tuple[Any, ...]) -> object:
    if op[0] == "hsend":
        try:
            t.host.send(0x500, 0x400, bytes([op[1] & 0xFF]) * op[1])
        except MessageTooLong as exc:
            return "too big", exc.limit
        except WouldBlock:
            return "no buffer"
        return "ok"
    if op[0] == "rsend":
        return remote_send(t, bytes([(op[1] * 3) & 0xFF]) * op[1])[0]  # C names no limit: compare the outcome
    if op[0] == "poll":
        return remote_poll(t)
    return [(m.src, m.dst, bytes(m.payload)) for m in t.host.poll() if hasattr(m, "payload")]


@settings(
    max_examples=int(os.environ.get("RPROC_FUZZ_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.sampled_from(CLASSES), st.sampled_from(CLASSES), st.sampled_from([None, 512, 4 * KIB]), OPS)
def test_c_and_python_remotes_agree_on_big_buffers(
    rx_size: int, tx_size: int, host_rx_size: int | None, ops: list[tuple[Any, ...]]
) -> None:
    """Random host sends, remote sends, polls at every size class, the host's receive buffers sometimes smaller
    than its profile says: the C library and the Python remote give the same outcome for every step and leave
    the same bytes in memory."""
    p = Profile(num=4, rx_count=4, tx_count=4, base=BASE + TABLE, rx_size=rx_size, tx_size=tx_size)
    if host_rx_size is not None and host_rx_size >= rx_size:
        host_rx_size = None  # only smaller than announced: the pool is laid out for the profile's size
    a, b = twin(p, "c", host_rx_size=host_rx_size), twin(p, "py", host_rx_size=host_rx_size)
    assert a.backing == b.backing
    for i, op in enumerate(ops):
        ra, rb = step(a, op), step(b, op)
        assert ra == rb, f"step {i} {op[0]}"
        assert remote_dropped(a) == remote_dropped(b), f"step {i} {op[0]}"
        assert a.backing == b.backing, f"step {i} {op[0]}: memory differs"
