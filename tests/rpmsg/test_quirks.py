"""Peers that behave like other stacks do in the wild, each named after the stack it models."""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Iterator

import pytest

from rpmsg import MessageTooLong, PeerLost, Profile, RemoteCore, RpmsgDevice, loopback_pair
from rpmsg.core import Event
from rpmsg.protocol import HEADER_SIZE, NS_ADDR, TX_VRING, pack_ns
from transports.loop import loop_pair


def pair_with(remote_cls: type[RemoteCore], profile: Profile | None = None) -> tuple[RpmsgDevice, RpmsgDevice]:
    p = profile or Profile(num=16, rx_count=16, tx_count=16)
    h, r = loop_pair(p.size)
    host = RpmsgDevice(p.host_core(h.memory), h.doorbell)
    host.start()
    return host, RpmsgDevice(remote_cls(r.memory, p.rx_layout, p.tx_layout), r.doorbell)


class WholeBufferUsedLen(RemoteCore):
    """OpenAMP and RPMsg-Lite report the whole buffer as used.len, not 16 + payload."""

    def send(self, src: int, dst: int, payload: bytes | bytearray | memoryview) -> None:
        chain = self._take_rx_buffer()
        buf = chain.descs[0]
        self.memory.write(buf.addr, struct.pack("<IIIHH", src, dst, 0, len(payload), 0) + bytes(payload))
        self.to_host.push(chain.head, buf.len)
        self._note(self.to_host.publish())


class NeverKicksAfterConsuming(RemoteCore):
    """RPMsg-Lite without RL_ALLOW_CONSUMED_BUFFERS_NOTIFICATION: returns TX buffers, never kicks for it."""

    def poll(self, **kwargs: object) -> list[Event]:
        events = super().poll(**kwargs)  # type: ignore[arg-type]
        self.intents.discard(TX_VRING)
        return events


@pytest.fixture
def closing() -> Iterator[list[RpmsgDevice]]:
    devices: list[RpmsgDevice] = []
    yield devices
    for d in devices:
        d.close()


def test_openamp_whole_buffer_used_len(closing: list[RpmsgDevice]) -> None:
    host, remote = pair_with(WholeBufferUsedLen)
    closing += [host, remote]
    src = remote.endpoint("svc")
    ep = host.open("svc", timeout=1)
    ep.settimeout(1)
    for size in (0, 1, 17, 496):
        src.sendto(b"z" * size, ep.addr)
        assert ep.recv() == b"z" * size  # length from hdr.len, used.len only an upper bound


def test_rpmsg_lite_never_kicks_after_consuming(closing: list[RpmsgDevice]) -> None:
    host, remote = pair_with(NeverKicksAfterConsuming)
    closing += [host, remote]
    sink = remote.endpoint("sink")
    ep = host.open("sink", timeout=1)
    ep.settimeout(10)
    got: list[int] = []

    def drain() -> None:
        sink.settimeout(10)
        while len(got) < 200:
            got.append(struct.unpack("<I", sink.recv())[0])

    t = threading.Thread(target=drain)
    t.start()
    start = time.monotonic()
    for i in range(200):  # 12x the 16 send buffers: each reuse needs the returned-but-not-kicked buffers
        ep.send(struct.pack("<I", i))
    t.join(20)
    assert got == list(range(200))
    assert time.monotonic() - start < 10  # Linux would block 15 s per wait here


def test_rpmsg_lite_low_endpoint_addresses(closing: list[RpmsgDevice]) -> None:
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16))
    closing += [host, remote]
    low = remote.endpoint("rpmsg-lite-svc", addr=1)
    assert host.wait_for_channel("rpmsg-lite-svc", timeout=1) == 1
    ep = host.open("rpmsg-lite-svc", timeout=1)
    ep.settimeout(1)
    ep.send(b"hi")
    data, src = low.recvfrom()
    assert (data, src) == (b"hi", ep.addr)
    low.sendto(b"back", src)
    assert ep.recvfrom() == (b"back", 1)


def test_openamp_garbage_after_nul_in_name_service(closing: list[RpmsgDevice]) -> None:
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16))
    closing += [host, remote]
    raw = bytearray(pack_ns("demo", 0x400))
    raw[5:32] = b"\xee" * 27
    remote.send(0x400, NS_ADDR, bytes(raw), timeout=1)
    assert host.wait_for_channel("demo", timeout=1) == 0x400


def test_per_direction_buffer_sizes(closing: list[RpmsgDevice]) -> None:
    """OpenAMP sizes each direction on its own; Linux uses 512 both ways."""
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16, rx_size=128, tx_size=1024))
    closing += [host, remote]
    svc = remote.endpoint("svc")
    ep = host.open("svc", timeout=1)
    ep.settimeout(1)
    svc.settimeout(1)
    ep.send(b"a" * 1008)
    data, src = svc.recvfrom()
    assert len(data) == 1008
    with pytest.raises(MessageTooLong) as err:
        ep.send(b"a" * 1009)
    assert err.value.limit == 1008
    with pytest.raises(MessageTooLong) as err:
        svc.sendto(b"b" * 113, src)  # the host's receive buffers are 128 bytes
    assert err.value.limit == 128 - HEADER_SIZE
    svc.sendto(b"b" * 112, src)  # the refused buffer is kept and used for the next send
    assert ep.recv() == b"b" * 112


def test_malformed_messages_are_dropped_and_their_buffers_kept(closing: list[RpmsgDevice]) -> None:
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16))
    closing += [host, remote]
    svc = remote.endpoint("svc")
    ep = host.open("svc", timeout=1)
    ep.settimeout(1)
    core = remote.core
    assert isinstance(core, RemoteCore)
    for _ in range(40):  # more than the 16 receive buffers: dropping must give them back
        chain = core._take_rx_buffer()
        core.memory.write(chain.descs[0].addr, struct.pack("<IIIHH", 5, ep.addr, 0, 9999, 0))
        core.to_host.push(chain.head, 512)
        core._note(core.to_host.publish())
        remote._flush()
        host.process()
    assert host.core.dropped == 40
    svc.sendto(b"still fine", ep.addr)
    assert ep.recv() == b"still fine"


def test_remote_side_zero_copy_receive(closing: list[RpmsgDevice]) -> None:
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16))
    closing += [host, remote]
    svc = remote.endpoint("svc", zero_copy=True)
    svc.settimeout(1)
    ep = host.open("svc", timeout=1)
    ep.settimeout(1)
    for i in range(50):  # 3x the host's send buffers: each release returns one
        ep.send(bytes([i]) * 100)
        with svc.recv_message() as msg:
            assert bytes(msg.payload) == bytes([i]) * 100


def test_peer_loss_counts_what_the_peer_took(closing: list[RpmsgDevice]) -> None:
    """Messages accepted by send() whose buffers never came back are reported with the loss, not dropped
    silently: here the remote reads 3 of 10 and dies."""
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16))
    closing.append(host)
    svc = remote.endpoint("svc")
    ep = host.open("svc", timeout=1)
    for i in range(10):
        ep.send(bytes([i]))
    svc.settimeout(1)
    assert [svc.recv() for _ in range(3)] == [b"\x00", b"\x01", b"\x02"]
    # the remote's poll took all 10 from the ring at once (3 read so far): they were all handed over
    remote.close()
    with pytest.raises(PeerLost) as lost:
        ep.recv()
    assert lost.value.unconfirmed == 0


def test_peer_loss_counts_unread_buffers(closing: list[RpmsgDevice]) -> None:
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16))
    closing.append(host)
    remote.endpoint("svc")
    ep = host.open("svc", timeout=1)
    for i in range(7):
        ep.send(bytes([i]))  # the remote never polls again: 7 buffers out
    remote.close()
    with pytest.raises(PeerLost) as lost:
        ep.recv()
    assert lost.value.unconfirmed == 7
    assert "7 sent message(s) unconfirmed" in str(lost.value)


def test_what_the_peer_sent_before_leaving_is_still_delivered(closing: list[RpmsgDevice]) -> None:
    """A remote that answers and exits at once: the host's next kick finds the doorbell gone, but the answer is
    in the rings and must be received before the loss is reported (nothing acknowledged is lost)."""
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16))
    closing.append(host)
    served = remote.endpoint("svc")
    ep = host.open("svc", timeout=1)
    ep.settimeout(1)
    ep.send(b"question")
    served.settimeout(1)
    question, src = served.recvfrom()
    assert question == b"question"
    served.sendto(b"answer", src)
    remote.close()
    with pytest.raises(PeerLost):
        for _ in range(3):
            ep.send(b"are you there")  # a kick to a closed doorbell: the device is lost
    assert ep.recv() == b"answer"
    with pytest.raises(PeerLost):
        ep.recv()


def test_a_flood_of_malformed_messages_is_counted_exactly_and_logged_rarely(
    closing: list[RpmsgDevice], caplog: pytest.LogCaptureFixture
) -> None:
    """1,000 malformed messages: all counted, warnings only at the 1st, 2nd, 4th, ... 512th (10 lines)."""
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16))
    closing += [host, remote]
    remote.endpoint("svc")
    ep = host.open("svc", timeout=1)
    core = remote.core
    assert isinstance(core, RemoteCore)
    caplog.set_level(logging.WARNING, logger="rpmsg")
    for _ in range(1000):
        chain = core._take_rx_buffer()
        core.memory.write(chain.descs[0].addr, struct.pack("<IIIHH", 5, ep.addr, 0, 9999, 0))
        core.to_host.push(chain.head, 512)
        core._note(core.to_host.publish())
        remote._flush()
        host.process()
    assert host.core.dropped == 1000
    warnings = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert len(warnings) == 10 and "(512 so far)" in warnings[-1], warnings
