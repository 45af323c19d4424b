"""rpmsg devices on any transport link (``transports.url.open_link``): the host lays out its rings in the link's
memory before it connects, so a remote that connects may read them at once."""

from __future__ import annotations

from rpmsg.core import HostCore, RemoteCore
from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.profiles import Profile
from transports.link import Link


def host_on(
    link: Link, profile: Profile | None = None, *, wait: WaitMode = "spin", timeout: float = 10.0
) -> RpmsgDevice:
    p = profile or Profile()
    core = HostCore(
        link.memory,
        p.rx_layout,
        p.tx_layout,
        pool_da=p.pool_da,
        rx_count=p.rx_count,
        tx_count=p.tx_count,
        rx_size=p.rx_size,
        tx_size=p.tx_size,
    )
    core.start()
    device = RpmsgDevice(core, link.connect(timeout), wait=wait)
    device.start()
    return device


def remote_on(
    link: Link, profile: Profile | None = None, *, wait: WaitMode = "spin", timeout: float = 10.0
) -> RpmsgDevice:
    p = profile or Profile()
    doorbell = link.connect(timeout)
    return RpmsgDevice(RemoteCore(link.memory, p.rx_layout, p.tx_layout), doorbell, wait=wait)
