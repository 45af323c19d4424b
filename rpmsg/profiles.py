"""Where things live in shared memory for a host/remote pair that has no resource table to say it.

rproc's own profile: vring 0 at the start of the window, vring 1 at the next ``align`` boundary after it, then
the buffer pool (receive buffers first, then send buffers), as Linux's rpmsg lays out its single buffer block.
"""

from __future__ import annotations

from dataclasses import dataclass

from rpmsg.core import HostCore, RemoteCore
from transports.memory import RegionMemory
from virtio import VringLayout


@dataclass(frozen=True)
class Profile:
    num: int = 256
    align: int = 0x1000
    rx_count: int = 256
    tx_count: int = 256
    rx_size: int = 512
    tx_size: int = 512
    base: int = 0

    @property
    def rx_layout(self) -> VringLayout:
        return VringLayout.legacy(self.base, self.num, self.align)

    @property
    def tx_layout(self) -> VringLayout:
        start = (self.rx_layout.end + self.align - 1) & ~(self.align - 1)
        return VringLayout.legacy(start, self.num, self.align)

    @property
    def pool_da(self) -> int:
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
        """The remote role on this layout (construct it once the host's rings are ready)."""
        return cls(memory, self.rx_layout, self.tx_layout, event_idx=event_idx)
