"""Linux's remoteproc core as a peer, its lifecycle (issue 19 item 5): coredumps through devcoredump after a crash
the remote reports (recovery on and off), and the vdev status bytes in the order Linux writes them, next to the
order rproc's own ``RemoteProc`` writes them.

The checks take a :class:`~remoteproc.conformance.linux.remoteproc_peer.Run` of one of the guest scripts below and
return their evidence or raise AssertionError saying what differs, like those of ``remoteproc_peer.py``
(docs/linux-conformance.md, "Lifecycle against the real core").
"""

from __future__ import annotations

from typing import Any

from remoteproc.rproc import RemoteProc
from resource_table import vdev_field_offset
from transports.memory import RegionMemory

# ---- the vdev status sequence ---------------------------------------------------------------------------------

START, STOP = "start", "stop"
"""Events of a status sequence besides the status bytes: the platform started / stopped the remote."""

Event = str | int


class _StatusSpy(RegionMemory):
    """The platform's memory, recording every write of the status byte at ``status_da`` into ``events`` (a write
    of that byte alone: the table copied over the loaded one before start, which Linux does too, is not a status
    write)."""

    def __init__(self, base: RegionMemory, status_da: int, events: list[Event]) -> None:
        super().__init__(base.regions)
        self.status_da = status_da
        self.events = events

    def write(self, da: int, data: bytes | bytearray | memoryview) -> None:
        super().write(da, data)
        if da == self.status_da and len(data) == 1:
            self.events.append(bytes(data)[0])


def record_vdev_events(rp: RemoteProc) -> list[Event]:
    """From now on, what ``rp`` does to its (first) vdev's status byte and to the remote, in order: each status
    byte written (an int) and each ``platform.start`` / ``platform.stop`` (:data:`START`, :data:`STOP`).
    ``rp`` must have loaded its firmware; the list grows as ``rp`` runs."""
    if rp.resources is None or rp.image is None or rp.image.resource_table is None or not rp.resources.vdevs:
        raise ValueError("record_vdev_events: load a firmware with a vdev first")
    res = rp.resources
    span = res.spans[res.vdevs[0].index]
    status_da = rp.image.resource_table.addr + span.offset + vdev_field_offset(res.table.version, "status")
    events: list[Event] = []
    platform: Any = rp.platform
    platform.memory = _StatusSpy(platform.memory, status_da, events)
    start, stop = platform.start, platform.stop

    def recorded_start(table_da: int, table_size: int) -> None:
        events.append(START)
        start(table_da, table_size)

    def recorded_stop() -> None:
        events.append(STOP)
        stop()

    platform.start, platform.stop = recorded_start, recorded_stop
    return events


LINUX_START: tuple[Event, ...] = (START, 0, 1, 3, 7)
"""Linux's start: ``ops->start`` (START to the remote), then the vdev (remoteproc_core.c ``rproc_start``:
``rproc->ops->start`` before ``rproc_start_subdevices``): reset (0), ACKNOWLEDGE (1), DRIVER (3), DRIVER_OK (7)
(drivers/virtio/virtio.c ``register_virtio_device``, ``virtio_dev_probe``; no FEATURES_OK for a legacy device,
``virtio_features_ok``)."""
LINUX_STOP: tuple[Event, ...] = (0, 1, STOP)
"""Linux's stop: the vdev first (remoteproc_core.c ``rproc_stop``: ``rproc_stop_subdevices`` before
``rproc->ops->stop``): the driver's reset (0), ACKNOWLEDGE again (1) (virtio.c ``virtio_dev_remove``), then STOP."""
