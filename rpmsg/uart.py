"""rpmsg over a serial line: both roles on :mod:`transports.mirror` over a :class:`~transports.uart.UartLink`.

Each side keeps its own copy of rproc's shm profile window; the mirror sends what this side writes — the driver
(host) its descriptor tables, avail rings and send buffers, the device (remote) its used rings and the receive
buffers it fills — with ring indices last (docs/uart-link.md, "Mirroring").
"""

from __future__ import annotations

from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.profiles import Profile
from transports.memory import bytearray_memory
from transports.mirror import Mirror, MirrorDoorbell
from transports.uart import UartLink
from virtio.layout import avail_size, desc_size, used_size


def written_ranges(profile: Profile, role: str) -> tuple[list[tuple[int, int]], list[int]]:
    """What ``role`` writes on ``profile``'s layout, and its ring indices: the driver (host) its descriptor
    tables, avail rings and send buffers; the device (remote) its used rings and the receive buffers it fills."""
    p = profile
    rings = (p.rx_layout, p.tx_layout)
    rx_pool = (p.pool_da, p.rx_count * p.rx_size)
    tx_pool = (p.pool_da + p.rx_count * p.rx_size, p.tx_count * p.tx_size)
    if role == "host":
        ranges = [r for v in rings for r in ((v.desc, desc_size(v.num)), (v.avail, avail_size(v.num)))] + [tx_pool]
        return ranges, [v.avail + 2 for v in rings]
    return [(v.used, used_size(v.num)) for v in rings] + [rx_pool], [v.used + 2 for v in rings]


def _mirror(profile: Profile, role: str, link: UartLink) -> tuple[Mirror, MirrorDoorbell]:
    memory = bytearray_memory(profile.size, da=profile.base)
    ranges, index = written_ranges(profile, role)
    assert link.connected is not None, "wait_connected() first"
    mirror = Mirror(memory, ranges, index_fields=index, max_payload=link.connected.max_payload)
    return mirror, MirrorDoorbell(link, mirror)


def host_over_uart(link: UartLink, profile: Profile | None = None, *, wait: WaitMode = "block") -> RpmsgDevice:
    """The host role on a connected link: rings and receive buffers set up, sent, then the start kick."""
    p = profile or Profile(num=16, rx_count=16, tx_count=16)
    mirror, doorbell = _mirror(p, "host", link)
    device = RpmsgDevice(p.host_core(mirror.memory), doorbell, wait=wait, limits=p.limits)
    device.start()
    return device


def remote_over_uart(link: UartLink, profile: Profile | None = None, *, wait: WaitMode = "block") -> RpmsgDevice:
    p = profile or Profile(num=16, rx_count=16, tx_count=16)
    mirror, doorbell = _mirror(p, "remote", link)
    return RpmsgDevice(p.remote_core(mirror.memory), doorbell, wait=wait, limits=p.limits)
