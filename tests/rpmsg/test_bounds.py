"""What a hostile peer can make this side keep in memory, and what its name service can change (issue 17).

A peer floods through the real rings of a loopback pair: name-service announcements of unique names, and
messages to an endpoint the application never reads. The victim takes them in the way an application does (a
non-blocking ``recv`` on another endpoint), so the C paths deliver what they hand over exactly as they do in
use: ``eventfd`` pairs use the endpoints' C methods (rpmsg/csrc/endpoint*.c), the others the device's C path
(rpmsg/fastpath.py); every test also runs on the general Python path (conftest's ``host_path``). Each test runs
with the remote attacking the host and the host attacking the remote. Memory is measured with tracemalloc
(Python allocations), never with time.
"""

from __future__ import annotations

import logging
import tracemalloc
from collections.abc import Iterable, Iterator

import pytest

from rpmsg import Limits, LocalProtocolError, Profile, RpmsgDevice, WouldBlock, loopback_pair
from rpmsg.device import Endpoint
from rpmsg.protocol import ADDR_ANY, NS_ADDR, pack_ns

PROFILE = Profile(num=64, rx_count=64, tx_count=64)
FLOOD = 100_000


@pytest.fixture(
    params=[("remote", False), ("remote", True), ("host", False), ("host", True)],
    ids=["remote-attacks", "remote-attacks-eventfd", "host-attacks", "host-attacks-eventfd"],
)
def sides(request: pytest.FixtureRequest) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    """(attacker, victim) over one loopback pair."""
    attacker_role, eventfd = request.param
    host, remote = loopback_pair(PROFILE, wait="busy", eventfd=eventfd)
    yield (remote, host) if attacker_role == "remote" else (host, remote)
    remote.close()
    host.close()


def _drain(probe: Endpoint) -> list[bytes]:
    """What an application's non-blocking receive on ``probe`` does: take in everything waiting in the rings
    (delivering what is not ``probe``'s to its endpoints and the registry) and return ``probe``'s messages."""
    got = []
    while True:
        try:
            got.append(probe.recv())
        except WouldBlock:
            return got


def _flood(attacker: Endpoint, probe: Endpoint, messages: Iterable[tuple[bytes, int]]) -> list[bytes]:
    """Send every (data, dst) from ``attacker`` as fast as buffers allow, the victim draining through
    ``probe`` whenever the rings are full; returns what ``probe`` received."""
    attacker.settimeout(0)
    probe.settimeout(0)
    got = []
    for data, dst in messages:
        while True:
            try:
                attacker.sendto(data, dst)
                break
            except WouldBlock:
                got += _drain(probe)
                attacker.device.process()  # the attacker takes back its buffers (host) / sees re-posted ones
    got += _drain(probe)
    return got


def _traced(run: object) -> int:
    """Bytes still allocated (tracemalloc) after ``run()`` that were not before."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        run()  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()


# --- the channel registry ----------------------------------------------------------------------------------------
def test_a_flood_of_unique_announcements_is_bounded_and_memory_stays_flat(
    sides: tuple[RpmsgDevice, RpmsgDevice], caplog: pytest.LogCaptureFixture
) -> None:
    attacker_dev, victim = sides
    attacker = attacker_dev.endpoint(addr=0x400, announce=False)
    probe = victim.endpoint(addr=0x500)
    created: list[str] = []
    victim.on_channel(lambda name, addr, was_created: created.append(name))
    # Warm up (the registry's first entries, logging's caches), then measure the rest of the flood.
    _flood(attacker, probe, ((pack_ns(f"warm-{i}", 0x1000 + i), NS_ADDR) for i in range(2000)))
    caplog.set_level(logging.WARNING, logger="rpmsg.device")
    grown = _traced(
        lambda: _flood(attacker, probe, ((pack_ns(f"n-{i}", 0x1000 + i % 50_000), NS_ADDR) for i in range(FLOOD)))
    )
    channels = victim.channels()
    assert len(channels) == 1024  # Limits().channels: 102,000 without a bound
    assert grown < 1 << 20, f"{grown} bytes still held after {FLOOD} announcements"
    assert victim.ns_refused == 2000 + FLOOD - 1024
    assert len(created) == 1024  # no callback for a refused announcement
    assert sorted(channels) == sorted(created)
    warnings = [r for r in caplog.records if "refused create" in r.getMessage()]
    assert 1 <= len(warnings) <= 20  # rate-limited: at counts 1, 2, 4, 8, ...
    assert "limits.channels" in warnings[-1].getMessage()


def test_a_destroy_makes_room_and_a_smaller_limit_is_a_setting(sides: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    attacker_dev, victim = sides
    victim.limits = Limits(channels=3)
    attacker = attacker_dev.endpoint(addr=0x400, announce=False)
    probe = victim.endpoint(addr=0x500)
    _flood(attacker, probe, ((pack_ns(f"c{i}", 0x600 + i), NS_ADDR) for i in range(5)))
    assert victim.channels() == {"c0": 0x600, "c1": 0x601, "c2": 0x602}
    assert victim.ns_refused == 2
    # A known name re-announced needs no room; a destroy makes some for a new name.
    _flood(attacker, probe, [(pack_ns("c1", 0x611), NS_ADDR), (pack_ns("c0", 0x600, destroy=True), NS_ADDR)])
    _flood(attacker, probe, [(pack_ns("c9", 0x609), NS_ADDR), (pack_ns("c8", 0x608), NS_ADDR)])
    assert victim.channels() == {"c1": 0x611, "c2": 0x602, "c9": 0x609}
    assert victim.ns_refused == 3


def test_an_announcement_cannot_point_a_channel_at_the_name_service_or_no_address(
    sides: tuple[RpmsgDevice, RpmsgDevice], caplog: pytest.LogCaptureFixture
) -> None:
    attacker_dev, victim = sides
    attacker = attacker_dev.endpoint(addr=0x400, announce=False)
    probe = victim.endpoint(addr=0x500)
    events: list[tuple[str, int, bool]] = []
    victim.on_channel(lambda name, addr, created: events.append((name, addr, created)))
    _flood(attacker, probe, [(pack_ns("svc", 0x400), NS_ADDR)])
    assert victim.channels() == {"svc": 0x400}
    caplog.set_level(logging.WARNING, logger="rpmsg.device")
    hostile = [
        (pack_ns("svc", NS_ADDR), NS_ADDR),
        (pack_ns("svc", ADDR_ANY), NS_ADDR),
        (pack_ns("new", NS_ADDR), NS_ADDR),
        (pack_ns("new", ADDR_ANY), NS_ADDR),
        (pack_ns("svc", NS_ADDR, destroy=True), NS_ADDR),
    ]
    _flood(attacker, probe, hostile)
    assert victim.channels() == {"svc": 0x400}  # not re-pointed at 0x35 or 0xffffffff, nothing new
    assert victim.ns_refused == 5
    assert events == [("svc", 0x400, True)]
    assert any("is the name service itself" in r.getMessage() for r in caplog.records)
    # What open() connects to is still the real channel.
    with victim.open("svc", timeout=0) as ep:
        assert ep.peer == 0x400


def test_a_valid_re_announcement_moves_the_channel_and_only_its_current_address_withdraws_it(
    sides: tuple[RpmsgDevice, RpmsgDevice],
) -> None:
    attacker_dev, victim = sides
    attacker = attacker_dev.endpoint(addr=0x400, announce=False)
    probe = victim.endpoint(addr=0x500)
    events: list[tuple[str, int, bool]] = []
    victim.on_channel(lambda name, addr, created: events.append((name, addr, created)))
    _flood(attacker, probe, [(pack_ns("svc", 0x400), NS_ADDR), (pack_ns("svc", 0x401), NS_ADDR)])
    assert victim.channels() == {"svc": 0x401}  # the newest announcement wins (OpenAMP re-points)
    _flood(attacker, probe, [(pack_ns("svc", 0x400, destroy=True), NS_ADDR)])  # the old address: not it
    assert victim.channels() == {"svc": 0x401}
    _flood(attacker, probe, [(pack_ns("svc", 0x401, destroy=True), NS_ADDR)])
    assert victim.channels() == {}
    assert events == [("svc", 0x400, True), ("svc", 0x401, True), ("svc", 0x401, False)]
    assert victim.ns_refused == 0


# --- endpoint receive queues -------------------------------------------------------------------------------------
def test_an_unread_endpoint_drops_and_counts_beyond_its_bound_and_the_others_still_receive(
    sides: tuple[RpmsgDevice, RpmsgDevice], caplog: pytest.LogCaptureFixture
) -> None:
    attacker_dev, victim = sides
    attacker = attacker_dev.endpoint(addr=0x400, announce=False)
    unread = victim.endpoint(addr=0x501)
    reader = victim.endpoint(addr=0x500)
    payload = bytes(100)

    def messages() -> Iterator[tuple[bytes, int]]:
        for i in range(FLOOD):
            yield payload, unread.addr
            if i % 10 == 0:
                yield b"%d" % i, reader.addr

    # Warm up to the bound (the queue full), then measure the rest of the flood.
    received = _flood(attacker, reader, ((payload, unread.addr) for _ in range(5000)))
    caplog.set_level(logging.WARNING, logger="rpmsg.device")
    grown = _traced(lambda: received.extend(_flood(attacker, reader, messages())))
    queued = len(unread._queue)
    assert queued == 4096  # Limits().queued: 105,000 without a bound
    assert grown < 1 << 20, f"{grown} bytes still held after {FLOOD} messages to an unread endpoint"
    assert unread.dropped == 5000 + FLOOD - 4096
    assert victim.queue_dropped == unread.dropped
    assert reader.dropped == 0
    assert received == [b"%d" % i for i in range(0, FLOOD, 10)]  # every one, in order
    warnings = [r for r in caplog.records if "receive queue full" in r.getMessage()]
    assert 1 <= len(warnings) <= 20
    # What was queued is still there, in order, and can be read.
    unread.settimeout(0)
    assert [unread.recv() for _ in range(queued)] == [payload] * queued
    with pytest.raises(WouldBlock):
        unread.recv()


def test_the_queue_bound_is_a_setting_per_device_and_per_endpoint_in_messages_and_bytes(
    sides: tuple[RpmsgDevice, RpmsgDevice],
) -> None:
    attacker_dev, victim = sides
    victim.limits = Limits(queued=100, queued_bytes=1 << 20)
    attacker = attacker_dev.endpoint(addr=0x400, announce=False)
    default = victim.endpoint(addr=0x501)
    few = victim.endpoint(addr=0x502, max_queued=10)
    small = victim.endpoint(addr=0x503, max_queued_bytes=250)
    probe = victim.endpoint(addr=0x500)
    _flood(attacker, probe, ((bytes([i]) * 100, ep.addr) for i in range(200) for ep in (default, few, small)))
    assert (len(default._queue), default.dropped) == (100, 100)
    assert (len(few._queue), few.dropped) == (10, 190)
    assert (len(small._queue), small.dropped) == (2, 198)  # 200 bytes held; a third would be 300
    assert victim.queue_dropped == 100 + 190 + 198
    # The oldest are kept (tail drop, as a datagram socket's full receive buffer).
    few.settimeout(0)
    assert [few.recv() for _ in range(10)] == [bytes([i]) * 100 for i in range(10)]
    # Reading makes room again.
    _flood(attacker, probe, [(b"after", few.addr)])
    assert few.recv() == b"after"
    assert few.dropped == 190
    # An empty queue takes any one message, whatever the byte bound.
    tiny = victim.endpoint(addr=0x504, max_queued_bytes=1)
    _flood(attacker, probe, [(bytes(200), tiny.addr), (b"x", tiny.addr)])
    assert (len(tiny._queue), tiny.dropped) == (1, 1)
    # A message for an address nobody bound is counted too.
    assert victim.unbound_dropped == 0
    _flood(attacker, probe, [(b"nobody", 0x777)])
    assert victim.unbound_dropped == 1


def test_zero_copy_messages_dropped_give_their_buffers_back(sides: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    attacker_dev, victim = sides
    attacker = attacker_dev.endpoint(addr=0x400, announce=False)
    held = victim.endpoint(addr=0x501, zero_copy=True, max_queued=4)
    probe = victim.endpoint(addr=0x500)
    # Far more messages than the ring has buffers: only the 4 queued ones keep theirs.
    got = _flood(attacker, probe, ((b"z%d" % i, held.addr) for i in range(3 * PROFILE.rx_count)))
    got += _flood(attacker, probe, [(b"still flowing", probe.addr)])
    assert got == [b"still flowing"]
    assert (len(held._queue), held.dropped) == (4, 3 * PROFILE.rx_count - 4)
    held.settimeout(0)
    for i in range(4):
        with held.recv_message() as msg:
            assert bytes(msg.payload) == b"z%d" % i


def test_bounds_refuse_nonsense() -> None:
    with pytest.raises(LocalProtocolError, match=r"Limits\.queued must be an int >= 1"):
        Limits(queued=0)
    with pytest.raises(LocalProtocolError, match="channels"):
        Limits(channels=-1)
    host, remote = loopback_pair(PROFILE)
    try:
        with pytest.raises(LocalProtocolError, match="max_queued must be"):
            host.endpoint(max_queued=0)
        with pytest.raises(LocalProtocolError, match="max_queued_bytes must be"):
            host.endpoint(max_queued_bytes=1.5)  # type: ignore[arg-type]
        ep = host.endpoint()
        with pytest.raises(LocalProtocolError, match="max_queued must be"):
            ep.max_queued = -3
        ep.max_queued = None
        with pytest.raises(LocalProtocolError, match=r"limits must be an rpmsg\.Limits"):
            host.limits = {"queued": 5}  # type: ignore[assignment]
        assert Profile(limits=Limits(channels=7)).limits.channels == 7
        h2, r2 = loopback_pair(Profile(num=16, rx_count=16, tx_count=16, limits=Limits(queued=9)))
        assert h2.limits.queued == r2.limits.queued == 9
        r2.close()
        h2.close()
    finally:
        remote.close()
        host.close()
