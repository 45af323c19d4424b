"""The C engine and the Python twin, driven through the same random sequences of driver, device and hostile
operations: every returned value, every byte of ring and buffer memory, and every piece of queue state must be
identical after every step."""

from __future__ import annotations

import os
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from tests.virtio.conftest import BUF_DA, GUARD, Pair, make_pair
from virtio import Buf, LocalError, RemoteFault

NUM = 8
BUF_SIZE = 64
POOL = [BUF_DA + BUF_SIZE * i for i in range(NUM)]
RING_BYTES = 0x1000  # ring memory starts at RING_DA=0x1000; scribbles stay in [0x1000, 0x2000)

addr = st.one_of(st.sampled_from(POOL), st.integers(0, 0x20000))
length = st.one_of(st.sampled_from([0, 1, 16, BUF_SIZE]), st.integers(0, 0x300))
buf = st.builds(Buf, addr=addr, len=length, write=st.booleans())

OPS = st.one_of(
    # tokens: buffer addresses (what recv_copy and reclaim take them for) as well as anything else
    st.tuples(st.just("add"), st.lists(buf, min_size=1, max_size=3), st.one_of(addr, st.integers(0, 2**64 - 1))),
    st.tuples(st.just("add_many"), st.lists(buf, max_size=4)),
    st.tuples(st.just("drv_publish")),
    st.tuples(st.just("get_used"), st.integers(0, NUM)),
    st.tuples(st.just("drv_cb"), st.booleans()),
    st.tuples(st.just("send_copy"), st.lists(st.integers(0, BUF_SIZE + 8), max_size=5)),
    st.tuples(st.just("reclaim")),
    st.tuples(st.just("drv_recv_copy"), st.integers(0, 300), st.integers(0, NUM)),
    st.tuples(st.just("drv_peek")),
    st.tuples(st.just("drv_skip")),
    st.tuples(st.just("pop")),
    st.tuples(st.just("peek"), st.integers(0, NUM + 1)),
    st.tuples(st.just("skip")),
    st.tuples(st.just("pop_many"), st.integers(0, NUM)),
    st.tuples(st.just("push"), st.integers(0, NUM + 2), st.integers(0, 0x200)),
    st.tuples(st.just("dev_publish")),
    st.tuples(st.just("dev_notify"), st.booleans()),
    st.tuples(st.just("dev_recv_copy"), st.integers(0, 300), st.integers(0, NUM)),
    st.tuples(st.just("dev_send_copy"), st.lists(st.integers(0, BUF_SIZE + 8), max_size=5)),
    st.tuples(st.just("scribble"), st.integers(0, RING_BYTES - 1), st.binary(min_size=1, max_size=8)),
)


def payloads(lens: list[int]) -> bytes:
    return b"".join(bytes((n + i) & 0xFF for i in range(n)) for n in lens)


def apply(p: Pair, op: tuple[Any, ...]) -> Any:
    name = op[0]
    try:
        if name == "add":
            return p.drv.add(op[1], op[2])
        if name == "add_many":
            return p.drv.add_many(op[1], [b.addr for b in op[1]])
        if name == "drv_publish":
            return p.drv.publish()
        if name == "get_used":
            return p.drv.get_used(op[1])
        if name == "drv_cb":
            return p.drv.enable_callbacks() if op[1] else p.drv.disable_callbacks()
        if name == "send_copy":
            return p.drv.send_copy(payloads(op[1]), op[1], BUF_SIZE)
        if name == "reclaim":
            return p.drv.reclaim()
        if name == "drv_recv_copy":
            out, lens = bytearray(op[1]), [0] * op[2]
            n = p.drv.recv_copy_into(out, lens, op[2], BUF_SIZE)
            return n, bytes(out), lens
        if name == "drv_peek":
            return p.drv.peek_used()
        if name == "drv_skip":
            return p.drv.skip_used()
        if name == "pop":
            return p.dev.pop()
        if name == "peek":
            return p.dev.peek(op[1])
        if name == "skip":
            return p.dev.skip()
        if name == "pop_many":
            return p.dev.pop_many(op[1])
        if name == "push":
            return p.dev.push(op[1], op[2])
        if name == "dev_publish":
            return p.dev.publish()
        if name == "dev_notify":
            return p.dev.enable_notifications() if op[1] else p.dev.disable_notifications()
        if name == "dev_recv_copy":
            out, lens = bytearray(op[1]), [0] * op[2]
            n = p.dev.recv_copy_into(out, lens, op[2])
            return n, bytes(out), lens
        if name == "dev_send_copy":
            return p.dev.send_copy(payloads(op[1]), op[1])
        if name == "scribble":
            p.memory.write(0x1000 + op[1], op[2][: RING_BYTES - op[1]])
            return None
    except RemoteFault as exc:
        return ("remote", type(exc).__name__, exc.code, exc.where, exc.value)
    except LocalError as exc:
        return ("local", type(exc).__name__, exc.code, str(exc))
    raise AssertionError(name)


EXAMPLES = int(os.environ.get("RPROC_FUZZ_EXAMPLES", "600"))

# recv_copy stopping part-way at a local error (the second buffer's token is no address): the entry taken before
# it must be acknowledged the same way by both (used_event, with event indices), as every other stop part-way.
LOCAL_ERROR_PART_WAY = [
    ("add", [Buf(POOL[0], BUF_SIZE, write=True)], POOL[0]),
    ("add", [Buf(POOL[1], BUF_SIZE, write=True)], 0x30000),
    ("drv_publish",),
    ("pop",),
    ("pop",),
    ("push", 0, 4),
    ("push", 1, 4),
    ("dev_publish",),
    ("drv_recv_copy", 300, NUM),
]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(OPS, min_size=1, max_size=80), st.booleans())
@example(LOCAL_ERROR_PART_WAY, True)
def test_c_and_python_engines_agree(ops: list[tuple[Any, ...]], event_idx: bool) -> None:
    c = make_pair("c", NUM, event_idx=event_idx)
    py = make_pair("python", NUM, event_idx=event_idx)
    for p in (c, py):
        p.drv.set_pool(POOL)
    for step, op in enumerate(ops):
        rc, rpy = apply(c, op), apply(py, op)
        assert rc == rpy, f"step {step} {op[0]}: C {rc!r} != Python {rpy!r}"
        assert c.backing == py.backing, f"step {step} {op[0]}: memory differs"
        assert c.drv.state() == py.drv.state(), f"step {step} {op[0]}: driver state differs"
        assert c.dev.state() == py.dev.state(), f"step {step} {op[0]}: device state differs"
    assert c.canaries_intact() and py.canaries_intact()
    assert len(c.backing) == 0x10000 + 2 * GUARD
