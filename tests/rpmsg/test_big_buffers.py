"""Big buffers: rpmsg buffer sizes from Linux's 512 B up to 64 KiB, per direction, chosen by the host's Profile.

One rule (rpmsg/protocol.py ``check_payload``): a message carries at most min(buffer - 16, 65535) bytes. Held
at the limit exactly, and one byte past it refused with MessageTooLong, in both roles: Python <-> Python over
loop:// and over shared memory between two processes, and Python host <-> the firmware's C remote library
(firmware/lib/rpmsg_remote.c) in a second process, which takes each buffer's size from its descriptor."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rpmsg import HostCore, MessageTooLong, Profile, RpmsgDevice, loopback_pair
from rpmsg.protocol import HEADER_SIZE, MAX_PAYLOAD, check_payload
from rpmsg.wiring import LayoutMismatch, host_on, remote_on
from transports.url import open_link

REPO = Path(__file__).resolve().parents[2]
KIB = 1024

# (host receive buffer, host send buffer): every size class each way, asymmetric too, and the buffer at which
# the header's u16 len, not the buffer, becomes the limit (65535 + 16 = 65551 bytes and above).
SIZES = [
    (512, 512),
    (4 * KIB, 4 * KIB),
    (16 * KIB, 16 * KIB),
    (64 * KIB, 64 * KIB),
    (512, 64 * KIB),
    (64 * KIB, 512),
    (4 * KIB, 16 * KIB),
    (16 * KIB, 512),
    (MAX_PAYLOAD + HEADER_SIZE, MAX_PAYLOAD + HEADER_SIZE + 1),
]
IDS = [f"rx{rx}-tx{tx}" for rx, tx in SIZES]


def limit(size: int) -> int:
    return min(size - HEADER_SIZE, MAX_PAYLOAD)


def pattern(n: int, seed: int) -> bytes:
    return bytes((seed + i * 7 + (i >> 8)) & 0xFF for i in range(n))


def profile(rx_size: int, tx_size: int, num: int = 8) -> Profile:
    return Profile(num=num, rx_count=num, tx_count=num, rx_size=rx_size, tx_size=tx_size)


@pytest.mark.parametrize(
    ("size", "most"),
    [
        (512, 496),
        (4 * KIB, 4080),
        (16 * KIB, 16368),
        (64 * KIB, 65520),
        (65551, 65535),
        (65552, 65535),
        (1 << 17, 65535),
    ],
)
def test_the_one_rule(size: int, most: int) -> None:
    """protocol.check_payload: min(buffer - 16, 65535), the rule every path here calls."""
    assert limit(size) == most
    check_payload(most, size - HEADER_SIZE)
    with pytest.raises(MessageTooLong) as err:
        check_payload(most + 1, size - HEADER_SIZE)
    assert (err.value.size, err.value.limit) == (most + 1, most)


def exchange_at_the_limits(
    h_send: Callable[[bytes], None],
    r_send: Callable[[bytes], None],
    h_recv: Callable[[], bytes],
    r_recv: Callable[[], bytes],
    rx_size: int,
    tx_size: int,
) -> None:
    """host -> remote at limit(tx_size) and remote -> host at limit(rx_size), exactly; one byte more refused."""
    down, up = limit(tx_size), limit(rx_size)
    for n in (down, down - 1, 0):
        data = pattern(n, n)
        h_send(data)
        assert r_recv() == data
    for n in (up, up - 1, 0):
        data = pattern(n, n + 1)
        r_send(data)
        assert h_recv() == data
    for send, allowed in ((h_send, down), (r_send, up)):
        with pytest.raises(MessageTooLong) as err:
            send(bytes(allowed + 1))
        assert (err.value.size, err.value.limit) == (allowed + 1, allowed)
    # A refused send leaves the link as it was: the limit still goes through both ways.
    h_send(pattern(down, 3))
    assert r_recv() == pattern(down, 3)
    r_send(pattern(up, 4))
    assert h_recv() == pattern(up, 4)


@pytest.mark.parametrize(("rx_size", "tx_size"), SIZES, ids=IDS)
@pytest.mark.parametrize("eventfd", [False, True], ids=["python-kicks", "c-path"])
def test_every_size_class_over_loopback(rx_size: int, tx_size: int, eventfd: bool) -> None:
    host, remote = loopback_pair(profile(rx_size, tx_size), wait="block", eventfd=eventfd)
    try:
        h = host.endpoint(addr=0x500)
        r = remote.endpoint(addr=0x400, announce=False)
        h.settimeout(5)
        r.settimeout(5)
        assert isinstance(host.core, HostCore) and host.core.max_payload == limit(tx_size)
        exchange_at_the_limits(
            lambda d: h.sendto(d, r.addr), lambda d: r.sendto(d, h.addr), h.recv, r.recv, rx_size, tx_size
        )
        buf = h.get_buffer()  # zero-copy offers the same limit, and sends it
        assert buf.capacity == len(buf.view) == limit(tx_size)
        buf.view[:] = pattern(limit(tx_size), 5)
        with pytest.raises(MessageTooLong):
            h.send_buffer(buf, limit(tx_size) + 1, dst=r.addr)
        h.send_buffer(buf, limit(tx_size), dst=r.addr)
        assert r.recv() == pattern(limit(tx_size), 5)
    finally:
        host.close()
        remote.close()


def remote_process(name: str, kind: str, p: Profile) -> subprocess.Popen[bytes]:
    spec = f"{p.num}:{p.rx_size}:{p.tx_size}"
    script = str(REPO / "benchmarks" / "rpmsg_remote.py")
    return subprocess.Popen([sys.executable, script, name, "block", "echo", kind, spec], cwd=REPO)


@pytest.fixture
def shm_name() -> Iterator[str]:
    yield f"rproc-test-big-{os.getpid()}"


@pytest.mark.parametrize(
    ("rx_size", "tx_size"),
    [(512, 512), (4 * KIB, 16 * KIB), (64 * KIB, 512), (512, 64 * KIB), (16 * KIB, 64 * KIB), (65551, 65552)],
    ids=lambda v: str(v),
)
@pytest.mark.parametrize("kind", ["python", "c"])
def test_every_size_class_over_shm_against_a_remote_process(
    shm_name: str, kind: str, rx_size: int, tx_size: int
) -> None:
    """Two processes over /dev/shm: the host here, the remote rproc's Python remote or the firmware's C library
    (benchmarks/rpmsg_remote.py), echoing. The remote sees only the host's descriptors: the sizes reach it there.
    An echo crosses both directions, so it carries up to the smaller limit of the two."""
    p = profile(rx_size, tx_size)
    proc = remote_process(shm_name, kind, p)
    device: RpmsgDevice | None = None
    try:
        link = open_link(f"shm://{shm_name}?size={p.size}", role="host")
        device = host_on(link, p, wait="block", timeout=20)
        try:
            ep = device.open("bench-echo", timeout=20)
            ep.settimeout(20)
            both = min(limit(rx_size), limit(tx_size))
            for n in (both, 1, 0, both - 1):
                data = pattern(n, n)
                ep.send(data)
                assert ep.recv() == data
            with pytest.raises(MessageTooLong) as err:
                ep.send(bytes(limit(tx_size) + 1))
            assert err.value.limit == limit(tx_size)
            ep.close()
        finally:
            device.close()
            link.close()
    finally:
        proc.wait(timeout=20)
    assert proc.returncode == 0


# --- differential: the per-message C path and the Python path on big buffers -------------------------------------
BIG = Profile(num=4, rx_count=4, tx_count=4, rx_size=16 * KIB, tx_size=MAX_PAYLOAD + HEADER_SIZE + 1)
SIZES_NEAR = st.one_of(
    st.integers(0, MAX_PAYLOAD + 1),
    st.sampled_from([0, 496, 497, 16367, 16368, 16369, 65534, 65535, 65536]),
)
BIG_OPS = st.lists(
    st.one_of(
        st.tuples(st.sampled_from(["h.send", "r.send"]), SIZES_NEAR),
        st.tuples(st.sampled_from(["h.recv", "r.recv"]), st.integers(-1, MAX_PAYLOAD + 1)),
    ),
    max_size=25,
)


class _BigWorld:
    def __init__(self, c_path: bool, monkeypatch: pytest.MonkeyPatch) -> None:
        with monkeypatch.context() as env:
            env.setenv("RPROC_RPMSG_FASTPATH", "1" if c_path else "0")
            self.host, self.remote = loopback_pair(BIG, wait="block", eventfd=True)
        assert self.host._gate.open == c_path
        self.r = self.remote.endpoint(addr=0x400, announce=False)
        self.h = self.host.endpoint(addr=0x500, peer=0x400)
        self.h.settimeout(0)
        self.r.settimeout(0)

    def run(self, op: str, arg: int) -> object:
        try:
            if op == "h.send":
                return self.h.send(pattern(arg, 1))
            if op == "r.send":
                return self.r.sendto(pattern(arg, 2), 0x500)
            ep = self.h if op == "h.recv" else self.r
            return ep.recv(arg)
        except MessageTooLong as exc:
            return "MessageTooLong", exc.size, exc.limit
        except Exception as exc:
            return type(exc).__name__

    def close(self) -> None:
        self.remote.close()
        self.host.close()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=BIG_OPS)
# Found by hypothesis: the remote's C take stopped where its batch buffer filled (then 64 KiB: one small message
# before a 65,505-byte one) and gave back fewer host buffers than the general path, which took all: the host's sends
# after it met a full ring in one world only. A remote's receive takes every waiting message (RPF_MORE); the
# second example fills the batch buffer (now a ring of 512-byte buffers and one largest message) with two of three.
@example(
    ops=[("h.send", 0), ("h.send", 65505), ("h.send", 0), ("h.send", 0), ("r.recv", 0), ("h.send", 0), ("h.send", 0)]
)
@example(ops=[*[("h.send", 65505)] * 3, ("h.send", 0), ("r.recv", 0), *[("h.send", 0)] * 4])
def test_the_c_path_and_the_python_path_agree_on_big_buffers(
    ops: list[tuple[str, int]], host_path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sends of any size up to one past 65,535 both ways (16 KiB to the host, 65,553-byte buffers to the remote:
    the u16 is the limit that way), receives with any bufsize: every result, and each refusal's size and limit,
    the same with the per-message C path as with the Python path only."""
    if host_path != "c-path":
        return  # one comparison is enough: each run builds both worlds
    worlds = [_BigWorld(True, monkeypatch), _BigWorld(False, monkeypatch)]
    try:
        results = [[w.run(op, arg) for op, arg in ops] for w in worlds]
        assert results[0] == results[1]
    finally:
        for w in worlds:
            w.close()


def test_a_remote_need_not_know_the_hosts_buffer_sizes(shm_name: str) -> None:
    """The host's profile has the default rings and big buffers; the remote process starts with the default
    Profile (512 both ways): it maps the host's whole file and takes the sizes from the descriptors."""
    p = Profile(rx_size=4 * KIB, tx_size=16 * KIB)
    script = str(REPO / "benchmarks" / "rpmsg_remote.py")
    proc = subprocess.Popen([sys.executable, script, shm_name, "block", "echo", "python"], cwd=REPO)
    try:
        link = open_link(f"shm://{shm_name}?size={p.size}", role="host")
        device = host_on(link, p, wait="block", timeout=20)
        try:
            ep = device.open("bench-echo", timeout=20)
            ep.settimeout(20)
            data = pattern(limit(4 * KIB), 3)
            ep.send(data)
            assert ep.recv() == data
            ep.close()
        finally:
            device.close()
            link.close()
    finally:
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_a_remote_whose_rings_the_hosts_file_cannot_hold_is_told_so(shm_name: str) -> None:
    """Mapping the host's whole file (not the remote profile's own size) keeps the check that the rings fit."""
    host: list[object] = []

    def serve() -> None:
        with contextlib.suppress(Exception):
            small = Profile(num=4, rx_count=4, tx_count=4)
            link = open_link(f"shm://{shm_name}?size={small.size}", role="host")
            host.append((host_on(link, small, wait="block", timeout=10), link))

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        with pytest.raises(LayoutMismatch, match=r"is 16448 bytes, 22592 needed for this Profile's rings \(num 256"):
            remote_on(open_link(f"shm://{shm_name}", role="remote"), Profile())
    finally:
        thread.join(15)
        for device, link in host:  # type: ignore[misc]
            device.close()
            link.close()


@pytest.mark.parametrize("size", [4080, 4081, 16368, MAX_PAYLOAD])
def test_a_remotes_big_copy_goes_in_c(size: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The remote's copying send writes header and payload straight into the host's buffer in C at every size
    the host's buffers hold (before, a payload over 4,080 bytes, the C send's copy on its stack, went through the
    Python method and the general path: 5x slower at 16 KiB, benchmarks/zero_copy_send.py); with the gate open no
    Python method runs, and the host gets the bytes. A host buffer too small is still named by the general path."""
    from tests.rpmsg.conftest import count_python_methods

    monkeypatch.setenv("RPROC_RPMSG_FASTPATH", "1")
    calls = count_python_methods(monkeypatch, ("_send_py", "_sendto_py", "_send_many_py"))
    host, remote = loopback_pair(profile(MAX_PAYLOAD + HEADER_SIZE, 512), eventfd=True)
    try:
        assert remote._gate.open
        r = remote.endpoint("big")
        h = host.open("big", timeout=5)
        h.settimeout(5)
        r.settimeout(5)
        r.connect(h.addr)
        data = pattern(size, size)
        r.send(data)
        r.sendto(data[::-1], h.addr)
        assert r.send_many([data, data[:7]]) == 2
        assert [h.recv(1 << 17) for _ in range(4)] == [data, data[::-1], data, data[:7]]
        assert calls == {}
    finally:
        remote.close()
        host.close()
    if size <= limit(4096):
        return
    host, remote = loopback_pair(profile(4096, 512), eventfd=True)
    try:
        r = remote.endpoint("big")
        h = host.open("big", timeout=5)
        r.settimeout(0)
        with pytest.raises(MessageTooLong, match=f"{size} bytes do not fit the host's 4096-byte buffer"):
            r.sendto(bytes(size), h.addr)
    finally:
        remote.close()
        host.close()
