"""rproc as the rpmsg *remote* of a vhost-user front-end: a Linux guest (User-Mode Linux's ``virtio_uml``, QEMU)
runs its own, unmodified ``virtio_rpmsg_bus`` as the host, and this process is the device behind it.

The guest's driver owns every buffer, as with remoteproc; what differs is the start: there is no status byte to
watch, the driver's first kick on vring 0 (after it posted its receive buffers) says go. Features offered:
``VIRTIO_RPMSG_F_NS`` (name service), ``VIRTIO_F_VERSION_1`` and ``VIRTIO_RING_F_EVENT_IDX``, each optional, so
legacy and modern negotiation, with and without the name service, can all be exercised.
"""

from __future__ import annotations

import os

from rpmsg.core import RemoteCore
from rpmsg.device import RpmsgDevice, WaitMode
from rpmsg.protocol import RX_VRING, TX_VRING, VIRTIO_RPMSG_F_NS
from transports.vhost_user import VhostUserBackend, VhostUserError, VhostUserSession
from virtio import VirtioError, VringLayout
from virtio.features import VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX


def rpmsg_features(*, ns: bool = True, version_1: bool = True, event_idx: bool = False) -> int:
    return (ns << VIRTIO_RPMSG_F_NS) | (version_1 << VIRTIO_F_VERSION_1) | (event_idx << VIRTIO_RING_F_EVENT_IDX)


def device_on_session(session: VhostUserSession, *, wait: WaitMode = "spin") -> RpmsgDevice:
    """The rpmsg remote on a started vhost-user device: the guest's rings, its negotiated features."""
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
    """A vhost-user rpmsg device listening on ``path``; :meth:`start` returns the :class:`RpmsgDevice` once the
    guest's driver has started it. Use as a context manager; :meth:`stop` lets go of one started device (the
    guest may start it again, e.g. after re-binding the driver) and :meth:`close` of everything."""

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
