"""A hostile peer: every corruption is detected, named (queue, where, value), confined to its queue, and never
makes either engine touch memory outside the mapped region."""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

import pytest

from tests.virtio.conftest import BUF_DA, Pair, make_pair
from virtio import Buf, DeviceQueue, DriverQueue, QueueBrokenError, RemoteFault, VringLayout


def write_desc(p: Pair, i: int, addr: int, length: int, flags: int, nxt: int) -> None:
    p.memory.write(p.layout.desc + 16 * i, struct.pack("<QIHH", addr, length, flags, nxt))


def publish_heads(p: Pair, *heads: int, idx: int | None = None) -> None:
    for pos, h in enumerate(heads):
        p.memory.write(p.layout.avail + 4 + 2 * pos, struct.pack("<H", h))
    p.memory.write(p.layout.avail + 2, struct.pack("<H", len(heads) if idx is None else idx))


def write_used(p: Pair, pos: int, uid: int, length: int, idx: int) -> None:
    p.memory.write(p.layout.used + 4 + 8 * pos, struct.pack("<II", uid, length))
    p.memory.write(p.layout.used + 2, struct.pack("<H", idx))


# Driver-written corruption, seen by the device side.
DEVICE_CASES: dict[str, tuple[Callable[[Pair], None], str, int, int]] = {
    "BAD_HEAD": (lambda p: publish_heads(p, 11), "BAD_HEAD", 0, 11),
    "BAD_NEXT": (lambda p: (write_desc(p, 0, BUF_DA, 8, 1, 200), publish_heads(p, 0)), "BAD_NEXT", 0, 200),
    "LOOP": (
        lambda p: (write_desc(p, 0, BUF_DA, 8, 1, 1), write_desc(p, 1, BUF_DA, 8, 1, 0), publish_heads(p, 0)),
        "LOOP",
        0,
        8,
    ),
    "AVAIL_JUMP": (lambda p: publish_heads(p, 0, idx=9), "AVAIL_JUMP", 0, 9),
    "BAD_ADDR": (lambda p: (write_desc(p, 2, 0xFFFF_0000, 8, 0, 0), publish_heads(p, 2)), "BAD_ADDR", 2, 0xFFFF_0000),
    "ADDR_WRAP": (
        lambda p: (write_desc(p, 2, 0xFFFF_FFFF_FFFF_FFF0, 0x20, 0, 0), publish_heads(p, 2)),
        "BAD_ADDR",
        2,
        0xFFFF_FFFF_FFFF_FFF0,
    ),
    "LEN_PAST_END": (lambda p: (write_desc(p, 3, BUF_DA, 0x100000, 0, 0), publish_heads(p, 3)), "BAD_ADDR", 3, BUF_DA),
    "INDIRECT": (lambda p: (write_desc(p, 0, BUF_DA, 16, 4, 0), publish_heads(p, 0)), "INDIRECT", 0, 4),
}


@pytest.mark.parametrize("case", sorted(DEVICE_CASES))
def test_device_side_detects(backend: str, case: str) -> None:
    corrupt, code, where, value = DEVICE_CASES[case]
    p = make_pair(backend)
    corrupt(p)
    with pytest.raises(RemoteFault) as err:
        p.dev.pop()
    assert (err.value.queue, err.value.code, err.value.where, err.value.value) == (0, code, where, value)
    assert str(err.value).startswith(f"queue 0: {code}: ")
    assert p.dev.broken
    with pytest.raises(QueueBrokenError):
        p.dev.pop()
    with pytest.raises(QueueBrokenError):
        p.dev.publish()
    assert p.canaries_intact()


@pytest.mark.parametrize("case", sorted(DEVICE_CASES))
def test_device_batch_paths_detect_too(backend: str, case: str) -> None:
    corrupt, code, _, _ = DEVICE_CASES[case]
    for op in ("pop_many", "recv_copy", "send_copy"):
        p = make_pair(backend)
        corrupt(p)
        with pytest.raises(RemoteFault) as err:
            if op == "pop_many":
                p.dev.pop_many()
            elif op == "recv_copy":
                p.dev.recv_copy_into(bytearray(4096), [0] * 8, 8)
            else:
                p.dev.send_copy(b"x", [1])
        assert err.value.code == code, op
        assert p.canaries_intact()


def in_flight(p: Pair, n: int = 1) -> None:
    for i in range(n):
        p.drv.add([Buf(BUF_DA + 64 * i, 64, write=True)], token=100 + i)
    p.drv.publish()


# Device-written corruption, seen by the driver side.
DRIVER_CASES: dict[str, tuple[Callable[[Pair], None], str, int, int]] = {
    "USED_JUMP": (lambda p: write_used(p, 0, 0, 0, idx=5), "USED_JUMP", 0, 5),
    "ID_BEYOND_RING": (lambda p: write_used(p, 0, 1000, 0, idx=1), "BAD_USED_ID", 0, 1000),
    "ID_NEVER_AVAILABLE": (lambda p: write_used(p, 0, 5, 0, idx=1), "BAD_USED_ID", 0, 5),
    "USED_LEN": (lambda p: write_used(p, 0, 0, 65, idx=1), "USED_LEN", 0, 65),
}


@pytest.mark.parametrize("case", sorted(DRIVER_CASES))
def test_driver_side_detects(backend: str, case: str) -> None:
    corrupt, code, where, value = DRIVER_CASES[case]
    p = make_pair(backend)
    in_flight(p)
    corrupt(p)
    with pytest.raises(RemoteFault) as err:
        p.drv.get_used()
    assert (err.value.code, err.value.where, err.value.value) == (code, where, value)
    assert p.drv.broken
    with pytest.raises(QueueBrokenError):
        p.drv.add([Buf(BUF_DA, 8)], token=1)
    assert p.canaries_intact()


def test_id_returned_twice(backend: str) -> None:
    """The device returns the same head twice: the second time it is no longer in flight."""
    p = make_pair(backend)
    in_flight(p, 2)
    write_used(p, 0, 0, 0, idx=1)
    assert [u.token for u in p.drv.get_used()] == [100]
    write_used(p, 1, 0, 0, idx=2)
    with pytest.raises(RemoteFault) as err:
        p.drv.get_used()
    assert err.value.code == "BAD_USED_ID"


def test_valid_entries_before_a_fault_are_delivered(backend: str) -> None:
    """Nothing acknowledged is lost: a batch delivers the good entries, the next call reports the fault."""
    p = make_pair(backend)
    in_flight(p, 3)
    p.memory.write(p.layout.used + 4, struct.pack("<IIII", 0, 3, 7, 0))  # id 0 ok, then id 7 (not in flight)
    p.memory.write(p.layout.used + 2, struct.pack("<H", 2))
    assert [(u.token, u.len) for u in p.drv.get_used()] == [(100, 3)]
    assert p.drv.broken
    with pytest.raises(QueueBrokenError) as err:
        p.drv.get_used()
    assert err.value.code == "BAD_USED_ID"


def test_fault_is_confined_to_its_queue(backend: str) -> None:
    p = make_pair(backend)
    layout1 = VringLayout.legacy(0x4000, 8, 64)
    drv1 = DriverQueue(p.memory, layout1, index=1, backend=backend)
    dev1 = DeviceQueue(p.memory, layout1, index=1, backend=backend)
    drv1.reset()
    publish_heads(p, 50)
    with pytest.raises(RemoteFault) as err:
        p.dev.pop()
    assert err.value.queue == 0
    drv1.add([Buf(BUF_DA, 8)], token=1)
    drv1.publish()
    chain = dev1.pop()
    assert chain is not None
    dev1.push(chain.head, 0)
    dev1.publish()
    assert [u.token for u in drv1.get_used()] == [1]


def test_descriptor_rewritten_between_checks_cannot_escape(backend: str) -> None:
    """recv_copy measures a chain, then copies: a descriptor grown in between is caught, not over-copied."""
    p = make_pair(backend)
    in_flight(p)  # descriptor 0: 64 bytes, device-writable
    write_desc(p, 0, BUF_DA, 16, 0, 0)  # driver turns it readable, 16 bytes
    out = bytearray(16)
    assert p.dev.recv_copy_into(out, [0], 1) == 1
    assert p.canaries_intact()


def post_writable(p: Pair, n: int, size: int = 64) -> list[int]:
    """``n`` device-writable buffers whose tokens are their addresses (as recv_copy wants), published."""
    addrs = [BUF_DA + size * i for i in range(n)]
    p.drv.add_many([Buf(a, size, write=True) for a in addrs], addrs)
    p.drv.publish()
    return addrs


def test_id_returned_twice_in_one_batch(backend: str) -> None:
    """The device returns one head twice in one batch. recv_copy posts each buffer again as it goes, so the head
    is in the descriptor table again when the second entry is read: it is still refused, because the device has
    not been shown it (not published). The first entry is delivered, then the queue is in the error state."""
    p = make_pair(backend)
    addrs = post_writable(p, 4)
    p.memory.write(addrs[0], b"once")
    p.memory.write(p.layout.used + 4, struct.pack("<IIII", 0, 4, 0, 4))  # id 0, then id 0 again
    p.memory.write(p.layout.used + 2, struct.pack("<H", 2))
    out, lens = bytearray(256), [0] * 4
    assert p.drv.recv_copy_into(out, lens, 4, 64) == 1
    assert (bytes(out[:4]), lens[0]) == (b"once", 4)
    assert p.drv.broken
    with pytest.raises(QueueBrokenError) as err:
        p.drv.recv_copy_into(out, lens, 4, 64)
    assert (err.value.code, err.value.where, err.value.value) == ("BAD_USED_ID", 1, 0)
    assert p.canaries_intact()


def test_id_added_again_but_not_published_is_not_in_flight(backend: str) -> None:
    """A head taken back and added again, but not yet published, is not the device's: returning it is a fault."""
    p = make_pair(backend)
    post_writable(p, 2)
    write_used(p, 0, 0, 0, idx=1)
    assert [u.head for u in p.drv.get_used()] == [0]
    assert p.drv.add([Buf(BUF_DA, 64, write=True)], token=BUF_DA) == 0  # descriptor 0 again, not published
    write_used(p, 1, 0, 0, idx=2)
    with pytest.raises(RemoteFault) as err:
        p.drv.get_used()
    assert (err.value.code, err.value.where, err.value.value) == ("BAD_USED_ID", 1, 0)
    with pytest.raises(QueueBrokenError):
        p.drv.publish()  # the error state holds: nothing is published any more
    assert p.memory.read(p.layout.avail + 2, 2) == struct.pack("<H", 2)


def _shrink_between_passes(p: Pair, backend: str, out_len: int) -> memoryview | bytearray:
    """Make the readable chain 0 -> 1 (16 + 16 bytes) lose 12 bytes of descriptor 1 after recv_copy measured it
    and before it copies it; returns the ``out`` buffer to pass. The C engine is driven into it by aliasing:
    ``out`` is ring memory whose first bytes are descriptor 1's length, so copying descriptor 0 rewrites it. The
    Python engine copies into its own buffer first, so its measuring pass is wrapped instead."""
    write_desc(p, 0, BUF_DA, 16, 1, 1)
    write_desc(p, 1, BUF_DA + 64, 16, 0, 0)
    publish_heads(p, 0)
    shrunk = struct.pack("<I", 4)
    if backend == "c":
        p.memory.write(BUF_DA, shrunk * 4)
        return p.memory.view(p.layout.desc + 16 + 8, out_len)
    ring: Any = p.dev._ring
    walk = ring._walk

    def walk_then_shrink(head: int, max_descs: int | None) -> Any:
        result = walk(head, max_descs)
        p.memory.write(p.layout.desc + 16 + 8, shrunk)
        return result

    ring._walk = walk_then_shrink
    return bytearray(out_len)


def test_readable_descriptor_shrunk_between_measure_and_copy(backend: str) -> None:
    """recv_copy measures a chain, then copies it: a readable descriptor that shrank in between would leave
    fewer bytes copied than the length reported; it is a fault, as for sends (a grown one already was)."""
    p = make_pair(backend)
    out = _shrink_between_passes(p, backend, 64)
    lens = [0]
    with pytest.raises(RemoteFault) as err:
        p.dev.recv_copy_into(out, lens, 1)
    assert (err.value.code, err.value.where, err.value.value) == ("USED_LEN", 0, 20)
    assert p.dev.broken and lens == [0]
    assert p.memory.read(p.layout.used + 2, 2) == b"\0\0"  # nothing returned used
    assert p.canaries_intact()
