"""A host and a remote in two processes over rproc's shm profile (transports.shm)."""

from __future__ import annotations

from rpmsg.core import HostCore, RemoteCore
from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.profiles import Profile
from transports.shm import ShmLink


def host_over_shm(
    name: str,
    profile: Profile | None = None,
    *,
    wait: WaitMode = "spin",
    timeout: float = 10.0,
    memfd: bool = False,
    eventfd: bool = False,
) -> tuple[RpmsgDevice, ShmLink]:
    """Create /dev/shm/NAME, lay out the rings, post receive buffers, then wait for the remote to connect."""
    p = profile or Profile()
    listener = ShmLink.create_host(name, p.base + p.size, memfd=memfd, eventfd=eventfd)
    try:
        core = HostCore(
            listener.memory,
            p.rx_layout,
            p.tx_layout,
            pool_da=p.pool_da,
            rx_count=p.rx_count,
            tx_count=p.tx_count,
            rx_size=p.rx_size,
            tx_size=p.tx_size,
        )
        core.start()
        link = listener.accept(timeout)
    except BaseException:
        listener.abandon()
        raise
    device = RpmsgDevice(core, link.doorbell, wait=wait)
    device.start()  # sends the start kick queued by core.start()
    return device, link


def remote_over_shm(
    name: str, profile: Profile | None = None, *, wait: WaitMode = "spin", timeout: float = 10.0
) -> tuple[RpmsgDevice, ShmLink]:
    p = profile or Profile()
    link = ShmLink.connect_remote(name, p.base + p.size, timeout)
    core = RemoteCore(link.memory, p.rx_layout, p.tx_layout)
    return RpmsgDevice(core, link.doorbell, wait=wait), link
