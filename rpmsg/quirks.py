"""What a host (virtio driver) that does not follow the virtio spec makes the remote tolerate: named switches,
all off in every profile but the one of the host that needs them (``Profile(host_quirks=...)``; docs/interop.md,
the table of what Linux, OpenAMP and RPMsg-Lite each do differently).

Each switch comes from a host seen doing it; today only RPMsg-Lite's master (nxp-mcuxpresso/rpmsg-lite, lines
at commit a300ec83, v5.4.0-4; checked against the real one built locally, docs/conformance.md):

- ``write_flagged_readable``: it flags its send buffers VRING_DESC_F_WRITE too, one descriptor setup for both
  rings: lib/virtio/virtqueue.c ``vq_ring_add_buffer`` (line 686, ``dp->flags = VRING_DESC_F_WRITE``), called by
  ``virtqueue_fill_used_buffers`` for vring 1; ``virtqueue_add_buffer`` re-adds a sent buffer without touching the
  flags. The spec reads such a descriptor as 0 device-readable bytes; the switch reads it.
- ``adopt_used_index``: it pre-fills vring 1's used ring with its own send buffers at init
  (lib/rpmsg_lite/rpmsg_lite.c ``rpmsg_lite_master_init``, line 1328, ``virtqueue_fill_used_buffers`` ->
  ``vq_ring_update_used``: used.idx = the buffer count) and takes send buffers from there
  (``vq_tx_alloc_master`` -> ``virtqueue_get_buffer``). A device starting at 0 overwrites them (the master ran out
  of send buffers after two messages); the switch starts where the host left it.
- ``kick_despite_no_interrupt``: it sets avail.flags = NO_INTERRUPT on both vrings at init
  (``rpmsg_lite_master_init`` line 1229 -> lib/virtio/virtqueue.c ``virtqueue_disable_cb`` line 539) and never
  clears it (``virtqueue_enable_cb`` is called nowhere in lib/rpmsg_lite), yet reads its rings only when kicked
  (``rpmsg_lite_rx_callback`` from the kick's ISR). The switch kicks whatever avail.flags says.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rpmsg.core import Event, RemoteCore
from transports.memory import RegionMemory
from virtio import DeviceQueue, Notify, VringLayout


@dataclass(frozen=True)
class HostQuirks:
    """The remote role's allowances for a host's departures from the virtio spec (module docstring)."""

    write_flagged_readable: bool = False
    adopt_used_index: bool = False
    kick_despite_no_interrupt: bool = False

    @property
    def any(self) -> bool:
        return self.write_flagged_readable or self.adopt_used_index or self.kick_despite_no_interrupt

    def names(self) -> list[str]:
        return [
            n for n in ("write_flagged_readable", "adopt_used_index", "kick_despite_no_interrupt") if getattr(self, n)
        ]


NO_QUIRKS = HostQuirks()  # every profile but RPMsg-Lite's
RPMSG_LITE_MASTER = HostQuirks(write_flagged_readable=True, adopt_used_index=True, kick_despite_no_interrupt=True)


class AlwaysNotifyQueue(DeviceQueue):
    """A device queue that notifies after every publication, whatever the driver's avail.flags says."""

    def publish(self) -> Notify | None:
        return super().publish() or Notify(self.index)


def _never(dst: int) -> bool:
    return False


class QuirkRemoteCore(RemoteCore):
    """:class:`RemoteCore` with a host's quirks allowed. Not the plain class, so a device runs it on the general
    path (rpmsg.device: the C fast path is for the plain cores), which reads descriptors one by one."""

    def __init__(
        self,
        memory: RegionMemory,
        rx_layout: VringLayout,
        tx_layout: VringLayout,
        *,
        event_idx: bool = False,
        quirks: HostQuirks = RPMSG_LITE_MASTER,
    ) -> None:
        self.quirks = quirks
        if quirks.kick_despite_no_interrupt:
            self.queue_class = AlwaysNotifyQueue
        self.read_write_flagged = quirks.write_flagged_readable
        super().__init__(memory, rx_layout, tx_layout, event_idx=event_idx)
        if quirks.adopt_used_index:
            self.from_host.adopt_used_index()

    def poll(self, *, zero_copy: Callable[[int], bool] | None = None, limit: int | None = None) -> list[Event]:
        if self.read_write_flagged and zero_copy is None:
            zero_copy = _never  # the batch copy skips device-writable descriptors: read them one by one
        return super().poll(zero_copy=zero_copy, limit=limit)
