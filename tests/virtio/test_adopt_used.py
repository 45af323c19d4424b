"""A device that starts its used index where the driver left it (RPMsg-Lite's master pre-fills vring 1's used
ring with its send buffers: lib/rpmsg_lite/rpmsg_lite.c ``rpmsg_lite_master_init``), for both engines."""

from __future__ import annotations

import struct

import pytest

from tests.virtio.conftest import BUF_DA, make_pair
from virtio import Buf, LocalError


def _prefill_used(p: object, count: int) -> None:
    """What ``virtqueue_fill_used_buffers`` leaves: used.idx = count (entries the driver will take itself)."""
    memory, layout = p.memory, p.layout  # type: ignore[attr-defined]
    memory.write(layout.used + 2, struct.pack("<H", count))


def test_the_device_continues_the_used_index_the_driver_left(backend: str) -> None:
    p = make_pair(backend, num=8)
    _prefill_used(p, 8)
    assert p.dev.adopt_used_index() == 8
    p.drv.add([Buf(BUF_DA, 16)], token=1)
    p.drv.publish()
    chain = p.dev.pop()
    assert chain is not None
    p.dev.push(chain.head, 16)
    p.dev.publish()
    idx, head, length = struct.unpack_from("<2xHII", p.memory.read(p.layout.used, 12))
    assert idx == 9  # 1 before the fix: the device started at 0 and the driver's 8 entries were overwritten
    assert (head, length) == (chain.head, 16)
    with pytest.raises(LocalError):
        p.dev.push(chain.head, 16)  # nothing popped is waiting: still checked with the index adopted


def test_adopting_after_a_pop_is_refused(backend: str) -> None:
    p = make_pair(backend, num=8)
    p.drv.add([Buf(BUF_DA, 16)], token=1)
    p.drv.publish()
    assert p.dev.pop() is not None
    with pytest.raises(LocalError):
        p.dev.adopt_used_index()
