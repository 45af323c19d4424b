"""Functional behaviour of the split virtqueue, identical for both engines (parametrized by backend)."""

from __future__ import annotations

import struct

import pytest

from tests.virtio.conftest import BUF_DA, RING_DA, make_pair
from virtio import Buf, LocalError, Notify, RingFullError, VringLayout, negotiate
from virtio.features import VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX
from virtio.layout import avail_size, desc_size


def test_layout_matches_linux_vring_init() -> None:
    lay = VringLayout.legacy(0x10000, 256, 0x1000)
    assert (lay.desc, lay.avail, lay.used) == (0x10000, 0x11000, 0x12000)
    assert lay.end - lay.desc == 10246  # vring_size(256, 4096)
    small = VringLayout.legacy(0, 8, 4)
    assert desc_size(8) + avail_size(8) == 150
    assert small.used == 152  # the used ring starts at the next 4-byte boundary
    with pytest.raises(LocalError):
        VringLayout(num=8, desc=8, avail=0x100, used=0x200)  # desc not 16-aligned
    with pytest.raises(LocalError):
        VringLayout.legacy(0, 6)


def test_chain_round_trip_and_bytes_in_memory(backend: str) -> None:
    p = make_pair(backend)
    head = p.drv.add([Buf(BUF_DA, 16), Buf(BUF_DA + 0x100, 32, write=True)], token=0xABC)
    assert p.drv.publish() == Notify(0)
    ring = p.memory.read(RING_DA, 32)
    assert struct.unpack_from("<QIHH", ring, 0) == (BUF_DA, 16, 1, 1)  # NEXT, next = 1
    assert struct.unpack_from("<QIHH", ring, 16) == (BUF_DA + 0x100, 32, 2, 0)  # WRITE
    avail = p.memory.read(p.layout.avail, 6)
    assert struct.unpack("<HHH", avail) == (0, 1, head)
    chain = p.dev.pop()
    assert chain is not None and chain.head == head
    assert [(d.addr, d.len, d.writable) for d in chain.descs] == [(BUF_DA, 16, False), (BUF_DA + 0x100, 32, True)]
    p.dev.write(chain.descs[1], b"reply")
    p.dev.push(chain.head, 5)
    assert p.dev.publish() == Notify(0)
    assert struct.unpack_from("<HHII", p.memory.read(p.layout.used, 12)) == (0, 1, head, 5)
    [used] = p.drv.get_used()
    assert (used.token, used.len, used.head) == (0xABC, 5, head)
    assert p.memory.read(BUF_DA + 0x100, 5) == b"reply"
    assert p.drv.num_free == 8
    assert p.dev.pop() is None and p.drv.get_used() == []


def test_ring_full_and_descriptor_recycling(backend: str) -> None:
    p = make_pair(backend, num=4)
    for i in range(4):
        p.drv.add([Buf(BUF_DA + 64 * i, 64)], token=i)
    with pytest.raises(RingFullError):
        p.drv.add([Buf(BUF_DA, 1)], token=9)
    assert p.drv.add_many([Buf(BUF_DA, 1)], [9]) == 0  # add_many stops at a full ring, no error
    p.drv.publish()
    for chain in p.dev.pop_many():
        p.dev.push(chain.head, 0)
    p.dev.publish()
    assert [u.token for u in p.drv.get_used()] == [0, 1, 2, 3]
    head = p.drv.add([Buf(BUF_DA, 8), Buf(BUF_DA, 8), Buf(BUF_DA, 8), Buf(BUF_DA, 8)], token=5)
    assert head in range(4) and p.drv.num_free == 0


def test_sixteen_bit_indices_wrap(backend: str) -> None:
    """70,000 round trips through a ring of 4: avail and used idx wrap past 65535 and order is kept."""
    p = make_pair(backend, num=4)
    p.drv.set_pool([BUF_DA + 64 * i for i in range(4)])
    out = bytearray(4 * 64)
    lens = [0] * 4
    sent = received = 0
    while received < 70_000:
        p.drv.reclaim()
        batch = min(4, 70_000 - sent)
        data = b"".join(struct.pack("<I", sent + i) for i in range(batch))
        sent += p.drv.send_copy(data, [4] * batch, 64)
        p.drv.publish()
        n = p.dev.recv_copy_into(out, lens, 4)
        for i in range(n):
            assert struct.unpack_from("<I", out, 4 * i)[0] == received + i
        received += n
        p.dev.publish()
    state = p.drv.state()
    assert state["avail_kicked"] == 70_000 & 0xFFFF


def test_device_send_copy_into_posted_buffers(backend: str) -> None:
    """Host-RX direction: driver posts writable buffers, device fills them, driver copies out and re-posts."""
    p = make_pair(backend, num=8)
    addrs = [BUF_DA + 512 * i for i in range(8)]
    p.drv.add_many([Buf(a, 512, write=True) for a in addrs], addrs)  # recv_copy_into: token = buffer address
    p.drv.publish()
    msgs = [b"a", b"bb" * 100, b"c" * 512]
    assert p.dev.send_copy(b"".join(msgs), [len(m) for m in msgs]) == 3
    p.dev.publish()
    out = bytearray(2048)
    lens = [0] * 8
    assert p.drv.recv_copy_into(out, lens, 8, 512) == 3
    assert bytes(out[: sum(lens[:3])]) == b"".join(msgs)
    assert p.drv.num_free == 0  # 5 never used + the 3 used ones posted again
    p.drv.publish()
    with pytest.raises(LocalError) as err:
        p.dev.send_copy(b"x" * 513, [513])  # larger than the driver's buffer
    assert err.value.code == "SPACE"
    assert len(p.dev.pop_many()) == 8  # the refused chain was not consumed


def test_flag_notification_suppression(backend: str) -> None:
    p = make_pair(backend)
    p.dev.disable_notifications()
    p.drv.add([Buf(BUF_DA, 8)], token=1)
    assert p.drv.publish() is None  # used.flags NO_NOTIFY
    assert p.dev.enable_notifications() is True  # a chain is already waiting: poll again
    p.drv.add([Buf(BUF_DA, 8)], token=2)
    assert p.drv.publish() == Notify(0)
    assert p.drv.publish() is None  # nothing new since the last publish
    p.drv.disable_callbacks()
    chain = p.dev.pop()
    assert chain is not None
    p.dev.push(chain.head, 0)
    assert p.dev.publish() is None  # avail.flags NO_INTERRUPT
    assert p.drv.enable_callbacks() is True


def test_event_idx_suppression(backend: str) -> None:
    p = make_pair(backend, event_idx=True)
    # Device has read nothing: avail_event = 0 -> the first publish crosses it.
    p.drv.add([Buf(BUF_DA, 8)], token=1)
    assert p.drv.publish() == Notify(0)
    p.drv.add([Buf(BUF_DA, 8)], token=2)
    assert p.drv.publish() is None  # event 0 already passed; device has not caught up
    chains = p.dev.pop_many()  # with notifications on, the device writes avail_event = 2
    assert len(chains) == 2
    p.drv.add([Buf(BUF_DA, 8)], token=3)
    assert p.drv.publish() == Notify(0)
    p.dev.disable_notifications()  # avail_event = last_avail - 1: not until the counter wraps
    p.drv.add([Buf(BUF_DA, 8)], token=4)
    assert p.drv.publish() is None
    # used side: the driver's used_event starts at 0
    for c in chains:
        p.dev.push(c.head, 0)
    assert p.dev.publish() == Notify(0)
    p.drv.disable_callbacks()
    assert [u.token for u in p.drv.get_used()] == [1, 2]
    c = p.dev.pop()
    assert c is not None
    p.dev.push(c.head, 0)
    assert p.dev.publish() is None
    assert p.drv.enable_callbacks() is True


def test_local_misuse_is_a_local_error_and_keeps_the_queue(backend: str) -> None:
    p = make_pair(backend)
    with pytest.raises(LocalError) as err:
        p.drv.add([Buf(0x100000, 8)], token=1)  # outside memory
    assert err.value.code == "BAD_ADDR" and "0x100000" in str(err.value)
    with pytest.raises(LocalError):
        p.dev.push(0, 0)  # nothing was popped
    assert not p.drv.broken and not p.dev.broken
    p.drv.add([Buf(BUF_DA, 8)], token=1)
    p.drv.publish()
    assert p.dev.pop() is not None


def test_negotiation_legacy_and_version_1() -> None:
    legacy = negotiate(1 | (1 << VIRTIO_RING_F_EVENT_IDX), 1)
    assert legacy.legacy and legacy.event_idx and legacy.features == 1 | (1 << VIRTIO_RING_F_EVENT_IDX)
    assert legacy.status_steps == (1, 3, 7)  # Linux ends at 0x07
    modern = negotiate(1 | (1 << VIRTIO_F_VERSION_1), 1)
    assert not modern.legacy and modern.status_steps[-1] == 0x0F
    assert not negotiate(1 << 28, 0).features  # indirect descriptors are never taken
    with pytest.raises(LocalError):
        negotiate(1, 1, allow_legacy=False)


def test_copies_never_exceed_the_callers_buffer(backend: str) -> None:
    p = make_pair(backend)
    p.drv.set_pool([BUF_DA + 64 * i for i in range(8)])
    p.drv.send_copy(b"m" * 40, [40], 64)
    p.drv.publish()
    with pytest.raises(LocalError) as err:
        p.dev.recv_copy_into(bytearray(39), [0], 1)
    assert err.value.code == "SPACE"
    out = bytearray(40)
    assert p.dev.recv_copy_into(out, [0], 1) == 1 and out == b"m" * 40
    p.dev.publish()
    p.drv.reclaim()
    p.drv.add([Buf(BUF_DA, 64, write=True)], token=BUF_DA)
    p.drv.publish()
    p.dev.send_copy(b"r" * 50, [50])
    p.dev.publish()
    with pytest.raises(LocalError) as err:
        p.drv.recv_copy_into(bytearray(49), [0], 1, 64)
    assert err.value.code == "SPACE"


def test_closed_queue_refuses_use(backend: str) -> None:
    p = make_pair(backend)
    p.drv.close()
    p.drv.close()  # idempotent
    with pytest.raises(LocalError, match="queue 0 is closed"):
        p.drv.add([Buf(BUF_DA, 8)], token=1)


def test_write_too_much_names_the_descriptor_slot(backend: str) -> None:
    """The message names the descriptor's slot in the table (Desc is a NamedTuple: desc.index is tuple.index)."""
    p = make_pair(backend)
    p.drv.add([Buf(BUF_DA, 16), Buf(BUF_DA + 0x100, 8, write=True)], token=1)
    p.drv.publish()
    chain = p.dev.pop()
    assert chain is not None
    with pytest.raises(LocalError) as err:
        p.dev.write(chain.descs[1], bytes(9))
    assert str(err.value).startswith(
        f"queue 0: 9 bytes do not fit writable descriptor {chain.descs[1].slot} (8 bytes, flags 0x2)"
    )
    with pytest.raises(LocalError, match=f"descriptor {chain.descs[0].slot} \\(16 bytes, flags 0x1\\)"):
        p.dev.write(chain.descs[0], b"x")  # readable only
