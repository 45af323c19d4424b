"""A hostile peer: every corruption is detected, named (queue, where, value), confined to its queue, and never
makes either engine touch memory outside the mapped region."""

from __future__ import annotations

import struct
from collections.abc import Callable

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
