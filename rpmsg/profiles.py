"""Where things live in shared memory for a host/remote pair that has no resource table to say it, and how much
a peer may make this side hold (:class:`Limits`).

rproc's own profile: vring 0 at the start of the window, vring 1 at the next ``align`` boundary after it, then
the buffer pool (receive buffers first, then send buffers), as Linux's rpmsg lays out its single buffer block.
"""

from __future__ import annotations

from dataclasses import dataclass

from rpmsg.core import HostCore, RemoteCore
from rpmsg.errors import LocalProtocolError
from rpmsg.protocol import LINUX_BUFFER_SIZE
from rpmsg.quirks import NO_QUIRKS, HostQuirks, QuirkRemoteCore
from transports.memory import RegionMemory
from virtio import VringLayout


@dataclass(frozen=True)
class Limits:
    """What the peer can make this side keep in memory (docs/reliability.md, "Bounds"); local policy, not layout:
    the two sides need not agree. ``RpmsgDevice(limits=...)`` or ``device.limits = ...`` (any device);
    ``Profile(limits=...)`` for the devices made from a profile.

    - ``channels``: name-service channels the peer may have announced at once. A create for a new name beyond
      it is refused: counted in ``device.ns_refused``, logged (rate-limited), no callback; a destroy makes room.
    - ``queued`` / ``queued_bytes``: messages / payload bytes waiting in one endpoint's receive queue (an
      endpoint may override both: ``device.endpoint(..., max_queued=, max_queued_bytes=)``). A message that
      finds the queue full is dropped (its buffer goes back to the ring) and counted in ``ep.dropped`` (and
      ``device.queue_dropped``), logged rate-limited. An empty queue always takes one message, however long.
      Keep ``queued`` at least the ring's buffer count (256 by default) so that a reader that keeps up never
      loses a message of one batch.
    """

    channels: int = 1024
    queued: int = 4096
    queued_bytes: int = 4 << 20

    def __post_init__(self) -> None:
        for name in ("channels", "queued", "queued_bytes"):
            value = getattr(self, name)
            if type(value) is not int or value < 1:
                raise LocalProtocolError(f"Limits.{name} must be an int >= 1, not {value!r}")


@dataclass(frozen=True)
class Profile:
    num: int = 256
    align: int = 0x1000
    rx_count: int = 256
    tx_count: int = 256
    rx_size: int = LINUX_BUFFER_SIZE  # bytes per host receive buffer; any size > 16, per direction (docs/rpmsg.md)
    tx_size: int = LINUX_BUFFER_SIZE  # bytes per host send buffer
    base: int = 0
    limits: Limits = Limits()
    vring1: int | None = None  # vring 1's address; None: the next ``align`` boundary after vring 0
    pool: int | None = None  # the buffer pool's address; None: after vring 1, 64-byte aligned
    host_quirks: HostQuirks = NO_QUIRKS  # the remote role's allowances for a non-conforming host (rpmsg.quirks)

    @property
    def rx_layout(self) -> VringLayout:
        return VringLayout.legacy(self.base, self.num, self.align)

    @property
    def tx_layout(self) -> VringLayout:
        if self.vring1 is not None:
            return VringLayout.legacy(self.vring1, self.num, self.align)
        start = (self.rx_layout.end + self.align - 1) & ~(self.align - 1)
        return VringLayout.legacy(start, self.num, self.align)

    @property
    def pool_da(self) -> int:
        if self.pool is not None:
            return self.pool
        return (self.tx_layout.end + 63) & ~63

    @property
    def size(self) -> int:
        """Bytes of shared memory the profile needs from ``base``."""
        return self.pool_da + self.rx_count * self.rx_size + self.tx_count * self.tx_size - self.base

    def host_core(self, memory: RegionMemory, *, event_idx: bool = False, cls: type[HostCore] = HostCore) -> HostCore:
        """The host role on this layout (not started: ``start()`` posts the receive buffers); ``cls`` a subclass
        (a conformance peer broken on purpose)."""
        return cls(
            memory,
            self.rx_layout,
            self.tx_layout,
            pool_da=self.pool_da,
            rx_count=self.rx_count,
            tx_count=self.tx_count,
            rx_size=self.rx_size,
            tx_size=self.tx_size,
            event_idx=event_idx,
        )

    def remote_core(
        self, memory: RegionMemory, *, event_idx: bool = False, cls: type[RemoteCore] = RemoteCore
    ) -> RemoteCore:
        """The remote role on this layout (construct it once the host's rings are ready); with the host's quirks
        allowed when the profile names some (and ``cls`` is the plain class)."""
        if cls is RemoteCore and self.host_quirks.any:
            return QuirkRemoteCore(memory, self.rx_layout, self.tx_layout, event_idx=event_idx, quirks=self.host_quirks)
        return cls(memory, self.rx_layout, self.tx_layout, event_idx=event_idx)
