"""The vdev status bytes and the remote's start and stop in the order each side writes them (issue 19 item 5):
Linux's, read from remoteproc_virtio.c's dynamic-debug lines (:func:`linux_status_writes`, the sequences
:data:`LINUX_START` / :data:`LINUX_STOP`), and rproc's own ``RemoteProc`` on the same ELF and memory map
(:func:`rproc_vdev_events`, recorded by :func:`record_vdev_events`). lifecycle.py's ``status-sequence``
scenario compares them.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from remoteproc.conformance.linux.rproc_side import layout_memory
from remoteproc.conformance.linux.rproc_uml import Layout
from remoteproc.elf import ElfImage
from remoteproc.loader import LoadedSegment, Progress, load_segments
from remoteproc.resources import Pool
from remoteproc.rproc import RemoteProc
from resource_table import vdev_field_offset
from transports.doorbell import Doorbell, EventfdDoorbell
from transports.memory import RegionMemory

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


class LayoutPlatform:
    """rproc's side of the comparison: the memory map of ``layout`` in a bytearray, a remote that never answers
    (its doorbell is one end of an eventfd pair). Enough for RemoteProc to load, start, recover and stop."""

    name = "uml-layout"

    def __init__(self, layout: Layout) -> None:
        self.layout = layout
        self.memory = layout_memory(layout)
        self._doorbells: tuple[EventfdDoorbell, EventfdDoorbell] | None = None

    def pool(self) -> Pool:
        return Pool([(self.layout.base, self.layout.base + self.layout.size)])

    def load(self, path: str | os.PathLike[str], image: ElfImage, progress: Progress | None) -> list[LoadedSegment]:
        return load_segments(path, image, self.memory, progress=progress)

    def prepare(self) -> None:
        pass

    def start(self, table_da: int, table_size: int) -> None:
        pass

    def connect(self, timeout: float = 10.0) -> Doorbell:
        self._doorbells = EventfdDoorbell.pair()
        return self._doorbells[0]

    def crashed(self) -> bool:
        return False

    def stop(self) -> None:
        self._close_doorbells()

    def _close_doorbells(self) -> None:
        if self._doorbells is not None:
            for doorbell in self._doorbells:
                doorbell.close()
            self._doorbells = None

    def close(self) -> None:
        self._close_doorbells()
        self.memory.release()


def rproc_vdev_events(firmware: Path, layout: Layout, recoveries: int) -> list[Event]:
    """What rproc's RemoteProc writes to the vdev's status byte, and when it starts and stops the remote, for
    start, ``recoveries`` times recover(), stop — on the same ELF and memory map as the guest."""
    rp = RemoteProc(LayoutPlatform(layout))
    try:
        rp.load(firmware)
        events = record_vdev_events(rp)
        rp.start()
        for _ in range(recoveries):
            rp.recover()
        rp.stop()
        return events
    finally:
        rp.close()


# ---- the vdev status bytes, as Linux writes them ----------------------------------------------------------------

_STATUS_LINE = re.compile(r"virtio\d+: (?:status: (\d+)|reset !)$")
_CORE_LINE = re.compile(r"remoteproc\d+: (remote processor \S+ is now up|stopped remote processor \S+)$")


def linux_status_writes(dmesg: str) -> list[Event]:
    """The status bytes remoteproc_virtio.c wrote (``rproc_virtio_reset``: 0, ``rproc_virtio_set_status``: the
    value), with "up" / "stopped" where rproc_start / rproc_stop printed that they were done."""
    events: list[Event] = []
    for line in dmesg.splitlines():
        if m := _STATUS_LINE.search(line):
            events.append(int(m.group(1)) if m.group(1) is not None else 0)
        elif m := _CORE_LINE.search(line):
            events.append("up" if m.group(1).endswith("is now up") else "stopped")
    return events


def stop_first(events: list[Event]) -> list[Event]:
    """``events`` with each stop of the remote moved before the vdev reset that precedes it."""
    out: list[Event] = []
    for event in events:
        if event == STOP and out[-2:] == [0, 1]:
            out[-2:] = [STOP, 0, 1]
        else:
            out.append(event)
    return out
