"""Per-endpoint receive callbacks (OpenAMP's rpmsg_create_ept(ept, rdev, name, src, dst, cb, unbind_cb) model),
over every transport of the suite and both per-message paths (conftest.py), in both roles."""

from __future__ import annotations

import logging
import queue
import threading

import pytest

from rpmsg import Endpoint, LocalProtocolError, loopback_pair
from tests.rpmsg.conftest import HostSide


def _collector() -> tuple[queue.Queue[tuple[bytes, int, str]], object]:
    got: queue.Queue[tuple[bytes, int, str]] = queue.Queue()

    def on_message(ep: Endpoint, data: bytes | memoryview, src: int) -> None:
        got.put((bytes(data), src, threading.current_thread().name))

    return got, on_message


def test_callback_gets_every_message_without_recv(host: HostSide) -> None:
    got, on_message = _collector()
    with host.device.open("rpmsg-echo", timeout=10, callback=on_message) as ep:  # type: ignore[arg-type]
        ep.settimeout(10)
        assert not host.device._gate.open  # the endpoints' C methods would deliver straight to a receiver
        for i in range(5):
            ep.send(i.to_bytes(4, "little"))
            data, src, thread = got.get(timeout=10)
            assert int.from_bytes(data, "little") == i and src == ep.peer
            assert thread == "rpmsg-pump"  # the device's pump thread runs it: nobody calls recv
        for i in range(300):  # more than the ring's buffers: a send waiting for one may take messages in too
            ep.send(i.to_bytes(4, "little"))
        for i in range(300):
            data, src, _thread = got.get(timeout=10)
            assert int.from_bytes(data, "little") == i and src == ep.peer
        with pytest.raises(LocalProtocolError, match="receive callback"):
            ep.recv()
        with pytest.raises(LocalProtocolError, match="receive callback"):
            ep.recvfrom()


def test_callback_beside_a_receiving_endpoint(host: HostSide) -> None:
    """Another endpoint receives (the C path where it may run): the callback endpoint's messages still reach
    the callback, the receiver's reach recv."""
    got, on_message = _collector()
    with (
        host.device.open("rpmsg-echo", timeout=10) as plain,
        host.device.open("rpmsg-echo", timeout=10, callback=on_message) as cb,  # type: ignore[arg-type]
    ):
        plain.settimeout(10)
        for i in range(50):
            cb.send(b"cb%d" % i)
            plain.send(b"plain%d" % i)
            assert plain.recv() == b"plain%d" % i
        assert [got.get(timeout=10)[0] for _ in range(50)] == [b"cb%d" % i for i in range(50)]


def test_a_raising_callback_is_logged_counted_and_the_device_goes_on(
    host: HostSide, caplog: pytest.LogCaptureFixture
) -> None:
    seen: queue.Queue[bytes] = queue.Queue()

    def flaky(ep: Endpoint, data: bytes | memoryview, src: int) -> None:
        seen.put(bytes(data))
        if data == b"boom":
            raise ValueError("boom")

    with (
        caplog.at_level(logging.WARNING, logger="rpmsg.device"),
        host.device.open("rpmsg-echo", timeout=10, callback=flaky) as ep,
    ):
        ep.settimeout(10)
        for word in (b"one", b"boom", b"two"):
            ep.send(word)
        assert [seen.get(timeout=10) for _ in range(3)] == [b"one", b"boom", b"two"]
        assert ep.callback_errors == 1 and host.device.callback_errors == 1
        ep.set_callback(None)  # back to the queue
        ep.send(b"three")
        assert ep.recv() == b"three"
    assert "receive callback raised" in caplog.text and "ValueError: boom" in caplog.text


def test_set_callback_hands_queued_messages_first(host: HostSide) -> None:
    got, on_message = _collector()
    with host.device.open("rpmsg-echo", timeout=10) as ep:
        ep.settimeout(10)
        ep.send(b"early")
        assert ep.recv() == b"early"
        ep.send(b"queued")
        while not ep._queue:
            host.device.process()
        ep.set_callback(on_message)  # type: ignore[arg-type]
        ep.send(b"late")
        assert [got.get(timeout=10)[0] for _ in range(2)] == [b"queued", b"late"]


def test_unbind_callback_when_the_peer_destroys_the_channel(host: HostSide) -> None:
    unbound: queue.Queue[Endpoint] = queue.Queue()
    with host.device.open("rpmsg-ctl", timeout=10) as ctl:
        ctl.settimeout(10)
        ctl.send(b"create dyn-cb")
        assert ctl.recv() == b"done"
        got, on_message = _collector()
        dyn = host.device.open("dyn-cb", timeout=10, callback=on_message, on_unbind=unbound.put)  # type: ignore[arg-type]
        with dyn:
            dyn.send(b"hi")
            assert got.get(timeout=10)[0] == b"hi"
            assert unbound.empty()
            ctl.send(b"destroy dyn-cb")
            assert ctl.recv() == b"done"
            assert unbound.get(timeout=10) is dyn
            assert "dyn-cb" not in host.device.channels()


def test_zero_copy_callback_sees_a_view_released_after_it_returns(host: HostSide) -> None:
    views: list[memoryview] = []
    done = threading.Event()

    def on_message(ep: Endpoint, data: bytes | memoryview, src: int) -> None:
        assert isinstance(data, memoryview) and bytes(data) == b"zc"
        views.append(data)
        done.set()

    with host.device.open("rpmsg-echo", timeout=10, zero_copy=True, callback=on_message) as ep:
        ep.send(b"zc")
        assert done.wait(10)
        with pytest.raises(ValueError):
            bytes(views[0])  # released: the buffer went back to the ring


def test_remote_role_callback_replies_from_the_callback() -> None:
    host, remote = loopback_pair()
    try:

        def echo(ep: Endpoint, data: bytes | memoryview, src: int) -> None:
            ep.sendto(bytes(data).upper(), src)

        remote.endpoint("cb-echo", callback=echo)
        with host.open("cb-echo", timeout=10) as ep:
            ep.settimeout(10)
            for word in (b"a", b"bc", b"def"):
                ep.send(word)
                assert ep.recv() == word.upper()
    finally:
        host.close()
        remote.close()


def test_bad_callbacks_are_refused() -> None:
    host, remote = loopback_pair()
    try:
        with pytest.raises(LocalProtocolError, match="callback must be None or callable"):
            host.endpoint("x", callback=42)  # type: ignore[arg-type]
        with pytest.raises(LocalProtocolError, match="on_unbind must be None or callable"):
            host.endpoint("x", on_unbind="no")  # type: ignore[arg-type]
        assert not host._endpoints  # refused before an address was taken
    finally:
        host.close()
        remote.close()
