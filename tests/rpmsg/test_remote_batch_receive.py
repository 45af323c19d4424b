"""The remote's batched receive (``recvfrom_many``, ``recv_many``) copying each message straight out of the ring
(rpmsg/csrc/endpoint_recv.c ``take_direct``: one copy, the next messages prefetched), with the C path and the
endpoints' C methods and without them (conftest's ``host_path``): whatever the host puts in the ring, the
messages, their order, the counters and the used entries are those of the general path, which the batch path
(copy into the batch buffer, then parse) applies; and the new ``recv_many`` C method returns what
``recvfrom_many`` returns without the sources."""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from rpmsg import PeerLost, RpmsgDevice, WouldBlock, loopback_pair
from rpmsg.endpoint import Endpoint
from rpmsg.protocol import pack_header
from tests.rpmsg.test_batch_zero_copy import PROFILE
from tests.rpmsg.test_batch_zero_copy import _connect as connect
from virtio import Buf

LAY = PROFILE.tx_layout  # vring 1: the host's messages to the remote


@pytest.fixture(params=["block", "spin", "busy"])
def pair(request: pytest.FixtureRequest, host_path: str) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    host, remote = loopback_pair(PROFILE, wait=request.param, eventfd=True)
    assert remote._gate.open == (host_path == "c-path")  # the C methods, and with them take_direct, or none
    yield host, remote
    remote.close()
    host.close()


def _connect(host: RpmsgDevice, remote: RpmsgDevice) -> tuple[Endpoint, Endpoint, Endpoint]:
    """The host's endpoint, the remote's for it and another of the remote's (non-blocking)."""
    h, r = connect(host, remote)
    h.settimeout(5)
    other = remote.endpoint("other")
    other.settimeout(0)
    return h, r, other


def _drain(ep: Endpoint, sources: bool) -> list[object]:
    out: list[object] = []
    while True:
        try:
            out += ep.recvfrom_many(64) if sources else ep.recv_many(64)
        except WouldBlock:
            return out


def _last_posted(host: RpmsgDevice) -> tuple[int, int]:
    """(descriptor table address, buffer address) of the host's last posted message on vring 1."""
    mem = host.core.memory
    (idx,) = struct.unpack("<H", mem.read(LAY.avail + 2, 2))
    (head,) = struct.unpack("<H", mem.read(LAY.avail + 4 + 2 * ((idx - 1) % PROFILE.num), 2))
    desc = LAY.desc + 16 * head
    (addr,) = struct.unpack("<Q", mem.read(desc, 8))
    return desc, addr


@pytest.mark.parametrize("sources", [True, False], ids=["recvfrom_many", "recv_many"])
def test_mixed_traffic_is_sorted_as_the_general_path_sorts_it(
    pair: tuple[RpmsgDevice, RpmsgDevice], sources: bool
) -> None:
    """Messages for the endpoint, one for another endpoint, a malformed one (its length past its buffer) and a
    truncated receive: the endpoint gets its own in order (cut to bufsize), the other endpoint its one, the
    malformed one is dropped and counted, and nothing after it is lost."""
    host, remote = pair
    h, r, other = _connect(host, remote)
    h.send_many([b"a%d" % i for i in range(5)])
    h.sendto(b"for other", other.addr)
    h.send(b"spoiled")
    _, buf = _last_posted(host)
    host.core.memory.write(buf, pack_header(h.addr, r.addr, 0xFFFF))  # longer than its buffer
    h.send_many([b"b%d" % i for i in range(3)])
    mine = [b"a%d" % i for i in range(5)] + [b"b%d" % i for i in range(3)]
    got = _drain(r, sources)
    assert got == ([(m, h.addr) for m in mine] if sources else mine)
    assert other.recvfrom() == (b"for other", h.addr)
    assert remote.state()["counters"]["malformed_dropped"] == 1  # type: ignore[index]
    h.send_many([b"long message"] * 3)
    assert (r.recvfrom_many(2, 4) if sources else r.recv_many(2, 4)) == (
        [(b"long", h.addr)] * 2 if sources else [b"long"] * 2
    )
    assert _drain(r, sources) == ([(b"long message", h.addr)] if sources else [b"long message"])
    assert remote.state()["failure"] is None


def test_a_message_over_two_descriptors_goes_the_batch_way(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """A chain of two readable descriptors (a message cut in two, as rpmsg.protocol's "Chained buffers" allows)
    between plain ones: delivered whole and in order, and the look that found it (a chain, not one descriptor)
    leaves no error in the ring's state."""
    host, remote = pair
    h, r, _ = _connect(host, remote)
    h.send_many([b"before %d" % i for i in range(3)])
    core = host.core
    message = pack_header(h.addr, r.addr, 200) + bytes(range(200))
    first, second = core.tx.pool_take(), core.tx.pool_take()
    assert first is not None and second is not None
    core.memory.write(first, message[:40])
    core.memory.write(second, message[40:])
    core.tx.add([Buf(first, 40), Buf(second, len(message) - 40)], token=first)
    core.tx.publish()
    h.send_many([b"after %d" % i for i in range(3)])
    got = _drain(r, True)
    before, after = [b"before %d" % i for i in range(3)], [b"after %d" % i for i in range(3)]
    assert [m for m, _ in got] == [*before, bytes(range(200)), *after]
    vring1 = next(v for v in remote.state()["vrings"] if v["index"] == 1)  # type: ignore[union-attr]
    assert vring1["error"] is None and not vring1["broken"], vring1


def test_a_bad_descriptor_behind_good_messages_costs_none_of_them(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """A descriptor pointing outside memory behind three good messages: the three are returned (a look ahead
    at what comes next, to prefetch it, must not fail the ring early), then the broken ring is reported."""
    host, remote = pair
    h, r, _ = _connect(host, remote)
    h.send_many([b"good %d" % i for i in range(3)])
    h.send(b"bad")
    desc, _ = _last_posted(host)
    host.core.memory.write(desc, struct.pack("<Q", 0xFFFF_FF00))  # no memory there
    got = r.recvfrom_many(64)
    if len(got) < 3:  # the C receive's single message first: the rest next
        got += r.recvfrom_many(64)
    assert got == [(b"good %d" % i, h.addr) for i in range(3)]
    with pytest.raises(PeerLost, match="vring 1"):
        r.recvfrom_many(64)
