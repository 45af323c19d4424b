"""Endpoint.send_async / sendto_async: waiting for a free send buffer does not block the event loop; the
endpoint's timeout applies. Both roles, both per-message paths (conftest.py), both kinds of loop doorbell."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from rpmsg import Endpoint, LocalProtocolError, RpmsgDevice, RpmsgTimeout, WouldBlock, loopback_pair


@pytest.fixture(params=["host-sends", "remote-sends"])
def pair(request: pytest.FixtureRequest) -> Iterator[tuple[Endpoint, RpmsgDevice, Endpoint, RpmsgDevice]]:
    """(sender endpoint, its device, receiver endpoint, its device): the receiver does not take anything in
    until the test says so, so the sender runs out of buffers."""
    host, remote = loopback_pair(eventfd=True)
    r = remote.endpoint("async")
    h = host.open("async", timeout=10)
    yield (h, host, r, remote) if request.param == "host-sends" else (r, remote, h, host)
    host.close()
    remote.close()


def _fill(ep: Endpoint, dst: int) -> int:
    """Send until no buffer is free; how many went."""
    ep.settimeout(0)
    n = 0
    while True:
        try:
            ep.sendto(n.to_bytes(4, "little"), dst)
        except WouldBlock:
            return n
        n += 1


def test_send_async_waits_on_the_loop_and_completes(pair: tuple[Endpoint, RpmsgDevice, Endpoint, RpmsgDevice]) -> None:
    sender, _dev, receiver, _rdev = pair
    dst = receiver.addr
    sent = _fill(sender, dst)
    assert sent >= 8
    sender.settimeout(10)
    received: list[int] = []

    def drain() -> None:
        receiver.settimeout(10)
        for _ in range(sent + 1):
            received.append(int.from_bytes(receiver.recv(), "little"))

    async def main() -> int:
        ticks = 0
        task = asyncio.ensure_future(sender.sendto_async(sent.to_bytes(4, "little"), dst))
        for _ in range(20):  # the loop runs while the send waits: nothing is free
            await asyncio.sleep(0.005)
            ticks += 1
            assert not task.done()
        threading.Thread(target=drain, daemon=True).start()  # the receiver consumes: buffers come back
        assert await asyncio.wait_for(task, 10) == 4
        return ticks

    assert asyncio.run(main()) == 20
    deadline = time.monotonic() + 10
    while len(received) < sent + 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert received == list(range(sent + 1))


def test_send_async_honours_the_timeout(pair: tuple[Endpoint, RpmsgDevice, Endpoint, RpmsgDevice]) -> None:
    sender, _dev, receiver, _rdev = pair
    _fill(sender, receiver.addr)

    async def main() -> None:
        sender.settimeout(0)
        with pytest.raises(WouldBlock):
            await sender.sendto_async(b"x", receiver.addr)
        sender.settimeout(0.1)
        start = time.monotonic()
        ticker_ran = asyncio.ensure_future(asyncio.sleep(0.02))
        with pytest.raises(RpmsgTimeout, match=r"within 0\.1 s"):
            await sender.sendto_async(b"x", receiver.addr)
        assert time.monotonic() - start >= 0.09
        assert ticker_ran.done()  # the loop was free meanwhile

    asyncio.run(main())


def test_send_async_is_send_when_a_buffer_is_free() -> None:
    host, remote = loopback_pair()
    try:
        remote.endpoint("echo-ish")
        ep = host.open("echo-ish", timeout=10)

        async def main() -> int:
            return await ep.send_async(b"hello")

        assert asyncio.run(main()) == 5
        (r,) = remote._endpoints.values()
        r.settimeout(10)
        assert r.recvfrom() == (b"hello", ep.addr)
        unconnected = host.endpoint()
        with pytest.raises(LocalProtocolError, match="not connected"):
            asyncio.run(unconnected.send_async(b"x"))
    finally:
        host.close()
        remote.close()
