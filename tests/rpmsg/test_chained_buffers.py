"""One rule for a host message split over a chain of descriptors, whichever path of the remote takes it in.

The rule (docs/rpmsg.md, "Chained buffers"): a message is the concatenation of the chain's device-readable
bytes, and the chain goes back with used.len = the bytes read. The batch path (copy) and the zero-copy path of
:class:`rpmsg.RemoteCore` both apply it, as the C remote library does (firmware/lib/rpmsg_remote.c)."""

from __future__ import annotations

import struct
from collections.abc import Callable

import pytest

from rpmsg import HostCore, Message, MessageTooLong, Profile, RemoteCore
from rpmsg.protocol import pack_header
from transports.memory import MappedRegion, RegionMemory
from virtio import Buf

BASE = 0x8000_0000
SRC, DST = 0x500, 0x400
PAYLOAD = bytes(range(200))

PATHS: dict[str, Callable[[int], bool] | None] = {"batch": None, "zero-copy": lambda dst: True}


def _pair() -> tuple[RegionMemory, HostCore, RemoteCore]:
    p = Profile(num=8, rx_count=8, tx_count=8, base=BASE)
    size = p.size
    mem = RegionMemory([MappedRegion("ram", BASE, size, bytearray(size))])
    host = HostCore(mem, p.rx_layout, p.tx_layout, pool_da=p.pool_da, rx_count=8, tx_count=8)
    host.start()
    return mem, host, RemoteCore(mem, p.rx_layout, p.tx_layout)


def _post_split(mem: RegionMemory, host: HostCore, split: int) -> tuple[int, int]:
    """Post one message (header + PAYLOAD) on vring 1 in two device-readable descriptors, cut at ``split``
    bytes, taken from two of the host's send buffers; the bytes after each part are garbage. Returns the
    message's size and the used ring's length."""
    message = pack_header(SRC, DST, len(PAYLOAD)) + PAYLOAD
    first, second = host.tx.pool_take(), host.tx.pool_take()
    assert first is not None and second is not None
    mem.write(first, message[:split] + b"\xee" * 64)
    mem.write(second, message[split:] + b"\xee" * 64)
    host.tx.add([Buf(first, split), Buf(second, len(message) - split)], token=first)
    host.tx.publish()
    return len(message), host.tx.layout.used


def _used(mem: RegionMemory, used: int) -> tuple[int, int]:
    """(used.idx, len of the last used entry) of vring 1."""
    idx = struct.unpack("<H", mem.read(used + 2, 2))[0]
    _head, length = struct.unpack("<II", mem.read(used + 4 + 8 * ((idx - 1) % 8), 8))
    return idx, length


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("split", [8, 16, 40], ids=["header-split", "header-alone", "payload-split"])
def test_a_two_descriptor_message_is_delivered_whole_by_both_paths(path: str, split: int) -> None:
    """Before: the zero-copy path read only the first descriptor: a header cut in two was dropped as malformed,
    a header alone in its descriptor was dropped as running past its buffer, a payload cut in two was dropped;
    the batch path delivered all three."""
    mem, host, remote = _pair()
    size, used = _post_split(mem, host, split)
    events = remote.poll(zero_copy=PATHS[path])
    assert remote.dropped == 0
    assert len(events) == 1
    msg = events[0]
    assert isinstance(msg, Message)
    assert (msg.src, msg.dst, bytes(msg.payload)) == (SRC, DST, PAYLOAD)
    msg.release()
    # The chain went back, with used.len = the bytes read (the whole message), whichever path took it.
    assert _used(mem, used) == (1, size)


def test_both_paths_agree_on_each_chain() -> None:
    """The same chains, one per split, taken by each path: the same messages, counters and used entries."""
    seen = {}
    for path, zero_copy in PATHS.items():
        outcome = []
        for split in (1, 8, 15, 16, 17, 100):
            mem, host, remote = _pair()
            _, used = _post_split(mem, host, split)
            got = [(m.src, m.dst, bytes(m.payload)) for m in remote.poll(zero_copy=zero_copy) if isinstance(m, Message)]
            outcome.append((split, got, remote.dropped, _used(mem, used)))
        seen[path] = outcome
    assert seen["batch"] == seen["zero-copy"]


def _post_rx_chain(mem: RegionMemory, host: HostCore, first: int, second: int) -> tuple[int, int]:
    """Instead of its usual single buffers, the host posts one receive buffer on vring 0 as a chain of two
    device-writable descriptors of ``first`` and ``second`` bytes (two of its receive buffers). Returns their
    addresses."""
    a, b = host.rx_addrs[0], host.rx_addrs[1]
    host.rx.reset()
    host.rx.add([Buf(a, first, write=True), Buf(b, second, write=True)], token=a)
    host.rx.publish()
    return a, b


@pytest.mark.parametrize("first_too_big", [False, True], ids=["fits", "after-one-too-big"])
def test_a_send_fills_a_two_descriptor_host_buffer_on_every_path(first_too_big: bool) -> None:
    """A send fills the chain's device-writable descriptors in order (the rule of the engine's send_copy and of
    the C remote), also when that buffer was kept (spare) after a send too big for it. Before: the kept buffer
    was measured and written by its first descriptor only: MessageTooLong with a limit of 8 bytes, for a chain
    of 24 + 40 bytes that holds 48."""
    mem = RegionMemory([MappedRegion("ram", BASE, _PROFILE.size, bytearray(_PROFILE.size))])
    host = HostCore(mem, _PROFILE.rx_layout, _PROFILE.tx_layout, pool_da=_PROFILE.pool_da, rx_count=8, tx_count=8)
    host.start()
    remote = RemoteCore(mem, _PROFILE.rx_layout, _PROFILE.tx_layout)
    a, b = _post_rx_chain(mem, host, 24, 40)
    if first_too_big:
        with pytest.raises(MessageTooLong) as err:
            remote.send(SRC, DST, b"x" * 49)
        assert err.value.limit == 48  # the chain's room, not its first descriptor's
    payload = bytes(range(30))
    remote.send(SRC, DST, payload)
    message = pack_header(SRC, DST, len(payload)) + payload
    assert mem.read(a, 24) + mem.read(b, len(message) - 24) == message
    used = host.rx.layout.used
    assert struct.unpack("<HII", mem.read(used + 2, 10)) == (1, 0, len(message))  # used.idx, head, used.len


_PROFILE = Profile(num=8, rx_count=8, tx_count=8, base=BASE)


def test_both_paths_return_a_device_writable_send_buffer_with_the_same_used_len() -> None:
    """A host send buffer flagged device-writable holds 0 device-readable bytes: both paths drop it (counted) and
    return it with used.len = the bytes read, 0, as the C remote does (firmware/lib/rpmsg_remote.c). Before, the
    zero-copy path returned it with the descriptor's length."""
    seen = {}
    for path, zero_copy in PATHS.items():
        mem, host, remote = _pair()
        addr = host.tx.pool_take()
        assert addr is not None
        mem.write(addr, pack_header(SRC, DST, 5) + b"hello")
        host.tx.add([Buf(addr, 21, write=True)], token=addr)
        host.tx.publish()
        assert remote.poll(zero_copy=zero_copy) == []
        seen[path] = (remote.dropped, _used(mem, host.tx.layout.used))
    assert seen["batch"] == seen["zero-copy"] == (1, (1, 0))
