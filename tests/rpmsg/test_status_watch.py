"""A remote that watches the vdev's status byte (``RemoteCore(..., status=reader)``, the rule of
rpmsg.protocol.driver_ok that the firmware library's rpmsg_poll keeps too) sees the host's reset on every path: the
C receives do not read the byte, so such a remote is served by the Python path, where RemoteCore.poll reads it
before taking a message. Before, with eventfd kicks (the C path) a message sent after the reset was delivered."""

from __future__ import annotations

import pytest

from rpmsg import PeerLost, Profile, RpmsgDevice
from rpmsg.core import RemoteCore
from rpmsg.wiring import _eventfd_doorbells
from transports.loop import loop_pair
from virtio.features import STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK, STATUS_FAILED

PROFILE = Profile(num=8, rx_count=8, tx_count=8)
LINUX_DRIVER_OK = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK  # 0x07, what Linux writes


@pytest.mark.parametrize("reset", [0, LINUX_DRIVER_OK | STATUS_FAILED])  # Linux's stop writes 0; FAILED set
def test_a_status_watching_remote_sees_the_reset_on_every_path(host_path: str, reset: int) -> None:
    host_side, remote_side = loop_pair(PROFILE.base + PROFILE.size)
    host_side.doorbell.close()
    remote_side.doorbell.close()
    host_bell, remote_bell = _eventfd_doorbells()  # the C path's doorbell, as loopback_pair(eventfd=True)'s
    status = bytearray([LINUX_DRIVER_OK])
    core = RemoteCore(remote_side.memory, PROFILE.rx_layout, PROFILE.tx_layout, status=lambda: status[0])
    host = RpmsgDevice(PROFILE.host_core(host_side.memory), host_bell)
    host.start()
    remote = RpmsgDevice(core, remote_bell)
    try:
        assert remote._fast is None  # served by the Python path on both host paths
        assert (host._fast is not None) == (host_path == "c-path")
        ep = remote.endpoint("rpmsg-echo", addr=0x400)
        ep.settimeout(5)
        peer = host.open("rpmsg-echo", timeout=5)
        peer.send(b"before")
        assert ep.recv() == b"before"
        status[0] = reset
        peer.send(b"after the reset")
        with pytest.raises(PeerLost, match="status"):
            ep.recv()
    finally:
        remote.close()
        host.close()
