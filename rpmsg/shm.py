"""A host and a remote in two processes over rproc's shm profile (transports.shm)."""

from __future__ import annotations

from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.profiles import Profile
from transports.errors import TransportError
from transports.shm import ShmLink


def host_over_shm(
    name: str,
    profile: Profile | None = None,
    *,
    wait: WaitMode = "spin",
    timeout: float = 10.0,
    memfd: bool = False,
    eventfd: bool = True,
) -> tuple[RpmsgDevice, ShmLink]:
    """Create /dev/shm/NAME, lay out the rings, post receive buffers, then wait for the remote to connect.
    ``eventfd`` (the default): kicks through eventfds passed to the remote, which the endpoints' C methods write
    and read themselves; False: bytes on the socket."""
    p = profile or Profile()
    listener = ShmLink.create_host(name, p.base + p.size, memfd=memfd, eventfd=eventfd)
    try:
        core = p.host_core(listener.memory)
        core.start()
        link = listener.accept(timeout)
    except BaseException:
        listener.abandon()
        raise
    device = RpmsgDevice(core, link.doorbell, wait=wait, limits=p.limits)
    device.start()  # sends the start kick queued by core.start()
    return device, link


def remote_over_shm(
    name: str, profile: Profile | None = None, *, wait: WaitMode = "spin", timeout: float = 10.0
) -> tuple[RpmsgDevice, ShmLink]:
    """The remote on the host's file: ``profile`` says where the rings are; the buffers are wherever the host's
    descriptors say, of whatever size (docs/rpmsg.md, "Buffer sizes"), so the whole file is mapped, not only what
    ``profile``'s own buffer sizes would take."""
    p = profile or Profile()
    link = ShmLink.connect_remote(name, None, timeout)
    size = max(r.end for r in link.memory.regions)
    if size < p.pool_da:
        link.close()
        raise TransportError(
            f"/dev/shm/{name} is {size} bytes, {p.pool_da} needed for this Profile's rings (num {p.num}, align "
            f"{p.align:#x}): the host laid out another one"
        )
    core = p.remote_core(link.memory)
    return RpmsgDevice(core, link.doorbell, wait=wait, limits=p.limits), link
