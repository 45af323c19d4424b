"""Ring rules seen from the rpmsg device, both roles, every wait mode, the C path and the Python path (conftest's
``host_path``): a used id returned twice in one batch, a peer that breaks the ring this side sends on, a buffer
that shrinks while it is copied, and the 16-bit length of the rpmsg header."""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import virtio.backend
from rpmsg import MessageTooLong, PeerLost, Profile, RpmsgDevice, WouldBlock, loopback_pair
from rpmsg.device import Endpoint, WaitMode
from rpmsg.protocol import MAX_PAYLOAD

PROFILE = Profile(num=16, rx_count=16, tx_count=16)


@pytest.fixture(
    params=[
        ("block", False, False),
        ("spin", False, False),
        ("busy", False, False),
        ("block", True, True),
        ("spin", False, True),
        ("busy", True, True),
    ],
    ids=["block", "spin", "busy", "block-event-idx-eventfd", "spin-eventfd", "busy-event-idx-eventfd"],
)
def pair(request: pytest.FixtureRequest, host_path: str) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    """eventfd: the doorbell the endpoints' C methods (rpmsg/csrc/endpoint*.c) work with."""
    wait: WaitMode = request.param[0]
    host, remote = loopback_pair(PROFILE, wait=wait, event_idx=request.param[1], eventfd=request.param[2])
    assert (host._fast is not None) == (remote._fast is not None) == (host_path == "c-path")
    yield host, remote
    remote.close()
    host.close()


def _u16(device: RpmsgDevice, at: int) -> int:
    (value,) = struct.unpack("<H", device.core.memory.read(at, 2))
    return int(value)


def test_a_used_id_returned_twice_in_one_batch(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """The remote returns the buffer of its one message twice (a second used entry with the same id). The host
    delivers the message once, then reports the broken ring; it never posts the buffer twice (which ran the
    remote's avail index past the ring)."""
    host, remote = pair
    a = host.endpoint(addr=0x500)
    r = remote.endpoint(addr=0x400, announce=False)
    r.sendto(b"once", a.addr)
    lay = PROFILE.rx_layout
    idx = _u16(remote, lay.used + 2)
    entry = remote.core.memory.read(lay.used + 4 + (idx - 1) % PROFILE.num * 8, 8)
    remote.core.memory.write(lay.used + 4 + idx % PROFILE.num * 8, entry)
    remote.core.memory.write(lay.used + 2, struct.pack("<H", idx + 1))
    avail = _u16(host, lay.avail + 2)
    a.settimeout(5)
    assert a.recvfrom() == (b"once", 0x400)
    with pytest.raises(PeerLost, match=r"vring 0.*BAD_USED_ID"):
        a.recv()
    assert host.failure is not None
    assert (_u16(host, lay.avail + 2) - avail) & 0xFFFF <= 1  # the buffer was not posted twice
    with pytest.raises(PeerLost):
        a.sendto(b"after", r.addr)


def _fill(ep: Endpoint, dst: int) -> int:
    """Send until no buffer is free (the peer does not read); how many went."""
    ep.settimeout(0)
    sent = 0
    with pytest.raises(WouldBlock):
        while True:
            ep.sendto(b"fill", dst)
            sent += 1
    return sent


def _receive_in_thread(ep: Endpoint) -> tuple[threading.Thread, list[BaseException]]:
    """A thread blocked in ``ep.recv()`` (no timeout); what it raised."""
    ep.settimeout(None)
    errors: list[BaseException] = []

    def receive() -> None:
        try:
            ep.recv()
        except BaseException as exc:
            errors.append(exc)

    waiter = threading.Thread(target=receive, daemon=True)
    waiter.start()
    time.sleep(0.05)
    return waiter, errors


def _device_is_lost(device: RpmsgDevice, ep: Endpoint, other: Endpoint, peer_addr: int, ring: str) -> None:
    """After the breaking send: every call raises PeerLost, a thread that was receiving too; close() is quiet."""
    assert device.failure is not None and ring in str(device.failure)
    other.settimeout(1)
    for call in (
        lambda: ep.sendto(b"again", peer_addr),
        ep.recv,
        other.recv,
        lambda: device.endpoint(addr=0x600),
        lambda: device.wait_for_channel("anything", timeout=1),
        device.process,
    ):
        with pytest.raises(PeerLost, match=ring):
            call()
    device.close()  # announced endpoints are not withdrawn over a broken ring, and nothing raises


def test_a_remote_breaking_the_hosts_send_ring_fails_the_device(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """The remote jumps vring 1's used index: the send that finds it raises PeerLost, and so does every call
    after it, in either path and wait mode; a thread receiving meanwhile is woken with it; close() is quiet."""
    host, remote = pair
    r = remote.endpoint(addr=0x400, announce=False)
    h = host.endpoint("h-svc", addr=0x500, announce=True)
    other = host.endpoint(addr=0x501)
    assert _fill(h, r.addr) >= 1
    waiter, errors = _receive_in_thread(other)
    used_idx = PROFILE.tx_layout.used + 2
    remote.core.memory.write(used_idx, struct.pack("<H", (_u16(remote, used_idx) + 100) & 0xFFFF))
    h.settimeout(1)
    with pytest.raises(PeerLost, match=r"vring 1.*USED_JUMP"):
        h.sendto(b"reclaims", r.addr)
    waiter.join(5)
    assert not waiter.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], PeerLost), errors
    with pytest.raises(PeerLost, match="vring 1"):
        host.get_buffer(timeout=1)
    _device_is_lost(host, h, other, r.addr, "vring 1")


def test_a_host_breaking_the_remotes_send_ring_fails_the_device(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    """The same for the remote role: the host jumps vring 0's avail index (the ring the remote sends on)."""
    host, remote = pair
    h = host.endpoint(addr=0x500)
    r = remote.endpoint("r-svc", addr=0x400)  # announced: close() would withdraw it
    other = remote.endpoint(addr=0x401, announce=False)
    waiter, errors = _receive_in_thread(other)
    avail_idx = PROFILE.rx_layout.avail + 2
    host.core.memory.write(avail_idx, struct.pack("<H", (_u16(host, avail_idx) + 100) & 0xFFFF))
    r.settimeout(1)
    with pytest.raises(PeerLost, match=r"vring 0.*AVAIL_JUMP"):
        r.sendto(b"to the host", h.addr)
    waiter.join(5)
    assert not waiter.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], PeerLost), errors
    _device_is_lost(remote, r, other, h.addr, "vring 0")


BIG = Profile(num=4, rx_count=4, tx_count=4, rx_size=0x20000, tx_size=0x20000)


@pytest.mark.parametrize("wait", ["block", "busy"])
@pytest.mark.parametrize("eventfd", [False, True])
def test_the_header_len_caps_a_payload_at_0xffff(wait: WaitMode, eventfd: bool) -> None:
    """Buffers of 128 KiB: a payload still cannot exceed the rpmsg header's u16 len. 70,000 bytes raise
    MessageTooLong (limit 0xFFFF) from either role and path; 0xFFFF bytes go through both ways."""
    host, remote = loopback_pair(BIG, wait=wait, eventfd=eventfd)
    try:
        h = host.endpoint(addr=0x500)
        r = remote.endpoint(addr=0x400, announce=False)
        for ep, dst in ((h, r.addr), (r, h.addr)):
            with pytest.raises(MessageTooLong) as err:
                ep.sendto(bytes(70_000), dst)
            assert (err.value.size, err.value.limit) == (70_000, MAX_PAYLOAD)
        assert MAX_PAYLOAD == 0xFFFF
        for ep in (h, r):
            ep.settimeout(5)
        big = bytes(range(256)) * 255 + bytes(range(255))
        assert len(big) == MAX_PAYLOAD
        h.sendto(big, r.addr)
        assert r.recvfrom() == (big, h.addr)
        r.sendto(big, h.addr)
        assert h.recvfrom() == (big, r.addr)
        buf = host.get_buffer(timeout=1)  # zero-copy: the buffer offers 0xFFFF bytes, not its 128 KiB
        assert buf.capacity == len(buf.view) == MAX_PAYLOAD
        with pytest.raises(MessageTooLong):
            host.send_buffer(buf, h.addr, r.addr, MAX_PAYLOAD + 1)
    finally:
        remote.close()
        host.close()


def test_a_host_buffer_shrunk_while_the_remote_copies_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host shortens a send buffer's descriptor after the remote measured it and before it copied it: the
    remote reported the measured length, so the message was delivered with the end of an older one in it. Now
    the ring is reported broken. On the Python engine (which can be stopped between the two passes; the C engine
    is driven there in tests/virtio/test_hostile.py), so neither role has the C path here."""
    monkeypatch.setattr(virtio.backend, "ACTIVE", "python")
    host, remote = loopback_pair(PROFILE)
    try:
        assert host._fast is None and remote._fast is None
        h = host.endpoint(addr=0x500)
        r = remote.endpoint(addr=0x400, announce=False)
        r.settimeout(5)
        h.sendto(b"an older message, left in the batch buffer", r.addr)
        assert r.recv() == b"an older message, left in the batch buffer"
        ring: Any = remote.core.from_host._ring  # type: ignore[union-attr]
        walk = ring._walk
        desc = PROFILE.tx_layout.desc

        def measure_then_shrink(head: int, max_descs: int | None) -> Any:
            measured = walk(head, max_descs)
            host.core.memory.write(desc + 16 * head + 8, struct.pack("<I", 20))  # header + 4 bytes
            return measured

        ring._walk = measure_then_shrink
        h.sendto(b"new!" + bytes(30), r.addr)
        with pytest.raises(PeerLost, match=r"vring 1.*USED_LEN"):
            r.recv()
    finally:
        remote.close()
        host.close()
