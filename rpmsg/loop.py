"""A host and a remote in one process over ``loop://``: what tests and examples start from."""

from __future__ import annotations

from rpmsg.core import HostCore, RemoteCore
from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.profiles import Profile
from transports.loop import loop_pair


def loopback_pair(
    profile: Profile | None = None, *, wait: WaitMode = "spin", event_idx: bool = False
) -> tuple[RpmsgDevice, RpmsgDevice]:
    """(host, remote), started: the host has posted its buffers; the remote may announce channels."""
    p = profile or Profile()
    host_side, remote_side = loop_pair(p.base + p.size)
    host = RpmsgDevice(
        HostCore(
            host_side.memory,
            p.rx_layout,
            p.tx_layout,
            pool_da=p.pool_da,
            rx_count=p.rx_count,
            tx_count=p.tx_count,
            rx_size=p.rx_size,
            tx_size=p.tx_size,
            event_idx=event_idx,
        ),
        host_side.doorbell,
        wait=wait,
    )
    host.start()
    remote = RpmsgDevice(
        RemoteCore(remote_side.memory, p.rx_layout, p.tx_layout, event_idx=event_idx), remote_side.doorbell, wait=wait
    )
    return host, remote
