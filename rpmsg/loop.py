"""A host and a remote in one process over ``loop://``: what tests and examples start from."""

from __future__ import annotations

import os
import socket

from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.profiles import Profile
from transports.doorbell import Doorbell, EventfdSocketDoorbell
from transports.loop import loop_pair


def loopback_pair(
    profile: Profile | None = None, *, wait: WaitMode = "spin", event_idx: bool = False, eventfd: bool = False
) -> tuple[RpmsgDevice, RpmsgDevice]:
    """(host, remote), started: the host has posted its buffers; the remote may announce channels. ``eventfd``:
    kicks through a pair of eventfds, as the shm transport's (the doorbell the C paths kick in C)."""
    p = profile or Profile()
    host_side, remote_side = loop_pair(p.base + p.size)
    host_bell: Doorbell = host_side.doorbell
    remote_bell: Doorbell = remote_side.doorbell
    if eventfd:
        host_bell.close()  # the loop's own doorbells give way (their descriptors with them)
        remote_bell.close()
        host_bell, remote_bell = _eventfd_doorbells()
    host = RpmsgDevice(p.host_core(host_side.memory, event_idx=event_idx), host_bell, wait=wait, limits=p.limits)
    host.start()
    remote = RpmsgDevice(
        p.remote_core(remote_side.memory, event_idx=event_idx), remote_bell, wait=wait, limits=p.limits
    )
    return host, remote


def _eventfd_doorbells() -> tuple[Doorbell, Doorbell]:
    """Two ends of eventfd kicks in one process; each end owns its descriptors (closing one leaves the other)."""
    to_remote, to_host = os.eventfd(0, os.EFD_CLOEXEC), os.eventfd(0, os.EFD_CLOEXEC)
    a, b = socket.socketpair()
    host = EventfdSocketDoorbell(to_host, to_remote, a)
    remote = EventfdSocketDoorbell(os.dup(to_remote), os.dup(to_host), b)
    return host, remote
