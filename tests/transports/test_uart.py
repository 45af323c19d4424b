"""`uart:` over real ports: a pty pair (pyserial opens the tty side, the master side is a raw descriptor), with
and without injected noise, a peer restart, and the errors a user meets."""

from __future__ import annotations

import os
import random
import threading
import time
import tty
from collections.abc import Callable, Iterator

import pytest

from transports.doorbell import PeerLostError
from transports.uart import FdPort, UartError, UartLink, line_rto, parse_uart_url


class NoisyPort(FdPort):
    """A byte-stream wrapper that damages what it writes: bits flipped, bytes dropped and doubled."""

    def __init__(self, fd: int, seed: int, rate: float) -> None:
        super().__init__(fd)
        self.rng = random.Random(seed)
        self.rate = rate
        self.damaged = 0

    def write(self, data: bytes) -> int:
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.rate:
                self.damaged += 1
                kind = self.rng.randrange(3)
                if kind == 0:
                    continue  # dropped
                if kind == 1:
                    b ^= 1 << self.rng.randrange(8)
                else:
                    out.append(b)  # doubled
            out.append(b)
        super().write(bytes(out))
        return len(data)


@pytest.fixture
def pty() -> Iterator[tuple[int, str]]:
    master, slave = os.openpty()
    path = os.ttyname(slave)
    yield master, path
    os.close(master)
    os.close(slave)


def exchange(a: UartLink, b: UartLink, count: int) -> None:
    rng = random.Random(count)
    to_b = [rng.randbytes(rng.randrange(0, 257)) for _ in range(count)]
    to_a = [rng.randbytes(rng.randrange(0, 257)) for _ in range(count)]
    got_b: list[bytes] = []

    def receive_b() -> None:
        for _ in range(count):
            got_b.append(b.recv(timeout=20))

    t = threading.Thread(target=receive_b)
    t.start()
    sender = threading.Thread(target=lambda: [b.send(m, timeout=20) for m in to_a])
    sender.start()
    for m in to_b:
        a.send(m, timeout=20)
    got_a = [a.recv(timeout=20) for _ in range(count)]
    t.join(30)
    sender.join(30)
    assert got_b == to_b
    assert got_a == to_a


def test_pty_both_ways(pty: tuple[int, str]) -> None:
    master, path = pty
    with UartLink.open(f"uart://{path}?baud=1000000") as a, UartLink(FdPort(master), name="master") as b:
        assert a.wait_connected(5).window == 8
        b.wait_connected(5)
        exchange(a, b, 300)
        a.flush(5)
        assert a.core.bad_frames == 0 and b.core.bad_frames == 0


def test_pty_with_injected_noise(pty: tuple[int, str]) -> None:
    master, path = pty
    noisy = NoisyPort(master, seed=5, rate=0.002)
    with UartLink.open(f"uart://{path}", rto=0.03) as a, UartLink(noisy, name="noisy", rto=0.03) as b:
        a.wait_connected(5)
        b.wait_connected(5)
        exchange(a, b, 300)
        assert noisy.damaged > 20  # the noise really happened ...
        assert a.core.bad_frames > 0  # ... and was caught by the CRC/COBS, never delivered


def test_a_receive_on_a_closed_link_says_so(pty: tuple[int, str]) -> None:
    """A receive waiting without a time limit when this side closes the link wakes with PeerLostError, as every
    later one does; a message received before the close is still returned first. Before, it waited on (a mirror's
    receiver thread read a closed link forever)."""
    master, path = pty
    a = UartLink.open(f"uart://{path}", rto=0.03)
    with UartLink(FdPort(master), name="master", rto=0.03) as b:
        a.wait_connected(5)
        b.wait_connected(5)
        b.send(b"before", timeout=5)
        deadline = time.monotonic() + 5
        while not a._inbox and time.monotonic() < deadline:
            time.sleep(0.01)
        outcome: list[object] = []

        def receive() -> None:
            outcome.append(a.recv(timeout=None))  # the message that came before the close
            try:
                a.recv(timeout=None)  # nothing more: waits until the close
            except PeerLostError as exc:
                outcome.append(exc)

        waiter = threading.Thread(target=receive)
        waiter.start()
        time.sleep(0.2)
        a.close()
        waiter.join(5)
        assert not waiter.is_alive() and outcome[0] == b"before" and isinstance(outcome[1], PeerLostError)
        with pytest.raises(PeerLostError, match="closed on this side"):
            a.recv(timeout=0)


def test_peer_restart_reported(pty: tuple[int, str]) -> None:
    master, path = pty
    with UartLink.open(f"uart://{path}") as a:
        b = UartLink(FdPort(master), name="first")
        a.wait_connected(5)
        b.wait_connected(5)
        exchange(a, b, 10)
        b.close()
        with UartLink(FdPort(master), name="second") as b2:
            b2.wait_connected(5)
            exchange(a, b2, 10)
            assert len(a.resets) == 1 and a.resets[0].peer_nonce == b2.core.nonce


def test_urls_and_errors() -> None:
    assert parse_uart_url("uart:///dev/ttyACM0?baud=115200") == ("/dev/ttyACM0", 115200)
    assert parse_uart_url("uart:socket://localhost:7000") == ("socket://localhost:7000", 1_000_000)
    with pytest.raises(UartError, match="unknown parameter"):
        parse_uart_url("uart:///dev/ttyACM0?speed=9600")
    with pytest.raises(UartError, match="for a network port use uart:socket://"):
        parse_uart_url("uart://host/dev/x")
    with pytest.raises(UartError, match=r"/dev/ttyNOPE.*is the device there"):
        UartLink.open("uart:///dev/ttyNOPE")


def test_no_peer_times_out_clearly(pty: tuple[int, str]) -> None:
    _, path = pty
    with UartLink.open(f"uart://{path}") as a, pytest.raises(UartError, match=r"no link peer answered within 0\.2 s"):
        a.wait_connected(0.2)


def test_a_write_the_other_end_never_reads_times_out(pty: tuple[int, str]) -> None:
    """FdPort: a pty whose other end reads nothing fills up; the write gives up after write_timeout with a
    TimeoutError (as pyserial's write timeout) instead of blocking for ever (it hung CI at stop 28: the remote's
    close announced its endpoint over a link whose peer had closed)."""
    master, path = pty
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(slave)  # as a serial port is opened: raw (a cooked pty drops what overflows its line buffer)
    port = FdPort(master, write_timeout=0.2)
    with pytest.raises(TimeoutError, match=r"write timed out: no room for \d+ of 1048576 bytes in 0.2 s"):
        port.write(bytes(1 << 20))
    assert 0 < port.written < 1 << 20  # what fitted went
    os.close(slave)


def test_a_link_whose_peer_stopped_reading_reports_it(pty: tuple[int, str]) -> None:
    """The link turns a write that timed out into the peer lost (PeerLostError: what the rpmsg device handles,
    so a close still completes) and fails for good, both in send and for the runner."""
    master, path = pty
    with UartLink.open(f"uart://{path}", rto=0.03) as a:
        b = UartLink(FdPort(master, write_timeout=0.2), name="master", rto=0.03)
        a.wait_connected(5)
        b.wait_connected(5)
        exchange(a, b, 5)
        a.close()  # the peer stops reading its end; b's frames pile up in the pty
        with pytest.raises(PeerLostError, match="master: port failed: write timed out"):
            for _ in range(10_000):
                b.send(bytes(200), timeout=5)
        assert b.failure is not None and "write timed out" in b.failure
        with pytest.raises(PeerLostError):
            b.send(b"after")
        b.close()


def test_both_sides_sending_at_once_fill_the_line_without_a_deadlock(pty: tuple[int, str]) -> None:
    """Each side's runner reads the line and never waits on a write: at stop 28 it wrote the ACKs and
    retransmissions itself, behind the sender's lock, so when both sides sent more than a pty holds (here 32
    frames of 2 KiB in flight each way) each runner waited on its own sender, blocked writing into a line the
    other runner no longer read, and both links failed with a write timeout (the uart shared-suite failures)."""
    master, path = pty
    a = UartLink.open(f"uart://{path}", window=32, max_payload=2048, rto=0.03)
    b = UartLink(FdPort(master, write_timeout=1), name="master", window=32, max_payload=2048, rto=0.03)
    with a, b:
        a.wait_connected(5)
        b.wait_connected(5)
        rng = random.Random(7)
        to_b = [rng.randbytes(2048) for _ in range(400)]
        to_a = [rng.randbytes(2048) for _ in range(400)]
        got: dict[str, list[bytes]] = {"a": [], "b": []}
        errors: list[BaseException] = []

        def send_all(link: UartLink, messages: list[bytes]) -> None:
            for m in messages:
                link.send(m, timeout=20)

        def recv_all(link: UartLink, into: list[bytes], count: int) -> None:
            for _ in range(count):
                into.append(link.recv(timeout=20))

        def run(fn: Callable[..., None], *args: object) -> threading.Thread:
            def body() -> None:
                try:
                    fn(*args)
                except BaseException as exc:  # reported below
                    errors.append(exc)

            t = threading.Thread(target=body)
            t.start()
            return t

        threads = [
            run(send_all, a, to_b),
            run(send_all, b, to_a),
            run(recv_all, b, got["b"], len(to_b)),
            run(recv_all, a, got["a"], len(to_a)),
        ]
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert a.failure is None and b.failure is None
        assert got["b"] == to_b and got["a"] == to_a


def test_fdport_says_what_waits_so_the_runner_reads_it_at_once(pty: tuple[int, str]) -> None:
    """FdPort.in_waiting (as pyserial's): without it the runner read one byte per call, with a select and the
    link's lock each, and a fast sender outran it."""
    master, path = pty
    slave = os.open(path, os.O_RDWR | os.O_NOCTTY)
    tty.setraw(slave)
    port = FdPort(master)
    assert port.in_waiting == 0
    os.write(slave, bytes(range(256)) * 4)
    deadline = time.monotonic() + 5
    while port.in_waiting < 1024 and time.monotonic() < deadline:
        time.sleep(0.001)  # the pty moves the bytes to the master's side on a kernel worker
    assert port.in_waiting == 1024
    assert port.read(port.in_waiting) == bytes(range(256)) * 4
    os.close(slave)


def test_the_retransmission_timeout_follows_the_baud(pty: tuple[int, str]) -> None:
    """A window of 8 frames of 256 bytes is 2,144 bytes on the line: 21 ms at 1 Mbaud, 186 ms at 115200. Before,
    every link opened from a URL had 50 ms, so at 115200 the sender resent the window ~4 times before it had left
    and the line carried mostly copies; now the timeout is 2.5 line times of a window (at least 50 ms), unless
    the caller gives one."""
    _, path = pty
    assert line_rto(1_000_000) == pytest.approx(0.0536, abs=1e-3)
    assert line_rto(115_200) == pytest.approx(0.465, abs=1e-2)
    assert line_rto(3_000_000) == 0.05  # the floor
    assert line_rto(115_200, window=4, max_payload=64) == pytest.approx(2.5 * 4 * (64 + 5 + 4 + 2) * 10 / 115_200)
    with UartLink.open(f"uart://{path}?baud=115200") as slow:
        assert slow.core.rto == line_rto(115_200) and slow.core.rto > 2 * 2144 * 10 / 115_200  # 2 window times
    with UartLink.open(f"uart://{path}?baud=115200", window=4, max_payload=128) as small:
        assert small.core.rto == line_rto(115_200, 4, 128)
    with UartLink.open(f"uart://{path}?baud=115200", rto=0.03) as given:
        assert given.core.rto == 0.03


def test_a_receiver_that_does_not_keep_up_holds_at_most_max_inbox(pty: tuple[int, str]) -> None:
    """Before, the link took every frame in order and acknowledged it, so a peer sending faster than the caller
    received grew the inbox without bound (here all 600 messages). Now past ``max_inbox`` it takes nothing more:
    the sender's window fills and it retransmits until there is room; nothing is lost or reordered."""
    master, path = pty
    a = UartLink.open(f"uart://{path}", rto=0.03, max_inbox=50)
    b = UartLink(FdPort(master), name="master", rto=0.03)
    with a, b:
        a.wait_connected(5)
        b.wait_connected(5)
        sent = [i.to_bytes(4, "little") * 8 for i in range(600)]
        errors: list[BaseException] = []

        def send_all() -> None:
            try:
                for m in sent:
                    b.send(m, timeout=30)
            except BaseException as exc:  # reported below
                errors.append(exc)

        sender = threading.Thread(target=send_all)
        sender.start()
        time.sleep(0.5)  # the sender runs ahead; nobody receives
        held = len(a._inbox)
        assert held == 50, held
        assert a.core.refused_full > 0 and sender.is_alive()
        got = [a.recv(timeout=10) for _ in sent]
        sender.join(30)
        assert not errors, errors
        assert got == sent
        assert len(a._inbox) == 0 and a.failure is None and b.failure is None


class _UnpluggedPort(FdPort):
    """A port object whose writes fail with its own exception (not an OSError) after ``good`` of them."""

    def __init__(self, fd: int, good: int) -> None:
        super().__init__(fd)
        self.good = good

    def write(self, data: bytes) -> int:
        if self.good <= 0:
            raise RuntimeError("adapter unplugged")
        self.good -= 1
        return super().write(data)


def test_a_port_whose_write_raises_its_own_error_fails_the_link(pty: tuple[int, str]) -> None:
    """Whatever a port's write raises fails the link (PeerLostError naming it), from the caller's thread or the
    writer's: a writer thread that died of it would leave the link silent (the ACKs and retransmissions are the
    writer's since stop 29)."""
    master, path = pty
    with UartLink.open(f"uart://{path}", rto=0.03) as a:
        port = _UnpluggedPort(master, good=10)
        b = UartLink(port, name="flaky", rto=0.03)
        a.wait_connected(5)
        b.wait_connected(5)
        with pytest.raises(PeerLostError, match="flaky: port failed: adapter unplugged"):
            for i in range(100):
                b.send(bytes([i]) * 10, timeout=5)
                time.sleep(0.01)
        assert b.failure == "port failed: adapter unplugged"
        with pytest.raises(PeerLostError):
            b.recv(timeout=5)
        b.close()
