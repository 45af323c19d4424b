"""``vhost-user:PATH[?ns=0|1&version_1=0|1&event_idx=0|1]``: the scheme's one Link, the rpmsg device behind a
vhost-user front-end (the back-end itself: :mod:`transports.vhost_user_backend`; the started device:
:mod:`transports.vhost_user_session`; the messages: :mod:`transports.vhost_user_messages`).
"""

from __future__ import annotations

import time

from transports.doorbell import Doorbell, PeerLostError
from transports.link import Link, ParsedUrl
from transports.memory import RegionMemory
from transports.vhost_user_backend import VhostUserBackend
from transports.vhost_user_session import VhostUserError, VhostUserSession

# The feature bits the URL's options choose (the same numbers as rpmsg.protocol.VIRTIO_RPMSG_F_NS and
# virtio.features; transports import nothing of ours, tests/transports/test_vhost_user_url.py holds them equal).
_F_RPMSG_NS = 0  # VIRTIO_RPMSG_F_NS (Linux drivers/rpmsg/virtio_rpmsg_bus.c)
_F_EVENT_IDX = 29  # VIRTIO_RING_F_EVENT_IDX (virtio 1.x, 6)
_F_VERSION_1 = 32  # VIRTIO_F_VERSION_1
URL_OPTIONS = {"ns": (_F_RPMSG_NS, True), "version_1": (_F_VERSION_1, True), "event_idx": (_F_EVENT_IDX, False)}
"""``vhost-user:`` options: each a feature bit offered (``1``) or not (``0``), with its default."""


def _flag(name: str, value: str) -> bool:
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise VhostUserError(f"vhost-user: {name}={value!r} is not 0 or 1")


class VhostUserLink(Link):
    """``vhost-user:PATH[?ns=0|1&version_1=0|1&event_idx=0|1]``: the rpmsg device (virtio device, the rpmsg
    *remote* role) behind a vhost-user front-end, listening on the unix socket PATH from the moment it is opened.
    :meth:`connect` waits for the front-end to connect and for its driver to start the device (the first kick);
    only then is :attr:`memory` the guest's. The guest's driver lays out the rings: ``rpmsg.wiring.remote_on``
    takes this link (with no Profile), or use :attr:`session`."""

    layout = (
        "vhost-user: the guest's driver lays out the rings; rpmsg.wiring.remote_on(link) builds the device on "
        "them (no Profile)"
    )
    memory_at_open = False

    def __init__(self, path: str, role: str, options: dict[str, str]) -> None:
        if role != "remote":
            raise VhostUserError(
                f"vhost-user:{path}: this side is the virtio device, i.e. the rpmsg remote (role='remote'); the "
                "front-end (a guest's virtio driver) is the host"
            )
        if not path:
            raise VhostUserError("vhost-user: needs a socket path (vhost-user:///run/rpmsg.sock)")
        unknown = sorted(set(options) - set(URL_OPTIONS))
        if unknown:
            raise VhostUserError(
                f"vhost-user:{path}: unknown option {', '.join(unknown)} (known: {', '.join(URL_OPTIONS)})"
            )
        features = 0
        for name, (bit, default) in URL_OPTIONS.items():
            if _flag(name, options[name]) if name in options else default:
                features |= 1 << bit
        super().__init__(RegionMemory([]), role)  # the guest's memory arrives with SET_MEM_TABLE
        self.path = path
        self.backend = VhostUserBackend(path, device_features=features, num_queues=2)
        self.session: VhostUserSession | None = None

    def _connect(self, timeout: float) -> Doorbell:
        deadline = time.monotonic() + timeout
        try:
            self.backend.accept(timeout)
            session = self.backend.wait_ready(max(0.0, deadline - time.monotonic()), start_queue=0)
        except PeerLostError as exc:
            raise VhostUserError(str(exc)) from None
        self.session = session
        self.memory = session.memory
        return session.doorbell

    def close(self) -> None:
        if self.session is not None:
            self.session.close()
            self.session = None
        self.backend.close()


def open_url(url: ParsedUrl, role: str, **options: object) -> VhostUserLink:
    return VhostUserLink(url.target, role, url.params)
