"""Random bytes written by the "peer" over the whole ring: both engines, both sides, every operation either
works or raises a VirtioError; nothing hangs and nothing outside the mapped region is touched (the canaries
around it; under the sanitizer run, ASan watches every access of the C engine too)."""

from __future__ import annotations

import contextlib
import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.virtio.conftest import BUF_DA, RING_DA, make_pair
from virtio import Buf, VirtioError

NUM = 16
EXAMPLES = int(os.environ.get("RPROC_FUZZ_EXAMPLES", "600"))
RING = 0x800  # legacy ring of 16 with align 64 fits in 0x800


def exercise(backend: str, garbage: bytes, event_idx: bool) -> None:
    p = make_pair(backend, NUM, event_idx=event_idx)
    p.drv.set_pool([BUF_DA + 64 * i for i in range(NUM)])
    p.drv.send_copy(b"x" * 40, [10, 10, 10, 10], 64)
    p.drv.add_many(
        [Buf(BUF_DA + 0x2000 + 64 * i, 64, write=True) for i in range(4)], [BUF_DA + 0x2000 + 64 * i for i in range(4)]
    )
    p.drv.publish()
    p.memory.write(RING_DA, garbage[:RING])
    ops = [
        lambda: p.dev.pop_many(),
        lambda: p.dev.pop(),
        lambda: p.dev.recv_copy_into(bytearray(2048), [0] * NUM, NUM),
        lambda: p.dev.send_copy(b"y" * 64, [32, 32]),
        lambda: p.dev.publish(),
        lambda: p.dev.enable_notifications(),
        lambda: p.drv.get_used(),
        lambda: p.drv.reclaim(),
        lambda: p.drv.recv_copy_into(bytearray(4096), [0] * NUM, NUM, 64),
        lambda: p.drv.send_copy(b"z" * 8, [8], 64),
        lambda: p.drv.publish(),
        lambda: p.drv.enable_callbacks(),
    ]
    for op in ops:
        with contextlib.suppress(VirtioError):
            op()
    assert p.canaries_intact()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=RING, max_size=RING), st.booleans(), st.sampled_from(["c", "python"]))
def test_random_ring_memory(garbage: bytes, event_idx: bool, backend: str) -> None:
    exercise(backend, garbage, event_idx)


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), st.booleans(), st.sampled_from(["c", "python"]))
def test_sparse_corruption_of_a_live_ring(data: st.DataObject, event_idx: bool, backend: str) -> None:
    """A few words changed in an otherwise valid ring reach deeper paths than uniform noise."""
    p = make_pair(backend, NUM, event_idx=event_idx)
    p.drv.set_pool([BUF_DA + 64 * i for i in range(NUM)])
    p.drv.send_copy(b"x" * 80, [10] * 8, 64)
    p.drv.publish()
    ring = bytearray(p.memory.read(RING_DA, RING))
    for _ in range(data.draw(st.integers(1, 6))):
        pos = data.draw(st.integers(0, RING - 2))
        ring[pos : pos + 2] = data.draw(st.binary(min_size=2, max_size=2))
    exercise(backend, bytes(ring), event_idx)
