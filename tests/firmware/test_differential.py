"""The firmware's C rpmsg remote (firmware/lib/rpmsg_remote.c) and rproc's Python remote (rpmsg/core.py
RemoteCore), driven through the same random sequences of host operations on two copies of the same memory: every
result, every byte of memory (rings, buffers, table), every message delivered, every kick and the device-side
queue state must be identical after every step.

The host is rproc's own driver queues, one per copy, doing what a host may do and what a hostile one does: post
receive buffers of any shape (chains, too small, not device-writable), send messages (chains, lying header
lengths, writable descriptors), write garbage over the rings, and place the vrings anywhere in the table. The C
library is the "wide" build (RPMSG_BOUNCE_SIZE as large as the Python remote's 64 KiB batch buffer): with the
default 512 bytes it drops chained messages above that, as tests/firmware/test_remote_library.py shows."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from rpmsg import MessageTooLong, RemoteProtocolError, WouldBlock
from rpmsg.core import Message, RemoteCore
from rpmsg.protocol import pack_header
from tests.firmware.remote_lib import (
    RPMSG_ERR_BAD_BUFFER,
    RPMSG_ERR_NO_BUFFER,
    RPMSG_ERR_RING,
    RPMSG_ERR_TOO_BIG,
    RPMSG_OK,
    VDEV_OFFSET,
    FirmwareRemote,
    write_table,
)
from transports.errors import TransportError
from transports.memory import MappedRegion, RegionMemory
from virtio import Buf, DriverQueue, VringLayout
from virtio.errors import LocalError, RemoteFault, VirtioError

BASE = 0x80000000
SIZE = 0x8000
BUF = 512
POOL = [BASE + 0x5000 + BUF * i for i in range(24)]
NAMES = (b"ept-a", b"ept-b")
EPTS = (1024, 1025)
EXAMPLES = int(os.environ.get("RPROC_FUZZ_EXAMPLES", "300"))

# The vrings: mostly where a host puts them (da not aligned to `align` included: the used ring then sits at the
# next boundary of the address), sometimes anywhere (both remotes must refuse the same ones).
ring0 = st.tuples(st.sampled_from([BASE + 0x1000, BASE + 0x1040, BASE + 0x1100]),
                  st.sampled_from([16, 64, 0x1000]), st.sampled_from([4, 8, 16]))  # fmt: skip
ring1 = st.tuples(st.sampled_from([BASE + 0x3000, BASE + 0x3010]), st.sampled_from([4, 16, 0x1000]),
                  st.sampled_from([4, 8, 16]))  # fmt: skip
wild = st.tuples(st.one_of(st.integers(0, 2**32 - 1), st.integers(BASE - 0x100, BASE + SIZE)),
                 st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 3, 4, 24, 0x1000, 2**31])),
                 st.one_of(st.integers(0, 2**32 - 1), st.sampled_from([0, 1, 3, 8, 32768, 65536])))  # fmt: skip
VRINGS = st.tuples(ring0, ring1, st.integers(0, 9), wild).map(
    lambda t: (t[3], t[1]) if t[2] == 0 else (t[0], t[3]) if t[2] == 1 else (t[0], t[1])
)

pieces = st.lists(st.tuples(st.integers(0, BUF), st.booleans()), min_size=1, max_size=4)  # (length, writable)
dst = st.one_of(st.sampled_from(EPTS), st.integers(0, 2**32 - 1).filter(lambda a: a != 53))
honest_send = st.tuples(st.just("hsend"), st.integers(0, 2**32 - 1), st.sampled_from(EPTS),
                        st.binary(max_size=BUF - 16), st.none(), st.just([]), st.just(0), st.just(False))  # fmt: skip
OPS = st.one_of(
    # what a host does: post a receive buffer, send a message, take back used buffers; the remote sends and polls
    honest_send,
    honest_send,
    st.tuples(st.just("post"), st.just([(BUF, True)])),
    st.tuples(st.just("post"), st.just([(BUF, True)])),
    st.tuples(st.just("poll")),
    st.tuples(st.just("poll")),
    st.tuples(st.just("rsend"), st.sampled_from(EPTS), dst, st.integers(0, 600)),
    st.tuples(st.just("rsend"), st.sampled_from(EPTS), dst, st.integers(0, 600)),
    st.tuples(st.just("reclaim"), st.integers(0, 1)),
    st.tuples(st.just("reclaim"), st.integers(0, 1)),
    # a receive buffer of any shape: descriptors cut from one pool buffer, each writable or not, some too small
    st.tuples(st.just("post"), pieces),
    # a message in any shape: header + payload cut into descriptors; hdr.len may lie; spare bytes after it; a
    # device-writable descriptor at the end
    st.tuples(
        st.just("hsend"),
        st.integers(0, 2**32 - 1),
        dst,
        st.binary(max_size=BUF - 16),
        st.one_of(st.none(), st.integers(0, 0xFFFF)),
        st.lists(st.integers(0, BUF), max_size=3),
        st.integers(0, 64),
        st.booleans(),
    ),
    # garbage: bytes anywhere in a ring (descriptors, avail, used), or one descriptor rewritten
    st.tuples(st.just("scribble"), st.integers(0, 1), st.integers(0, 0x1100), st.binary(min_size=1, max_size=8)),
    st.tuples(
        st.just("desc"),
        st.integers(0, 1),
        st.integers(0, 15),
        st.one_of(st.sampled_from(POOL), st.integers(BASE, BASE + SIZE), st.integers(0, 2**64 - 1)),
        st.integers(0, 2048),
        st.integers(0, 7),
        st.integers(0, 20),
    ),
)


@dataclass
class Host:
    """rproc's driver queues over one copy of the memory, with the pool of buffers the host owns."""

    memory: bytearray = field(repr=False)
    mem: RegionMemory
    rx: DriverQueue
    tx: DriverQueue
    free: list[int] = field(default_factory=lambda: list(POOL))

    def op(self, op: tuple[Any, ...]) -> object:
        try:
            return self._op(op)
        except VirtioError as exc:
            return type(exc).__name__, str(exc)

    def _op(self, op: tuple[Any, ...]) -> object:
        name = op[0]
        if name == "post":
            if not self.free:
                return "no buffer"
            addr = self.free.pop()
            bufs, pos = [], 0
            for length, writable in op[1]:
                length = min(length, BUF - pos)
                bufs.append(Buf(addr + pos, length, write=writable))
                pos += length
            try:
                self.rx.add(bufs, token=addr)
            except LocalError:
                self.free.append(addr)
                raise
            return self.rx.publish()
        if name == "hsend":
            _, src, to, payload, hdr_len, cuts, extra, writable = op
            if not self.free:
                return "no buffer"
            addr = self.free.pop()
            message = pack_header(src, to, len(payload) if hdr_len is None else hdr_len) + payload
            self.mem.write(addr, message)
            total = min(len(message) + extra, BUF)
            bounds = sorted({0, total, *(min(c, total) for c in cuts)})
            bufs = [Buf(addr + a, b - a) for a, b in itertools.pairwise(bounds)] or [Buf(addr, 0)]
            if writable:
                bufs.append(Buf(addr + total, BUF - total, write=True))  # device-writable: not part of the message
            try:
                self.tx.add(bufs, token=addr)
            except LocalError:
                self.free.append(addr)
                raise
            return self.tx.publish()
        if name == "reclaim":
            queue = self.tx if op[1] else self.rx
            used = queue.get_used()
            self.free.extend(u.token for u in used)
            return used
        if name == "scribble":
            layout = (self.rx if op[1] == 0 else self.tx).layout
            at = layout.desc + op[2] % (layout.end - layout.desc)
            data = op[3][: layout.end - at]
            self.mem.write(at, data)
            return None
        if name == "desc":
            _, queue, slot, addr, length, flags, nxt = op
            layout = (self.rx if queue == 0 else self.tx).layout
            at = layout.desc + 16 * (slot % layout.num)
            self.mem.write(at, addr.to_bytes(8, "little") + length.to_bytes(4, "little") + bytes([flags, 0, nxt, 0]))
            return None
        raise AssertionError(name)


@dataclass
class Side:
    host: Host
    c: FirmwareRemote | None = None
    py: RemoteCore | None = None


def make_side(vrings: tuple[tuple[int, int, int], ...], posted: int) -> tuple[Side | None, object]:
    memory = bytearray(SIZE)
    write_table(memory, list(vrings))
    mem = RegionMemory([MappedRegion("ram", BASE, SIZE, memory)])
    try:
        layouts = [VringLayout.legacy(da, num, align) for da, align, num in vrings]
        rx, tx = DriverQueue(mem, layouts[0], index=0), DriverQueue(mem, layouts[1], index=1)
    except (LocalError, TransportError) as exc:
        return None, type(exc).__name__
    rx.reset()
    tx.reset()
    host = Host(memory, mem, rx, tx)
    for _ in range(posted):
        host.op(("post", [(BUF, True)]))
    return Side(host), None


def remote_send(side: Side, src: int, to: int, size: int) -> int:
    payload = bytes((size + i) & 0xFF for i in range(size))
    if side.c is not None:
        return side.c.send(src, to, payload)
    assert side.py is not None
    return py_result(side.py, lambda: side.py.send(src, to, payload))  # type: ignore[union-attr]


def py_result(py: RemoteCore, send: Callable[[], None]) -> int:
    """A Python remote's send as the C library's return code."""
    try:
        send()
    except WouldBlock:
        return RPMSG_ERR_NO_BUFFER
    except MessageTooLong:
        return RPMSG_ERR_TOO_BIG
    except RemoteProtocolError:
        return RPMSG_ERR_RING if py.to_host.broken else RPMSG_ERR_BAD_BUFFER
    except RemoteFault:
        # Python remote, noted for issue 17: a send into the kept (spare) buffer of a broken ring lets virtio's
        # QueueBrokenError out of RemoteCore.send instead of RemoteProtocolError.
        return RPMSG_ERR_RING
    return RPMSG_OK


def remote_poll(side: Side) -> tuple[int, list[tuple[int, int, bytes]]]:
    """(0 or RPMSG_ERR_RING, the messages for the bound endpoints). The Python remote is polled until its ring is
    drained, as the C library's rpmsg_poll drains it in one call."""
    if side.c is not None:
        before = len(side.c.received)
        rc = side.c.poll()
        got = side.c.received[before:]
        return (RPMSG_ERR_RING if rc < 0 else 0), got
    assert side.py is not None
    got = []
    try:
        for _ in range(64):
            for event in side.py.poll():
                if isinstance(event, Message) and event.dst in EPTS:
                    got.append((event.src, event.dst, bytes(event.payload)))
            if side.py.from_host.broken or not side.py.from_host.has_avail():
                break
    except RemoteProtocolError:
        return RPMSG_ERR_RING, got
    return 0, got


def device_state(side: Side) -> list[tuple[object, ...]]:
    if side.c is not None:
        r = side.c.remote
        queues = [r.to_host, r.from_host]
        return [(bool(q.broken), q.last_avail, q.used_shadow, q.used_signalled) + ((q.err,) if q.broken else ())
                for q in queues]  # fmt: skip
    assert side.py is not None
    out = []
    for q in (side.py.to_host, side.py.from_host):
        s = q.state()
        out.append((bool(s["broken"]), s["last_avail"], s["used_shadow"], s["used_signalled"])
                   + ((s["err"],) if s["broken"] else ()))  # fmt: skip
    return out


def kicks(side: Side) -> list[int]:
    if side.c is not None:
        out = sorted(set(side.c.kicks))
        side.c.kicks.clear()
        return out
    assert side.py is not None
    return side.py.take_intents()


def dropped(side: Side) -> int:
    if side.c is not None:
        return side.c.dropped
    assert side.py is not None
    return side.py.dropped


def step(side: Side, op: tuple[Any, ...]) -> object:
    if op[0] == "rsend":
        return remote_send(side, op[1], op[2], op[3])
    if op[0] == "poll":
        return remote_poll(side)
    return side.host.op(op)


# A host buffer too small for a send is kept for the next one that fits: its device-writable descriptors as they
# were when it was kept, in both remotes (rpmsg.protocol, "Chained buffers"; tests/rpmsg/test_chained_buffers.py).
# The C library kept its first descriptor only: a [0-byte, 16-byte] chain then refused a 0-byte message the Python
# remote took. A host that rewrites the kept buffer's descriptor meanwhile does not move where it is written.
_KEPT_VRINGS = ((2147487744, 16, 4), (2147495936, 4, 4))
_HSEND = ("hsend", 0, 1024, b"", None, [], 0, False)
_KEPT_THEN_REWRITTEN = [("post", [(512, True)]), *[_HSEND] * 5, ("rsend", 1024, 1024, 497), ("post", [(512, True)])]
KEPT_SPARE_EXAMPLES = [
    [*[_HSEND] * 6, ("post", [(0, True), (16, True)]), ("post", [(512, True)]), ("rsend", 1024, 1024, 1),
     ("rsend", 1024, 1024, 0)],
    [*_KEPT_THEN_REWRITTEN, ("desc", 0, 0, 2_147_504_128, 16, 2, 0), ("rsend", 1024, 1024, 0)],
    [*_KEPT_THEN_REWRITTEN, ("desc", 0, 0, 2_147_504_128, 0, 0, 0), ("rsend", 1024, 1024, 0)],
]  # fmt: skip


# A host buffer pointed at the resource table (BASE): the remote's send writes over the vdev's status byte. The C
# library's rpmsg_poll tests DRIVER_OK (and FAILED) before each poll and stops; the Python remote did not look.
_POSTS_AND_SENDS = [*[("post", [(512, True)])] * 4, *[("rsend", 1024, 1024, 0)] * 3]
STATUS_CLOBBERED_EXAMPLES = [
    [*_POSTS_AND_SENDS, ("desc", 0, 3, BASE, 45, 3, 0), ("rsend", 1024, 1024, 132), ("poll",)],
    [*_POSTS_AND_SENDS[:4], _HSEND, *_POSTS_AND_SENDS[4:], ("desc", 0, 3, BASE, 45, 3, 0),
     ("desc", 1, 0, 2_147_504_128, 0, 1, 0), ("rsend", 1024, 1024, 44), ("poll",)],
]  # fmt: skip


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(VRINGS, st.integers(0, 16), st.booleans(), st.lists(OPS, min_size=10, max_size=80))
@example(_KEPT_VRINGS, 0, False, KEPT_SPARE_EXAMPLES[0])
@example(_KEPT_VRINGS, 0, False, KEPT_SPARE_EXAMPLES[1])
@example(_KEPT_VRINGS, 0, False, KEPT_SPARE_EXAMPLES[2])
@example(_KEPT_VRINGS, 0, False, STATUS_CLOBBERED_EXAMPLES[0])
@example(_KEPT_VRINGS, 0, False, STATUS_CLOBBERED_EXAMPLES[1])
def test_c_remote_and_python_remote_agree(
    vrings: tuple[tuple[int, int, int], ...], posted: int, ns: bool, ops: list[tuple[Any, ...]]
) -> None:
    a, a_err = make_side(vrings, posted)
    b, b_err = make_side(vrings, posted)
    assert a_err == b_err
    if a is None or b is None:
        # The host's own engine refuses these vrings; the C library must too (the Python remote cannot be built).
        memory = bytearray(SIZE)
        write_table(memory, list(vrings))
        assert FirmwareRemote(memory, BASE, "wide").init() == RPMSG_ERR_RING
        return
    if not ns:
        write_table(a.host.memory, list(vrings), gfeatures=0)
        write_table(b.host.memory, list(vrings), gfeatures=0)
    a.c = FirmwareRemote(a.host.memory, BASE, "wide")
    assert a.c.init() == RPMSG_OK
    # the vdev's status byte, watched before each poll as the C library's rpmsg_poll watches it
    status_at = VDEV_OFFSET + 24  # struct fw_rsc_vdev: six u32 fields, then status
    b.py = RemoteCore(b.host.mem, b.host.rx.layout, b.host.tx.layout, status=lambda: b.host.memory[status_at])
    assert a.host.memory == b.host.memory
    # The endpoints, announced by name service when negotiated (the C library waits for a buffer to announce in).
    if ns and posted < 2:
        return
    for name, addr in zip(NAMES, EPTS, strict=True):
        rc, got = a.c.create_ept(name, 0xFFFFFFFF)
        assert got == addr
        expected = py_result(b.py, lambda: b.py.announce(name.decode(), addr)) if ns else RPMSG_OK  # noqa: B023
        assert rc == expected
    assert a.host.memory == b.host.memory
    assert kicks(a) == kicks(b)
    for i, op in enumerate(ops):
        ra, rb = step(a, op), step(b, op)
        where = f"step {i} {op[0]}"
        if op[0] in ("rsend", "poll"):
            event(f"{op[0]} -> {ra if op[0] == 'rsend' else (ra[0], min(len(ra[1]), 2))}")  # type: ignore[index]
        assert ra == rb, where
        assert kicks(a) == kicks(b), where
        assert dropped(a) == dropped(b), where
        assert device_state(a) == device_state(b), where
        if a.host.memory != b.host.memory:
            diff = next(j for j in range(SIZE) if a.host.memory[j] != b.host.memory[j])
            raise AssertionError(f"{where}: memory differs first at {BASE + diff:#x}")
    b.py.close()
