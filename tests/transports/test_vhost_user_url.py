"""``open_link("vhost-user:PATH?...", role="remote")``: the vhost-user back-end by URL, talking rpmsg with the Python
front-end that sends what User-Mode Linux sends (tests/transports/vhost_user_frontend.py)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from rpmsg import Endpoint, RpmsgDevice
from rpmsg.protocol import VIRTIO_RPMSG_F_NS
from rpmsg.wiring import remote_on
from tests.transports.test_vhost_user import LINUX_RPMSG_DRIVER
from tests.transports.vhost_user_frontend import Frontend
from transports import vhost_user_messages as vu
from transports.errors import TransportError
from transports.url import open_link
from transports.vhost_user import URL_OPTIONS, VhostUserLink
from virtio.features import VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX


def _start(url: str, path: Path) -> tuple[VhostUserLink, RpmsgDevice, Frontend, RpmsgDevice]:
    link = open_link(url, role="remote")
    assert isinstance(link, VhostUserLink)
    assert path.is_socket()  # listening from the moment it is opened: a guest may start now
    front = Frontend.connect(str(path))
    got: dict[str, object] = {}

    def serve() -> None:
        try:
            got["device"] = remote_on(link, timeout=10)
        except Exception as exc:  # reported by the assertion below
            got["error"] = exc

    t = threading.Thread(target=serve)
    t.start()
    front.negotiate(LINUX_RPMSG_DRIVER | (1 << vu.F_PROTOCOL_FEATURES))
    front.set_mem_table()
    front.setup_vrings()
    core, doorbell = front.start_host()
    host = RpmsgDevice(core, doorbell)
    host.start()  # the start kick on vring 0
    t.join(10)
    assert "error" not in got, got
    device = got["device"]
    assert isinstance(device, RpmsgDevice)
    return link, device, front, host


@pytest.mark.parametrize("query", ["", "?event_idx=1", "?ns=0&version_1=0"])
def test_open_link_gives_a_working_back_end(tmp_path: Path, query: str) -> None:
    path = tmp_path / "rpmsg.sock"
    link, device, front, host = _start(f"vhost-user://{path}{query}", path)
    try:
        assert link.session is not None
        features = link.session.features
        assert bool(features >> VIRTIO_RING_F_EVENT_IDX & 1) == ("event_idx=1" in query)
        assert bool(features >> VIRTIO_F_VERSION_1 & 1) == ("version_1=0" not in query)
        assert device.ns == ("ns=0" not in query)

        def echo(ep: Endpoint, data: bytes | memoryview, src: int) -> None:
            ep.sendto(bytes(data), src)

        remote_ep = device.endpoint("rpmsg-raw", callback=echo, announce=device.ns)
        # without the name service nothing is announced: the host addresses the endpoint directly
        ep = host.open("rpmsg-raw", timeout=10) if device.ns else host.endpoint(peer=remote_ep.addr)
        ep.settimeout(10)
        for size in (1, 16, 300, 496):
            payload = bytes((i * 7) & 0xFF for i in range(size))
            ep.send(payload)
            assert ep.recv() == payload
    finally:
        host.close()
        device.close()
        link.close()
        front.close()
    assert not path.exists()  # the socket goes with the link


def test_vhost_user_url_errors(tmp_path: Path) -> None:
    path = tmp_path / "x.sock"
    with pytest.raises(TransportError, match=r"the rpmsg remote \(role='remote'\)"):
        open_link(f"vhost-user://{path}", role="host")
    with pytest.raises(TransportError, match=r"unknown option speed \(known: ns, version_1, event_idx\)"):
        open_link(f"vhost-user://{path}?speed=fast", role="remote")
    with pytest.raises(TransportError, match=r"ns='2' is not 0 or 1"):
        open_link(f"vhost-user://{path}?ns=2", role="remote")
    with pytest.raises(TransportError, match="needs a socket path"):
        open_link("vhost-user://", role="remote")
    with pytest.raises(TransportError, match="No such file or directory"):
        open_link(f"vhost-user://{tmp_path}/missing/x.sock", role="remote")
    with pytest.raises(TransportError, match="spy\\+ cannot wrap vhost-user"):
        open_link(f"spy+vhost-user://{path}", role="remote")
    assert not path.exists()  # nothing was left listening by the refused ones
    link = open_link(f"vhost-user:{path}", role="remote")  # the short form: vhost-user:PATH
    try:
        with pytest.raises(TransportError, match=r"no vhost-user front-end connected to .* within 0\.2 s"):
            link.connect(timeout=0.2)
    finally:
        link.close()


def test_url_feature_bits_are_rpmsgs_and_virtios() -> None:
    assert URL_OPTIONS["ns"][0] == VIRTIO_RPMSG_F_NS
    assert URL_OPTIONS["version_1"][0] == VIRTIO_F_VERSION_1
    assert URL_OPTIONS["event_idx"][0] == VIRTIO_RING_F_EVENT_IDX
