"""What a message is made of: any bytes-like object carries its bytes, all of them, on every path (the endpoints'
C methods, the C path's Python methods, the general Python path), both roles: a view of multi-byte items is not
cut to its len() (before: an 8-byte view of 4-byte items arrived as 2 bytes, and one of 3,968 bytes whose len()
is 496 went as 496 bytes instead of raising MessageTooLong), a non-contiguous view goes as its bytes on every
path (before: sent by the general path, refused by the C path), and send_many takes bytearrays and memoryviews
in C (before: the Python method ran for each message of a batch that held one)."""

from __future__ import annotations

import array
import asyncio
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rpmsg import MessageTooLong, RpmsgDevice, WouldBlock, loopback_pair
from rpmsg.endpoint import Endpoint
from tests.rpmsg.conftest import count_python_methods

DATA = bytes(range(64))
OBJECTS: dict[str, Callable[[], object]] = {
    "bytes": lambda: DATA,
    "bytearray": lambda: bytearray(DATA),
    "memoryview": lambda: memoryview(DATA),
    "slice": lambda: memoryview(DATA)[8:40],
    "4-byte items": lambda: memoryview(DATA).cast("I"),
    "8-byte items": lambda: memoryview(DATA).cast("Q"),
    "2-D": lambda: memoryview(DATA).cast("B", (8, 8)),
    "strided": lambda: memoryview(DATA)[::3],
    "array": lambda: array.array("H", DATA),
}


@pytest.fixture(params=[True, False], ids=["eventfd", "loop"])
def pair(request: pytest.FixtureRequest, host_path: str) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    """eventfd: the endpoints' C methods (under host_path c-path); loop: the C path's Python methods."""
    host, remote = loopback_pair(eventfd=request.param)
    assert host._gate.open == (host_path == "c-path" and request.param)
    yield host, remote
    remote.close()
    host.close()


@pytest.fixture
def python_methods(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_python_methods(monkeypatch, ("_send_py", "_sendto_py", "_send_many_py"))


def _connect(host: RpmsgDevice, remote: RpmsgDevice, role: str) -> tuple[Endpoint, Endpoint]:
    r = remote.endpoint("svc")
    h = host.open("svc", timeout=5)
    h.send(b"hello")
    assert r.recv() == b"hello"
    r.connect(h.addr)
    for ep in (h, r):
        ep.settimeout(0)
    return (h, r) if role == "host" else (r, h)


def _drain(ep: Endpoint) -> list[bytes]:
    out: list[bytes] = []
    while True:
        try:
            out += ep.recv_many(64)
        except WouldBlock:
            return out


@pytest.mark.parametrize("role", ["host", "remote"])
@pytest.mark.parametrize("kind", list(OBJECTS))
def test_every_bytes_like_object_carries_all_its_bytes(
    pair: tuple[RpmsgDevice, RpmsgDevice], role: str, kind: str
) -> None:
    sender, receiver = _connect(*pair, role)
    expected = bytes(memoryview(OBJECTS[kind]()))  # type: ignore[arg-type]
    assert sender.send(OBJECTS[kind]()) == len(expected)  # type: ignore[arg-type]
    assert sender.sendto(OBJECTS[kind](), receiver.addr) == len(expected)  # type: ignore[arg-type]
    assert sender.send_many([OBJECTS[kind](), b"next", OBJECTS[kind]()]) == 3  # type: ignore[list-item]
    assert sender.send_many((OBJECTS[kind](),)) == 1  # type: ignore[arg-type]
    assert asyncio.run(sender.send_async(OBJECTS[kind]())) == len(expected)  # type: ignore[arg-type]
    assert _drain(receiver) == [expected, expected, expected, b"next", expected, expected, expected]


@pytest.mark.parametrize("role", ["host", "remote"])
def test_a_view_whose_len_fits_but_whose_bytes_do_not_is_too_long(
    pair: tuple[RpmsgDevice, RpmsgDevice], role: str
) -> None:
    """3,968 bytes in 8-byte items: len() 496, the payload limit; the bytes do not fit. (A host checks a batch's
    sizes before it sends any; a remote learns the host's buffer size from the buffer it takes, so its batch
    ends before the one that does not fit, and sending that one raises.)"""
    sender, receiver = _connect(*pair, role)
    limit = 496
    view = memoryview(bytes(limit * 8)).cast("Q")
    assert len(view) == limit
    with pytest.raises(MessageTooLong):
        sender.send(view)
    if role == "host":
        with pytest.raises(MessageTooLong):
            sender.send_many([b"first", view])
        assert _drain(receiver) == []  # not cut, and nothing of the batch sent
    else:
        assert sender.send_many([b"first", view]) == 1
        with pytest.raises(MessageTooLong):
            sender.send_many([view])
        assert _drain(receiver) == [b"first"]
    fits = memoryview(bytes(limit)).cast("Q")
    assert sender.send(fits) == limit
    assert _drain(receiver) == [bytes(limit)]


@pytest.mark.parametrize("role", ["host", "remote"])
def test_what_is_not_bytes_like_is_refused_by_name(pair: tuple[RpmsgDevice, RpmsgDevice], role: str) -> None:
    sender, receiver = _connect(*pair, role)
    for bad in (5, "text", None):
        with pytest.raises(TypeError, match=f"a message is bytes-like .*not {type(bad).__name__}"):
            sender.send(bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=f"not {type(bad).__name__}"):
            sender.send_many([b"ok", bad])  # type: ignore[list-item]
    released = memoryview(b"gone")
    released.release()
    for call in (lambda: sender.send(released), lambda: sender.send_many([b"ok", released])):
        with pytest.raises(ValueError, match="released"):
            call()
    assert _drain(receiver) == []


@pytest.mark.parametrize("role", ["host", "remote"])
def test_send_many_of_bytearrays_and_memoryviews_runs_in_c(
    pair: tuple[RpmsgDevice, RpmsgDevice], role: str, python_methods: Counter[str]
) -> None:
    sender, receiver = _connect(*pair, role)
    c_methods = pair[0]._gate.open
    block = bytearray(range(256)) * 2
    view = memoryview(block)
    grow = bytearray(b"ab")
    batch: list[bytes | bytearray | memoryview] = [grow, view[:100], view[100:300], b"c", view[:0]]
    python_methods.clear()
    assert sender.send_many(batch) == len(batch)
    assert _drain(receiver) == [bytes(m) for m in batch]
    assert python_methods["_send_many_py"] == (0 if c_methods else 1)
    grow.extend(b"c")  # no buffer export left behind (a bytearray exported cannot resize: BufferError)
    for m in batch[1:]:
        if isinstance(m, memoryview):
            m.release()
    view.release()
    block.extend(b"d")
    # what C does not take goes to the Python method, whole, with the same result
    assert sender.send_many([b"c", memoryview(bytes(8)).cast("I")]) == 2
    assert python_methods["_send_many_py"] == (1 if c_methods else 2)
    assert _drain(receiver) == [b"c", bytes(8)]


@pytest.mark.parametrize("role", ["host", "remote"])
def test_recv_into_fills_any_writable_buffer_by_its_bytes(pair: tuple[RpmsgDevice, RpmsgDevice], role: str) -> None:
    """Before: a buffer of 4-byte items raised after the message was taken (lost)."""
    sender, receiver = _connect(*pair, role)
    message = bytes(range(16))
    targets: list[tuple[Any, int, bytes]] = [
        (array.array("I", [0] * 4), 0, message),
        (memoryview(bytearray(16)).cast("I"), 8, message[:8] + bytes(8)),  # nbytes counts bytes, as socket's
        (memoryview(bytearray(32))[::2], 0, message),  # strided bytes
        (memoryview(bytearray(16)).cast("B", (4, 4)), 0, message),
        (bytearray(20), 0, message + bytes(4)),
    ]
    for buffer, nbytes, expected in targets:
        sender.send(message)
        assert receiver.recv_into(buffer, nbytes) == min(len(message), nbytes or len(message))
        assert bytes(memoryview(buffer).cast("B") if memoryview(buffer).c_contiguous else memoryview(buffer)) == (
            expected
        )


@pytest.mark.parametrize("role", ["host", "remote"])
def test_recv_into_refuses_a_buffer_before_it_takes_the_message(
    pair: tuple[RpmsgDevice, RpmsgDevice], role: str
) -> None:
    """Before: a read-only buffer, or nbytes beyond the buffer, raised after the message was taken (lost)."""
    sender, receiver = _connect(*pair, role)
    sender.send(b"still here")
    refused: list[tuple[Any, int, type[Exception], str]] = [
        (bytes(16), 0, TypeError, "read-only"),
        (bytearray(4), 8, ValueError, "nbytes 8 is greater than the buffer's 4 bytes"),
        (memoryview(bytearray(64)).cast("I")[::2], 0, TypeError, "contiguous"),
        (5, 0, TypeError, "not int"),
        (bytearray(16), -1, ValueError, "negative buffersize"),
    ]
    for buffer, nbytes, error, words in refused:
        with pytest.raises(error, match=words):
            receiver.recv_into(buffer, nbytes)
    assert receiver.recv() == b"still here"
