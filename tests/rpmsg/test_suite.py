"""Host-side behaviour, identical over loop:// and across two processes over shared memory."""

from __future__ import annotations

import asyncio
import selectors
import struct
import threading
import time
from array import array

import pytest

from rpmsg import PeerLost, RpmsgTimeout, WouldBlock
from tests.rpmsg.conftest import HostSide

SERVICES = {"rpmsg-echo", "rpmsg-sink", "rpmsg-source", "rpmsg-ctl"}


def test_name_service_announces_every_channel(host: HostSide) -> None:
    for name in SERVICES:
        host.device.wait_for_channel(name, timeout=10)
    assert set(host.device.channels()) == SERVICES
    assert all(addr >= 1024 for addr in host.device.channels().values())


def test_an_empty_message_crosses(host: HostSide) -> None:
    """Sizes 1..496, the echo's source and 497 refused: the catalogue's echo-every-size and max-size-and-one-over
    in tests/conformance/test_shared_suite.py, over every transport and both paths; 0 bytes only here."""
    with host.device.open("rpmsg-echo", timeout=10) as ep:
        ep.settimeout(10)
        ep.send(b"")
        data, src = ep.recvfrom()
        assert data == b"" and src == ep.peer


def test_burst_that_fills_the_ring_keeps_order(host: HostSide) -> None:
    """3,000 messages without waiting: more than the 256 send buffers, so the host recycles them many times
    and waits for the remote whenever all are in flight."""
    with host.device.open("rpmsg-sink", timeout=10) as ep:
        ep.settimeout(20)
        for i in range(3000):
            ep.send(struct.pack("<I", i) + bytes(60))
        ep.send(b"report")
        assert ep.recv() == b"3000 ok"


def test_remote_stream_received_in_order(host: HostSide) -> None:
    with host.device.open("rpmsg-source", timeout=10) as ep:
        ep.settimeout(20)
        ep.send(b"5000 100")
        for i in range(5000):
            data = ep.recv()
            assert len(data) == 100 and struct.unpack_from("<I", data)[0] == i
            assert data[4:] == bytes((i & 0xFF,)) * 96


def test_remote_stream_received_in_batches_into_one_buffer(host: HostSide) -> None:
    """recv_many_into (recvmmsg's shape): the stream in order, each message in its slot, over every transport."""
    with host.device.open("rpmsg-source", timeout=10) as ep:
        ep.settimeout(20)
        ep.send(b"5000 100")
        buf, sizes = bytearray(32 * 128), array("I", bytes(4 * 32))
        i = 0
        while i < 5000:
            n = ep.recv_many_into(buf, sizes, 128)
            for k in range(n):
                data = buf[k * 128 : k * 128 + sizes[k]]
                assert len(data) == 100 and struct.unpack_from("<I", data)[0] == i
                assert data[4:] == bytes((i & 0xFF,)) * 96
                i += 1


def test_zero_copy_send_and_receive(host: HostSide) -> None:
    with host.device.open("rpmsg-echo", timeout=10, zero_copy=True) as ep:
        ep.settimeout(10)
        buf = ep.get_buffer()
        assert buf.capacity == 496
        buf.view[:5] = b"hello"
        ep.send_buffer(buf, 5)
        with pytest.raises(ValueError):
            buf.view[0] = 1  # the buffer belongs to the remote now
        msg = ep.recv_message()
        assert isinstance(msg.payload, memoryview) and msg.payload.readonly
        assert bytes(msg.payload) == b"hello"
        msg.release()
        with pytest.raises(ValueError):
            bytes(msg.payload)  # released: the buffer may already carry another message
        for i in range(600):  # more than the 256 receive buffers: releases really recycle them
            ep.send(i.to_bytes(4, "little"))
            with ep.recv_message() as m:
                assert int.from_bytes(m.payload, "little") == i


def test_channel_callbacks_on_create_and_destroy(host: HostSide) -> None:
    seen: list[tuple[str, bool]] = []
    changed = threading.Event()

    def on_channel(name: str, addr: int, created: bool) -> None:
        if name == "dyn-1":
            seen.append((name, created))
            changed.set()

    host.device.on_channel(on_channel)
    with host.device.open("rpmsg-ctl", timeout=10) as ctl:
        ctl.settimeout(10)
        ctl.send(b"create dyn-1")
        assert ctl.recv() == b"done"
        with host.device.open("dyn-1", timeout=10) as dyn:
            dyn.settimeout(10)
            dyn.send(b"hi")
            assert dyn.recv() == b"hi"
        ctl.send(b"destroy dyn-1")
        assert ctl.recv() == b"done"
        deadline = time.monotonic() + 10
        while ("dyn-1", False) not in seen and time.monotonic() < deadline:
            host.device.process()
            time.sleep(0.01)
    assert seen == [("dyn-1", True), ("dyn-1", False)]
    assert "dyn-1" not in host.device.channels()


def test_timeouts_and_non_blocking(host: HostSide) -> None:
    with host.device.open("rpmsg-echo", timeout=10) as ep:
        ep.settimeout(0.05)
        start = time.monotonic()
        with pytest.raises(RpmsgTimeout):
            ep.recv()
        assert 0.04 < time.monotonic() - start < 2
        ep.setblocking(False)
        with pytest.raises(WouldBlock):
            ep.recv()
        assert ep.gettimeout() == 0.0


def test_selectors(host: HostSide) -> None:
    with host.device.open("rpmsg-echo", timeout=10) as ep, selectors.DefaultSelector() as sel:
        sel.register(ep, selectors.EVENT_READ)
        assert sel.select(timeout=0.05) == []
        ep.send(b"ready?")
        events = sel.select(timeout=10)
        assert [key.fileobj for key, _ in events] == [ep]
        ep.setblocking(False)
        assert ep.recv() == b"ready?"
        assert sel.select(timeout=0.05) == []


def test_asyncio(host: HostSide) -> None:
    async def main() -> list[bytes]:
        with host.device.open("rpmsg-echo", timeout=10) as ep:
            out = []
            for word in (b"one", b"two", b"three"):
                ep.send(word)
                out.append(await asyncio.wait_for(ep.recv_async(), 10))
            return out

    assert asyncio.run(main()) == [b"one", b"two", b"three"]


def test_peer_death_is_reported_not_hung(host: HostSide) -> None:
    with host.device.open("rpmsg-echo", timeout=10) as ep:
        ep.settimeout(30)
        ep.send(b"alive?")
        assert ep.recv() == b"alive?"
        host.kill()
        start = time.monotonic()
        with pytest.raises(PeerLost):
            for _ in range(10_000):  # the remote is gone: sends fill the ring, receives get nothing
                ep.send(b"x")
        assert time.monotonic() - start < 5
        with pytest.raises(PeerLost):
            ep.recv()
