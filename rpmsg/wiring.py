"""Where rpmsg meets a transport: the one module that puts an :class:`~rpmsg.device.RpmsgDevice` on a link.

    host, remote = loopback_pair()                                    # both in this process
    device = host_on(open_link("shm://demo?size=0x100000", role="host"), profile)      # any transport...
    device = remote_on(open_link("shm://demo", role="remote"), profile)                # ...either role

The host lays out its rings in the link's memory *before* it connects, so a remote that connects may read them at
once; the remote builds its core once connected and (by default) first checks that the host's rings match its
profile (:func:`check_host_layout`). A link that mirrors memory (``uart:``) is told beforehand what this side
writes (:func:`mirror_writes`). A ``vhost-user:`` link carries the guest driver's layout: :func:`remote_on`
without a profile builds the device on it (:func:`device_on_session`); :class:`VhostUserRemote` is the same
device that the guest may stop and start again. A link whose peers fix the layout themselves (``openamp://``,
``Link.layout``) is refused, naming what to use instead.

Who calls what: the host process opens its link with ``role="host"`` and calls :func:`host_on`; the remote
process ``role="remote"`` and :func:`remote_on`. The caller owns the link and closes it after the device; if
``host_on``/``remote_on`` fail once they started on the link, they close it (nothing is left in /dev/shm).
"""

from __future__ import annotations

import os
import socket
import struct
import time

from rpmsg.core import HostCore, RemoteCore
from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.errors import LocalProtocolError, RpmsgTimeout
from rpmsg.profiles import Profile
from rpmsg.protocol import RX_VRING, TX_VRING, VIRTIO_RPMSG_F_NS
from transports.doorbell import Doorbell, EventfdSocketDoorbell
from transports.link import Link
from transports.loop import loop_pair
from transports.memory import RegionMemory
from transports.vhost_user import VhostUserLink
from transports.vhost_user_backend import VhostUserBackend
from transports.vhost_user_session import VhostUserError, VhostUserSession
from virtio import VirtioError, VringLayout
from virtio.features import VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX
from virtio.layout import avail_size, desc_size, used_size

UART_PROFILE = Profile(num=16, rx_count=16, tx_count=16)
"""rproc's profile with 16-entry rings: the window of the firmware's serial examples
(firmware/examples/uart_echo/main.c), small enough to mirror over a serial line."""


class LayoutMismatch(LocalProtocolError):
    """The host's shared memory is not laid out as this side's profile says."""


# --- one process -----------------------------------------------------------------------------------------------
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


# --- any link --------------------------------------------------------------------------------------------------
def _check_layout(link: Link, call: str) -> None:
    """A link whose peers fix the layout (a resource table of theirs, rings where they put them) cannot take a
    Profile's: writing one over it broke OpenAMP's remote (exit 234)."""
    if link.layout is not None:
        raise LocalProtocolError(f"{call}: {link.layout}, not {call} with an rpmsg Profile")


def host_on(
    link: Link, profile: Profile | None = None, *, wait: WaitMode = "spin", timeout: float = 10.0
) -> RpmsgDevice:
    """The host role on ``link`` (opened with ``role="host"``): rings laid out and receive buffers posted in its
    memory, then the remote awaited (up to ``timeout`` s), then the start kick."""
    _check_layout(link, "host_on")
    p = profile or Profile()
    core: HostCore | None = None
    try:
        link.declare_writes(*mirror_writes(p, "host"))
        core = p.host_core(link.memory)
        core.start()
        device = RpmsgDevice(core, link.connect(timeout), wait=wait, limits=p.limits)
    except BaseException:
        if core is not None:
            core.close()  # its views of the memory go first, or closing the link hides the error with a BufferError
        link.close()
        raise
    device.start()  # sends the start kick queued by core.start()
    return device


def remote_on(
    link: Link,
    profile: Profile | None = None,
    *,
    wait: WaitMode = "spin",
    timeout: float = 10.0,
    check: bool = True,
) -> RpmsgDevice:
    """The remote role on ``link`` (opened with ``role="remote"``) and ``profile`` (rproc's by default; vring and
    pool addresses explicit with ``Profile(vring1=, pool=)``, RPMsg-Lite's: :mod:`rpmsg.rpmsg_lite`). ``profile``
    says where the rings are; the buffers are wherever the host's descriptors say, of whatever size (docs/rpmsg.md,
    "Buffer sizes"). ``check`` (default): refuse a host whose memory or rings do not match the profile
    (:func:`check_host_layout`), with what differs, instead of serving rings it cannot read. A ``vhost-user:``
    link without a profile: the device on the guest's rings."""
    if isinstance(link, VhostUserLink) and profile is None:
        try:
            link.connect(timeout)
            assert link.session is not None
            return device_on_session(link.session, wait=wait)
        except BaseException:
            link.close()
            raise
    _check_layout(link, "remote_on")
    p = profile or Profile()
    deadline = time.monotonic() + timeout
    try:
        link.declare_writes(*mirror_writes(p, "remote"))
        doorbell = link.connect(timeout)
        size = max((r.end for r in link.memory.regions), default=0)
        if size < p.pool_da:
            where = ", ".join(r.name for r in link.memory.regions) or "the link's memory"
            raise LayoutMismatch(
                f"{where} is {size} bytes, {p.pool_da} needed for this Profile's rings (num {p.num}, align "
                f"{p.align:#x}): the host's shared file is smaller than the profile's layout"
            )
        if link.mirrors:  # the host's receive buffers, which this side fills: known from its descriptors only
            buffers = _posted_receive_buffers(link.memory, p, deadline)
        if check:
            check_host_layout(link.memory, p)
        if link.mirrors:
            link.declare_writes([buffers], [])
        core = p.remote_core(link.memory)
    except BaseException:
        link.close()
        raise
    return RpmsgDevice(core, doorbell, wait=wait, limits=p.limits)


def mirror_writes(profile: Profile, role: str) -> tuple[list[tuple[int, int]], list[int]]:
    """What ``role`` writes on ``profile``'s layout before it connects, and its ring indices, for a link that
    mirrors memory (``Link.declare_writes``, transports/mirror.py): the driver (host) its descriptor tables, avail
    rings and send buffers; the device (remote) its used rings. The receive buffers the device fills are the
    host's, of the host's sizes: :func:`remote_on` adds them once connected, from the host's descriptors (the
    remote's own profile sizes missed the host's bigger buffers: their replies never crossed the line)."""
    p = profile
    rings = (p.rx_layout, p.tx_layout)
    tx_pool = (p.pool_da + p.rx_count * p.rx_size, p.tx_count * p.tx_size)
    if role == "host":
        ranges = [r for v in rings for r in ((v.desc, desc_size(v.num)), (v.avail, avail_size(v.num)))] + [tx_pool]
        return ranges, [v.avail + 2 for v in rings]
    return [(v.used, used_size(v.num)) for v in rings], [v.used + 2 for v in rings]


def _posted_receive_buffers(memory: RegionMemory, p: Profile, deadline: float) -> tuple[int, int]:
    """(first address, bytes) spanning the receive buffers the host posted on vring 0, once it posted them (a
    mirrored copy receives them shortly after the link comes up; rproc's host, Linux and RPMsg-Lite post every
    receive buffer at start, in one block)."""
    rx = p.rx_layout
    while not (posted := int.from_bytes(memory.read(rx.avail + 2, 2), "little")):
        if time.monotonic() > deadline:
            raise RpmsgTimeout(f"the host posted no receive buffer on vring 0 (avail.idx at {rx.avail + 2:#x})")
        time.sleep(0.001)
    spans = []
    for k in range(min(posted, rx.num)):
        head = int.from_bytes(memory.read(rx.avail + 4 + 2 * k, 2), "little") % rx.num
        addr, length = struct.unpack("<QI", memory.read(rx.desc + 16 * head, 12))
        spans.append((addr, addr + length))
    start = min(lo for lo, _ in spans)
    return start, max(hi for _, hi in spans) - start


def check_host_layout(memory: RegionMemory, p: Profile) -> None:
    """What the remote can see of a mismatch once the host's rings are ready: vring 0 (at the profile's address)
    must hold at most num receive buffers, each device-writable, longer than the rpmsg header, inside the mapped
    memory and at ``pool + k * length`` (rproc's host and RPMsg-Lite's master both post them so; the length is the
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


# --- vhost-user: the guest's driver is the host ------------------------------------------------------------------
def rpmsg_features(*, ns: bool = True, version_1: bool = True, event_idx: bool = False) -> int:
    """The virtio features an rpmsg device behind vhost-user offers: ``VIRTIO_RPMSG_F_NS`` (name service),
    ``VIRTIO_F_VERSION_1`` and ``VIRTIO_RING_F_EVENT_IDX``, each optional (legacy and modern negotiation, with and
    without the name service)."""
    return (ns << VIRTIO_RPMSG_F_NS) | (version_1 << VIRTIO_F_VERSION_1) | (event_idx << VIRTIO_RING_F_EVENT_IDX)


def device_on_session(session: VhostUserSession, *, wait: WaitMode = "spin") -> RpmsgDevice:
    """The rpmsg remote on a started vhost-user device: the guest's rings, its negotiated features. The guest's
    driver owns every buffer, as with remoteproc; there is no status byte to watch: the driver's first kick on
    vring 0 (after it posted its receive buffers) said go."""
    try:
        layouts = [VringLayout(r.num, r.desc, r.avail, r.used) for r in session.rings]
        core = RemoteCore(
            session.memory,
            layouts[RX_VRING],
            layouts[TX_VRING],
            event_idx=session.has_feature(VIRTIO_RING_F_EVENT_IDX),
        )
    except VirtioError as exc:
        raise VhostUserError(f"the guest's rings cannot be used: {exc}") from None
    return RpmsgDevice(core, session.doorbell, wait=wait, ns=session.has_feature(VIRTIO_RPMSG_F_NS))


class VhostUserRemote:
    """rproc as the rpmsg remote of a vhost-user front-end (a Linux guest's own ``virtio_rpmsg_bus``: UML's
    ``virtio_uml``, QEMU) that the guest may start more than once: listening on ``path``; :meth:`start` returns
    the :class:`RpmsgDevice` once the guest's driver has started it. Use as a context manager; :meth:`stop` lets
    go of one started device (the guest may start it again, e.g. after re-binding the driver) and :meth:`close`
    of everything. For one start, ``remote_on(open_link("vhost-user:PATH", role="remote"))`` is the same."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        ns: bool = True,
        version_1: bool = True,
        event_idx: bool = False,
        wait: WaitMode = "spin",
    ) -> None:
        self.backend = VhostUserBackend(
            path, device_features=rpmsg_features(ns=ns, version_1=version_1, event_idx=event_idx), num_queues=2
        )
        self.wait: WaitMode = wait
        self.device: RpmsgDevice | None = None
        self.session: VhostUserSession | None = None

    def accept(self, timeout: float | None = None) -> None:
        """Wait for the front-end (the guest kernel connects while it probes its virtio devices)."""
        self.backend.accept(timeout)

    def start(self, timeout: float | None = None) -> RpmsgDevice:
        self.stop()
        session = self.backend.wait_ready(timeout, start_queue=RX_VRING)
        try:
            self.device = device_on_session(session, wait=self.wait)
        except BaseException:
            session.close()
            raise
        self.session = session
        return self.device

    @property
    def features(self) -> int:
        """The features the guest's driver accepted (valid once started)."""
        return self.session.features if self.session is not None else self.backend.features

    def stop(self) -> None:
        if self.device is not None:
            self.device.close()
            self.device = None
        if self.session is not None:
            self.session.close()
            self.session = None

    def close(self) -> None:
        self.stop()
        self.backend.close()

    def __enter__(self) -> VhostUserRemote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
