"""A host and a remote in two processes over rproc's shm profile (transports.shm)."""

from __future__ import annotations

import struct

from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.errors import LocalProtocolError
from rpmsg.profiles import Profile
from transports.errors import TransportError
from transports.memory import RegionMemory
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
    name: str,
    profile: Profile | None = None,
    *,
    wait: WaitMode = "spin",
    timeout: float = 10.0,
    map_all: bool = True,
    check: bool = True,
) -> tuple[RpmsgDevice, ShmLink]:
    """Connect to the host's /dev/shm/NAME and serve the remote role on ``profile`` (rproc's by default; vring
    and pool addresses explicit with ``Profile(vring1=, pool=)``, RPMsg-Lite's: :mod:`rpmsg.rpmsg_lite`).
    ``profile`` says where the rings are; the buffers are wherever the host's descriptors say, of whatever size
    (docs/rpmsg.md, "Buffer sizes"), so by default (``map_all``) the whole file is mapped, not only what
    ``profile``'s own buffer sizes would take (False: only the profile's ``base + size``).
    ``check`` (default): refuse a host whose file or rings do not match the profile (:func:`check_host_layout`),
    with what differs, instead of serving rings it cannot read."""
    p = profile or Profile()
    try:
        link = ShmLink.connect_remote(name, None if map_all else p.base + p.size, timeout)
    except TransportError as exc:
        if "needed" in str(exc):
            raise LayoutMismatch(f"{exc}: the host's shared file is smaller than the profile's layout") from None
        raise
    try:
        size = max(r.end for r in link.memory.regions)
        if size < p.pool_da:
            raise LayoutMismatch(
                f"/dev/shm/{name} is {size} bytes, {p.pool_da} needed for this Profile's rings (num {p.num}, align "
                f"{p.align:#x}): the host's shared file is smaller than the profile's layout"
            )
        if check:
            check_host_layout(link.memory, p)
        core = p.remote_core(link.memory)
    except BaseException:
        link.close()
        raise
    return RpmsgDevice(core, link.doorbell, wait=wait, limits=p.limits), link


class LayoutMismatch(LocalProtocolError):
    """The host's shared memory is not laid out as this side's profile says."""


def check_host_layout(memory: RegionMemory, p: Profile) -> None:
    """What the remote can see of a mismatch once the host's rings are ready: vring 0 (at the profile's address)
    must hold at most num receive buffers, each device-writable, longer than the rpmsg header, inside the mapped
    file and at ``pool + k * length`` (rproc's host and RPMsg-Lite's master both post them so; the length is the
    host's: the remote learns buffer sizes from the descriptors, docs/rpmsg.md "Buffer sizes"); a host that
    pre-fills vring 1's used ring (``host_quirks.adopt_used_index``) leaves at most num entries there. Without
    this check a mismatch served name service (which needs no buffer of the pool) and then nothing."""
    hint = (
        f"the profile says vring 0 at {p.rx_layout.desc:#x}, vring 1 at {p.tx_layout.desc:#x}, {p.num} entries "
        f"aligned to {p.align:#x}, pool at {p.pool_da:#x} with {p.rx_count} receive buffers of {p.rx_size} bytes: "
        "the host's layout differs (its vring addresses, count, alignment, buffer size or pool)"
    )
    rx = p.rx_layout
    posted = int.from_bytes(memory.read(rx.avail + 2, 2), "little")
    if posted > rx.num:  # none posted: nothing to compare (the conformance suite judges such a host)
        raise LayoutMismatch(f"vring 0 avail.idx is {posted} at {rx.avail + 2:#x}, more than {rx.num} entries: {hint}")
    for k in range(posted):
        head = int.from_bytes(memory.read(rx.avail + 4 + 2 * k, 2), "little")
        if head >= rx.num:
            raise LayoutMismatch(f"vring 0 avail.ring[{k}] = {head}, beyond {rx.num} descriptors: {hint}")
        addr, length, flags = struct.unpack("<QIH", memory.read(rx.desc + 16 * head, 14))
        end = max(r.end for r in memory.regions)
        slot, off = divmod(addr - p.pool_da, max(length, 1))
        if slot < 0 or off or length <= 16 or addr + length > end or not flags & 2:
            raise LayoutMismatch(
                f"vring 0 receive buffer {k}: descriptor {head} is {length} bytes at {addr:#x}, flags {flags:#x}: "
                f"{hint}"
            )
    if p.host_quirks.adopt_used_index:
        tx = p.tx_layout
        used = int.from_bytes(memory.read(tx.used + 2, 2), "little")
        if used > tx.num:
            raise LayoutMismatch(f"vring 1 used.idx is {used} at {tx.used + 2:#x}, more than {tx.num}: {hint}")
