"""The host's per-message C path (rpmsg/fastpath.py) where it differs in mechanics from the general path: a batch
mixing messages for several endpoints and the name service, timeouts, threads sharing the device, a peer that
breaks vring 0 while the C wait sleeps. Every test runs with both paths (conftest's ``host_path``)."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator

import pytest

from rpmsg import PeerLost, Profile, RpmsgDevice, RpmsgTimeout, WouldBlock, loopback_pair
from rpmsg.device import Endpoint, WaitMode

PROFILE = Profile(num=16, rx_count=16, tx_count=16)


@pytest.fixture(
    params=[
        ("block", False, False),
        ("spin", False, False),
        ("busy", False, False),
        ("block", True, False),
        ("spin", True, False),
        ("block", False, True),
        ("spin", True, True),
        ("busy", False, True),
    ],
    ids=[
        "block",
        "spin",
        "busy",
        "block-event-idx",
        "spin-event-idx",
        "block-eventfd",
        "spin-event-idx-eventfd",
        "busy-eventfd",
    ],
)
def pair(request: pytest.FixtureRequest, host_path: str) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    """eventfd: the doorbell the endpoints' C methods (rpmsg/csrc/endpoint*.c) work with."""
    wait: WaitMode = request.param[0]
    host, remote = loopback_pair(PROFILE, wait=wait, event_idx=request.param[1], eventfd=request.param[2])
    assert (host._fast is not None) == (host_path == "c-path")
    assert (remote._fast is not None) == (host_path == "c-path")
    assert host._gate.open == remote._gate.open == (host_path == "c-path" and request.param[2])
    yield host, remote
    remote.close()
    host.close()


def test_a_batch_for_several_endpoints_and_the_name_service(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    seen: list[tuple[str, int, bool]] = []
    host.on_channel(lambda name, addr, created: seen.append((name, addr, created)))
    a = host.endpoint(addr=0x500)
    b = host.endpoint(addr=0x501)
    r = remote.endpoint(addr=0x400, announce=False)
    # One batch in vring 0: for b, an announcement, for a, for b again, for nobody.
    r.sendto(b"b1", 0x501)
    remote.endpoint("late-channel", addr=0x401)
    r.sendto(b"a1", 0x500)
    r.sendto(b"b2", 0x501)
    r.sendto(b"nobody", 0x777)
    a.settimeout(5)
    b.settimeout(5)
    assert a.recvfrom() == (b"a1", 0x400)
    assert seen == [("late-channel", 0x401, True)]
    assert host.channels() == {"late-channel": 0x401}
    assert [b.recv(), b.recv()] == [b"b1", b"b2"]
    a.settimeout(0)
    with pytest.raises(WouldBlock):
        a.recv()


def test_recv_into_and_bufsize_truncate_like_a_socket(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    ep = host.endpoint(addr=0x500)
    r = remote.endpoint(addr=0x400, announce=False)
    ep.settimeout(5)
    r.sendto(b"0123456789", 0x500)
    assert ep.recv(4) == b"0123"
    r.sendto(b"abcdef", 0x500)
    buf = bytearray(3)
    assert ep.recv_into(buf) == 3 and buf == b"abc"
    r.sendto(b"xyz", 0x500)
    buf = bytearray(8)
    assert ep.recv_into(buf, 2) == 2 and buf[:2] == b"xy"


def test_a_timeout_is_waited_once(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, _ = pair
    ep = host.endpoint(addr=0x500)
    ep.settimeout(0.3)
    for receive in (ep.recv, ep.recvfrom, lambda: ep.recv_into(bytearray(8))):
        start = time.monotonic()
        with pytest.raises(RpmsgTimeout):
            receive()
        took = time.monotonic() - start
        assert 0.29 <= took < 0.55, took  # not twice: the C path hands its deadline to the general one


def test_threads_share_the_device(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    a = host.endpoint(addr=0x500)
    b = host.endpoint(addr=0x501)
    a.settimeout(10)
    b.settimeout(10)
    r = remote.endpoint(addr=0x400, announce=False)
    r.settimeout(10)
    got: list[bytes] = []
    waiter = threading.Thread(target=lambda: got.extend(a.recv() for _ in range(50)))
    waiter.start()
    time.sleep(0.05)  # the waiter owns the doorbell now
    for i in range(50):
        b.sendto(f"ping {i}".encode(), 0x400)
        assert r.recvfrom() == (f"ping {i}".encode(), 0x501)
        r.sendto(f"to b {i}".encode(), 0x501)
        r.sendto(f"to a {i}".encode(), 0x500)
        assert b.recv() == f"to b {i}".encode()
    waiter.join(10)
    assert not waiter.is_alive()
    assert got == [f"to a {i}".encode() for i in range(50)]


def _break_while_asleep(ep: Endpoint, peer: RpmsgDevice, index_at: int, queue: int) -> BaseException:
    """Let ``ep`` sleep in recv, then make ``peer`` move the ring index at ``index_at`` by 100 (more entries than
    the ring holds) and kick ``queue``; what the sleeper raised."""
    ep.settimeout(10)
    errors: list[BaseException] = []

    def receive() -> None:
        try:
            ep.recv()
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=receive)
    waiter.start()
    time.sleep(0.05)
    memory = peer.core.memory
    (idx,) = struct.unpack("<H", memory.read(index_at, 2))
    memory.write(index_at, struct.pack("<H", (idx + 100) & 0xFFFF))
    peer.doorbell.notify(queue)
    waiter.join(10)
    assert not waiter.is_alive()
    assert len(errors) == 1, errors
    return errors[0]


def test_a_peer_breaking_vring_0_while_the_host_sleeps(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    ep = host.endpoint(addr=0x500)
    error = _break_while_asleep(ep, remote, PROFILE.rx_layout.used + 2, 0)  # a hostile used.idx
    assert isinstance(error, PeerLost) and "vring 0" in str(error), error
    with pytest.raises(PeerLost):
        ep.recv()


def test_the_remote_role_takes_a_batch_for_several_endpoints(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    a = remote.endpoint(addr=0x400, announce=False)
    b = remote.endpoint(addr=0x401, announce=False)
    h = host.endpoint(addr=0x500)
    for data, dst in ((b"b1", 0x401), (b"a1", 0x400), (b"b2", 0x401), (b"nobody", 0x777)):
        h.sendto(data, dst)
    a.settimeout(5)
    b.settimeout(5)
    assert a.recvfrom() == (b"a1", 0x500)
    assert [b.recv(), b.recv()] == [b"b1", b"b2"]
    # every host buffer came back (a sender that waits for them would hang otherwise)
    for i in range(3 * PROFILE.tx_count):
        h.sendto(i.to_bytes(4, "little"), 0x400)
        assert a.recv() == i.to_bytes(4, "little")


def test_a_host_breaking_vring_1_while_the_remote_sleeps(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    host, remote = pair
    ep = remote.endpoint(addr=0x400, announce=False)
    error = _break_while_asleep(ep, host, PROFILE.tx_layout.avail + 2, 1)  # a hostile avail.idx
    assert isinstance(error, PeerLost) and "vring 1" in str(error), error
