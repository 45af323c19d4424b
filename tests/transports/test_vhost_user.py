"""The vhost-user back-end against a Python front-end that sends what User-Mode Linux sends (the real kernel is
tests/conformance/linux): negotiation, address translation, rpmsg both ways, reconfiguration and hostile input."""

from __future__ import annotations

import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rpmsg.device import RpmsgDevice
from rpmsg.errors import PeerLost
from rpmsg.protocol import VIRTIO_RPMSG_F_NS
from rpmsg.wiring import VhostUserRemote
from tests.transports.vhost_user_frontend import GUEST_BASE, Frontend
from transports import vhost_user_messages as vu
from transports.vhost_user_backend import VhostUserBackend
from transports.vhost_user_session import VhostUserError
from virtio.features import VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX

LINUX_RPMSG_DRIVER = (1 << VIRTIO_RPMSG_F_NS) | (1 << VIRTIO_F_VERSION_1) | (1 << VIRTIO_RING_F_EVENT_IDX)


@pytest.fixture
def sock_path(tmp_path: Path) -> Path:
    return tmp_path / "rpmsg.sock"


def started_pair(
    path: Path,
    *,
    driver_features: int = LINUX_RPMSG_DRIVER,
    ns: bool = True,
    version_1: bool = True,
    event_idx: bool = False,
) -> tuple[VhostUserRemote, RpmsgDevice, Frontend, RpmsgDevice]:
    remote = VhostUserRemote(path, ns=ns, version_1=version_1, event_idx=event_idx)
    front = Frontend.connect(str(path))
    remote.accept(timeout=5)
    offered = front.negotiate(driver_features | (1 << vu.F_PROTOCOL_FEATURES))
    assert offered >> vu.F_PROTOCOL_FEATURES & 1
    front.set_mem_table()
    front.setup_vrings()
    core, doorbell = front.start_host()
    host = RpmsgDevice(core, doorbell)
    host.start()  # the start kick on vring 0
    device = remote.start(timeout=5)
    return remote, device, front, host


@pytest.fixture
def pair(sock_path: Path) -> Iterator[tuple[VhostUserRemote, RpmsgDevice, Frontend, RpmsgDevice]]:
    remote, device, front, host = started_pair(sock_path)
    yield remote, device, front, host
    host.close()
    remote.close()
    front.close()


def test_requests_in_uml_order_and_features(pair: tuple[VhostUserRemote, RpmsgDevice, Frontend, RpmsgDevice]) -> None:
    remote, device, front, _host = pair
    assert remote.backend.requests[:4] == [
        "SET_OWNER",
        "GET_FEATURES",
        "GET_PROTOCOL_FEATURES",
        "SET_PROTOCOL_FEATURES",
    ]
    assert front.protocol_features == (1 << vu.PROTOCOL_F_REPLY_ACK) | (1 << vu.PROTOCOL_F_SLAVE_REQ)
    assert remote.features == LINUX_RPMSG_DRIVER & ~(1 << VIRTIO_RING_F_EVENT_IDX)  # not offered by default
    assert device.ns
    session = remote.session
    assert session is not None
    # Vring addresses arrived as front-end virtual addresses and were translated to guest-physical ones.
    for ring, layout in zip(session.rings, (front.profile.rx_layout, front.profile.tx_layout), strict=True):
        assert (ring.num, ring.desc, ring.avail, ring.used) == (layout.num, layout.desc, layout.avail, layout.used)
    assert session.memory.regions[0].da == GUEST_BASE


def test_echo_both_ways_with_name_service(pair: tuple[VhostUserRemote, RpmsgDevice, Frontend, RpmsgDevice]) -> None:
    _remote, device, _front, host = pair
    served = device.endpoint("rpmsg-raw")
    client = host.open("rpmsg-raw", timeout=5)
    for size in (1, 16, 300, 496):
        payload = bytes((i * 7 + size) & 0xFF for i in range(size))
        client.send(payload)
        served.settimeout(5)
        data, src = served.recvfrom()
        assert data == payload and src == client.addr
        served.sendto(data[::-1], src)
        client.settimeout(5)
        assert client.recv() == payload[::-1]
    served.close()
    # The close announced NS destroy: the host sees the channel go.
    client.settimeout(5)
    deadline = 50
    while "rpmsg-raw" in host.channels() and deadline:
        host.process()
        deadline -= 1
        threading.Event().wait(0.02)
    assert "rpmsg-raw" not in host.channels()


def test_many_messages_every_payload_checked(
    pair: tuple[VhostUserRemote, RpmsgDevice, Frontend, RpmsgDevice],
) -> None:
    _remote, device, _front, host = pair
    served = device.endpoint("echo")
    served.settimeout(5)
    client = host.open("echo", timeout=5)
    client.settimeout(5)
    count = 3000  # > 2 x 256: the 16-bit ring indices and every buffer are recycled many times

    def echo() -> None:
        for _ in range(count):
            data, src = served.recvfrom()
            served.sendto(data, src)

    t = threading.Thread(target=echo)
    t.start()
    for i in range(count):
        payload = i.to_bytes(4, "little") * (1 + i % 120)
        client.send(payload)
        assert client.recv() == payload
    t.join(5)
    assert not t.is_alive()


@pytest.mark.parametrize(
    ("driver_features", "kw", "event_idx", "ns"),
    [
        (LINUX_RPMSG_DRIVER & ~(1 << VIRTIO_F_VERSION_1), {"version_1": False}, False, True),  # legacy
        (LINUX_RPMSG_DRIVER, {"event_idx": True}, True, True),
        (LINUX_RPMSG_DRIVER, {"ns": False}, False, False),
    ],
    ids=["legacy", "event-idx", "no-ns"],
)
def test_negotiation_variants(
    sock_path: Path, driver_features: int, kw: dict[str, bool], event_idx: bool, ns: bool
) -> None:
    remote, device, front, host = started_pair(sock_path, driver_features=driver_features, **kw)
    try:
        assert bool(remote.features >> VIRTIO_F_VERSION_1 & 1) == kw.get("version_1", True)
        assert bool(remote.features >> VIRTIO_RING_F_EVENT_IDX & 1) == event_idx
        assert device.ns is ns
        served = device.endpoint("svc", addr=0x400)
        # Without the name service nothing is announced: the host must know the address (as Linux's
        # RPMSG_CREATE_EPT_IOCTL with a dst).
        client = host.open("svc", timeout=5) if ns else host.endpoint(peer=0x400)
        client.settimeout(5)
        served.settimeout(5)
        for i in range(600):
            client.send(b"x" * (i % 496 + 1))
            data, src = served.recvfrom()
            served.sendto(data, src)
            assert client.recv() == b"x" * (i % 496 + 1)
    finally:
        host.close()
        remote.close()
        front.close()


def test_disable_stops_the_device_and_a_restart_works(
    pair: tuple[VhostUserRemote, RpmsgDevice, Frontend, RpmsgDevice],
) -> None:
    remote, device, front, host = pair
    served = device.endpoint("a")
    served.settimeout(2)
    front.disable()  # what Linux does when the rpmsg driver goes (vu_del_vqs)
    with pytest.raises(PeerLost, match="disabled by the front-end"):
        served.recv()
    host.close()
    # The driver comes back (re-probe): memory, rings and kicks again, then a new start.
    front.kicks.clear()
    front.calls_r.clear()
    front.set_mem_table()
    front.setup_vrings()
    core, doorbell = front.start_host()
    host2 = RpmsgDevice(core, doorbell)
    host2.start()
    device2 = remote.start(timeout=5)
    served2 = device2.endpoint("b")
    client = host2.open("b", timeout=5)
    client.send(b"again")
    served2.settimeout(5)
    assert served2.recv() == b"again"
    host2.close()


def test_frontend_death_is_reported(pair: tuple[VhostUserRemote, RpmsgDevice, Frontend, RpmsgDevice]) -> None:
    remote, device, front, _host = pair
    served = device.endpoint("a")
    served.settimeout(5)
    front.sock.close()  # the guest is gone
    with pytest.raises(PeerLost, match="front-end disconnected"):
        served.recv()
    assert remote.backend.disconnected == "the front-end disconnected"


def test_unsupported_request_refused_not_fatal(sock_path: Path) -> None:
    with VhostUserBackend(sock_path, device_features=1, num_queues=2) as backend:
        front = Frontend.connect(str(sock_path))
        backend.accept(timeout=5)
        front.negotiate(1 | 1 << vu.F_PROTOCOL_FEATURES)
        with pytest.raises(RuntimeError, match="refused SET_LOG_BASE"):
            front.send(vu.Request.SET_LOG_BASE, b"\0" * 16)
        with pytest.raises(RuntimeError, match="refused SET_VRING_NUM"):
            front.send(vu.Request.SET_VRING_NUM, vu.VRING_STATE.pack(5, 256))  # no queue 5
        with pytest.raises(RuntimeError, match="refused SET_VRING_NUM"):
            front.send(vu.Request.SET_VRING_NUM, vu.VRING_STATE.pack(0, 300))  # not a power of two
        with pytest.raises(RuntimeError, match="refused SET_FEATURES"):
            front.send(vu.Request.SET_FEATURES, vu.U64.pack(1 << 40))  # never offered
        assert front.query(vu.Request.GET_QUEUE_NUM) == 2  # still serving
        front.close()


@pytest.mark.parametrize(
    "garbage",
    [
        vu.HEADER.pack(1, 0x2, 0),  # version 2
        vu.HEADER.pack(1, 0x5, 0),  # a request flagged REPLY
        vu.HEADER.pack(5, 0x1, 1 << 20),  # a megabyte payload
        vu.HEADER.pack(5, 0x1, 8) + b"\xff" * 8,  # SET_MEM_TABLE with 0xffffffff regions
        vu.HEADER.pack(9, 0x1, 4) + b"\0" * 4,  # SET_VRING_ADDR cut short
        vu.HEADER.pack(12, 0x1, 8) + b"\0" * 8,  # SET_VRING_KICK without its descriptor
        vu.HEADER.pack(24, 0x1, 12) + vu.CONFIG_HEAD.pack(0, 0xFFFFFFFF, 0),  # GET_CONFIG of 4 GiB
    ],
    ids=["version", "reply-flag", "huge", "regions", "short", "no-fd", "config-size"],
)
def test_malformed_message_disconnects_with_the_reason(sock_path: Path, garbage: bytes) -> None:
    with VhostUserBackend(sock_path, device_features=1, num_queues=2) as backend:
        client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        client.connect(str(sock_path))
        backend.accept(timeout=5)
        client.sendall(garbage)
        client.settimeout(5)
        assert client.recv(64) == b""  # the back-end hung up
        assert backend.disconnected is not None and "protocol error" in backend.disconnected
        with pytest.raises(Exception, match="front-end gone"):
            backend.wait_ready(timeout=1)
        client.close()


def test_wait_ready_times_out_naming_what_came(sock_path: Path) -> None:
    with VhostUserBackend(sock_path, device_features=1, num_queues=2) as backend:
        front = Frontend.connect(str(sock_path))
        backend.accept(timeout=5)
        front.negotiate(1 | 1 << vu.F_PROTOCOL_FEATURES)
        with pytest.raises(VhostUserError, match=r"not started within 0.2 s .*SET_FEATURES"):
            backend.wait_ready(timeout=0.2)
        front.close()


def test_no_frontend_connects(sock_path: Path) -> None:
    with (
        VhostUserBackend(sock_path, device_features=1, num_queues=2) as backend,
        pytest.raises(VhostUserError, match="no vhost-user front-end connected"),
    ):
        backend.accept(timeout=0.1)
    assert not sock_path.exists()
    assert os.path.exists(sock_path.parent)


def test_request_stream_replies(sock_path: Path) -> None:
    """The seed stream of the fuzz target: every query answered with its value, every NEED_REPLY acknowledged
    once REPLY_ACK is negotiated."""
    seq = (Path(__file__).parents[2] / "fuzz" / "seeds" / "vhost_user" / "uml_sequence.bin").read_bytes()
    with VhostUserBackend(sock_path, device_features=1 | 1 << VIRTIO_F_VERSION_1, num_queues=2) as backend:
        replies = [r for r in backend.feed(seq) if r]
    values = [(vu.HEADER.unpack_from(r)[0], vu.U64.unpack_from(r, 12)[0] if len(r) == 20 else r[12:]) for r in replies]
    assert values[0] == (vu.Request.GET_FEATURES, 1 | 1 << VIRTIO_F_VERSION_1 | 1 << vu.F_PROTOCOL_FEATURES)
    assert values[1] == (vu.Request.GET_PROTOCOL_FEATURES, 0x28)
    assert values[2:7] == [(r, 0) for r in (2, 8, 10, 9, 18)]  # SET_FEATURES .. SET_VRING_ENABLE: acknowledged
    assert values[7][0] == vu.Request.GET_CONFIG
    assert values[8] == (vu.Request.GET_VRING_BASE, 0)  # {index 0, num 0}
    assert values[9] == (vu.Request.GET_QUEUE_NUM, 2)
    assert len(values) == 10


@pytest.fixture(scope="module")
def fed_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VhostUserBackend]:
    with VhostUserBackend(tmp_path_factory.mktemp("vu") / "s", device_features=1, num_queues=2) as backend:
        yield backend


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.lists(st.sampled_from(list(vu.Request)), max_size=6))
def test_any_byte_stream_only_our_error(
    fed_backend: VhostUserBackend, noise: bytes, requests: list[vu.Request]
) -> None:
    """Well-framed requests with random payloads, then random bytes: replies or VhostUserProtocolError."""
    size = min(len(noise), 40)
    stream = b"".join(vu.HEADER.pack(r, 1 | (i & 1) << 3, size) + noise[:size] for i, r in enumerate(requests))
    with contextlib.suppress(vu.VhostUserProtocolError):
        fed_backend.feed(stream + noise)


def test_feed_takes_a_stream_larger_than_a_socket_buffer(fed_backend: VhostUserBackend) -> None:
    """feed() parses from memory: 1.2 MB of requests (far more than a socketpair holds) are all answered, in a
    thread given 60 s (before, feed wrote its whole input into a socketpair first and blocked there for good)."""
    stream = vu.HEADER.pack(vu.Request.GET_FEATURES, 1, 0) * 100_001  # 1,200,012 bytes
    replies: list[list[bytes]] = []
    worker = threading.Thread(target=lambda: replies.append(fed_backend.feed(stream)), daemon=True)
    worker.start()
    worker.join(timeout=60)
    assert not worker.is_alive(), "feed() blocked on its own input"
    [answers] = replies
    assert len(answers) == 100_001
    assert {vu.HEADER.unpack_from(r)[0] for r in answers} == {vu.Request.GET_FEATURES}
