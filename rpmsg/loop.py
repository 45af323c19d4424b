"""A host and a remote in one process over ``loop://``: what tests and examples start from."""

from __future__ import annotations

from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.profiles import Profile
from transports.loop import loop_pair


def loopback_pair(
    profile: Profile | None = None, *, wait: WaitMode = "spin", event_idx: bool = False
) -> tuple[RpmsgDevice, RpmsgDevice]:
    """(host, remote), started: the host has posted its buffers; the remote may announce channels."""
    p = profile or Profile()
    host_side, remote_side = loop_pair(p.base + p.size)
    host = RpmsgDevice(p.host_core(host_side.memory, event_idx=event_idx), host_side.doorbell, wait=wait)
    host.start()
    remote = RpmsgDevice(p.remote_core(remote_side.memory, event_idx=event_idx), remote_side.doorbell, wait=wait)
    return host, remote
