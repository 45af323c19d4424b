"""``recv_many_into(buffer, sizes, slot=0)``: recv_many into the slots of one buffer (recvmmsg's shape), the sizes
into an ``array('I')``: the C method makes no object per message (a Python remote taking 64 waiting 496-byte
messages: ~125 ns a message with recv_many, ~27 ns with this, in one process). Both roles, both paths, beside a
zero-copy endpoint; the same messages, cut and counted as recv_many cuts them; bad arguments refused before
anything is taken."""

from __future__ import annotations

import threading
import time
from array import array
from collections import Counter
from collections.abc import Iterator

import pytest

from rpmsg import Endpoint, Profile, RpmsgDevice, WouldBlock, loopback_pair
from tests.rpmsg.conftest import count_python_methods


@pytest.fixture(params=["host", "remote"])
def ends(request: pytest.FixtureRequest, host_path: str) -> Iterator[tuple[RpmsgDevice, Endpoint, Endpoint]]:
    """(the receiving device, its endpoint, the peer's endpoint connected to it), ``request.param``'s role."""
    host, remote = loopback_pair(Profile(num=16, rx_count=16, tx_count=16), eventfd=True)
    local, peer = (host, remote) if request.param == "host" else (remote, host)
    ep = local.endpoint("svc")
    other = peer.endpoint(peer=ep.addr)
    ep.settimeout(5)
    other.send(b"first")  # a device's first message settles the channel in Python
    assert ep.recv() == b"first"
    yield local, ep, other
    remote.close()
    host.close()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_python_methods(monkeypatch, ("_recv_many_into_py", "_recv_many_py", "_recvfrom_many_py"))


def _messages(n: int) -> list[bytes]:
    return [bytes([i]) * (i * 37 % 497) for i in range(n)]


@pytest.mark.parametrize("zero_copy_beside", [False, True])
def test_the_messages_land_in_their_slots_as_recv_many_takes_them(
    ends: tuple[RpmsgDevice, Endpoint, Endpoint], zero_copy_beside: bool, calls: Counter[str], host_path: str
) -> None:
    local, ep, other = ends
    if zero_copy_beside:
        local.endpoint("held", zero_copy=True)
    sent = _messages(12)
    assert other.send_many(sent) == 12
    buf, sizes = bytearray(8 * 496), array("I", [0xFFFFFFFF] * 8)
    calls.clear()
    assert ep.recv_many_into(buf, sizes) == 8  # slot 0: 8 slots of 496 bytes, one per item of sizes
    assert list(sizes) == [len(m) for m in sent[:8]]
    assert [bytes(buf[i * 496 : i * 496 + sizes[i]]) for i in range(8)] == sent[:8]
    # slot 100: the rest cut to 100 bytes, as recv_many(max, 100) cuts them; only 3 slots in this buffer
    small, sizes2 = bytearray(300), array("I", bytes(4 * 8))
    assert ep.recv_many_into(small, sizes2, 100) == 3
    assert [bytes(small[i * 100 : i * 100 + sizes2[i]]) for i in range(3)] == [m[:100] for m in sent[8:11]]
    assert list(sizes2[3:]) == [0] * 5  # untouched beyond what was taken
    assert ep.recv_many_into(memoryview(buf)[:496], array("I", [0])) == 1
    assert bytes(buf[: len(sent[11])]) == sent[11]
    c_path = host_path == "c-path"
    assert calls["_recv_many_into_py"] == (0 if c_path else 3)  # messages waiting: the C method alone
    ep.settimeout(0)
    with pytest.raises(WouldBlock):
        ep.recv_many_into(buf, sizes)


def test_it_waits_for_the_first_then_takes_what_is_there(ends: tuple[RpmsgDevice, Endpoint, Endpoint]) -> None:
    _, ep, other = ends
    buf, sizes = bytearray(4 * 496), array("I", bytes(16))
    timer = threading.Timer(0.05, lambda: other.send(b"later"))
    timer.start()
    start = time.monotonic()
    assert ep.recv_many_into(buf, sizes) == 1
    assert time.monotonic() - start >= 0.04
    assert bytes(buf[: sizes[0]]) == b"later"
    timer.join()
    ep.settimeout(0.05)
    with pytest.raises(TimeoutError):
        ep.recv_many_into(buf, sizes)


@pytest.mark.parametrize(
    ("buffer", "sizes", "slot", "error"),
    [
        (bytes(496), array("I", [0]), 0, TypeError),  # read-only buffer
        (bytearray(496), array("H", [0]), 0, TypeError),  # sizes not 32-bit
        (bytearray(496), b"\0\0\0\0", 0, TypeError),  # sizes read-only
        (bytearray(496), [0], 0, TypeError),  # sizes not a buffer
        (bytearray(496), array("I"), 0, ValueError),  # no item
        (bytearray(100), array("I", [0]), 496, ValueError),  # no slot fits
        (bytearray(496), array("I", [0]), -1, ValueError),
        (bytearray(3), array("I", [0] * 4), 0, ValueError),  # 0-byte slots
    ],
)
def test_bad_arguments_are_refused_before_anything_is_taken(
    ends: tuple[RpmsgDevice, Endpoint, Endpoint], buffer: object, sizes: object, slot: int, error: type[Exception]
) -> None:
    _, ep, other = ends
    other.send(b"kept")
    with pytest.raises(error, match="recv_many_into"):
        ep.recv_many_into(buffer, sizes, slot)
    assert ep.recv() == b"kept"
