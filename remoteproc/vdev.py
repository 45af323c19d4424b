"""The host side of a remoteproc vdev: its status byte and feature word in the loaded resource table.

Linux order (``register_virtio_device``, ``virtio_dev_probe``, ``rproc_virtio_set_status``,
``rproc_virtio_finalize_features``, ``rpmsg_probe``): status 0 (reset), ACKNOWLEDGE (1), DRIVER (3), gfeatures
written, vrings set up and receive buffers posted, DRIVER_OK (7), then the first kick. On stop
(``virtio_dev_remove``): status 0, then ACKNOWLEDGE (1) again; the vrings' da and notifyid stay in the remote's
memory (Linux resets them in its cached copy of the table only, ``rproc_free_vring``).
"""

from __future__ import annotations

import struct

from resource_table import vdev_field_offset
from transports.memory import RegionMemory
from virtio.features import STATUS_ACKNOWLEDGE, STATUS_DRIVER, STATUS_DRIVER_OK

NOTIFY_ID_NONE = 0xFFFF_FFFF


class VdevControl:
    """Reads and writes one vdev entry of the table as loaded in the remote's memory (at ``entry_da``)."""

    def __init__(self, memory: RegionMemory, entry_da: int, version: int, num_vrings: int) -> None:
        self.memory = memory
        self.entry_da = entry_da
        self.version = version
        self.num_vrings = num_vrings
        self._status = entry_da + vdev_field_offset(version, "status")
        self._gfeatures = entry_da + vdev_field_offset(version, "gfeatures")
        self._dfeatures = entry_da + vdev_field_offset(version, "dfeatures")
        self._vrings = entry_da + vdev_field_offset(version, "reserved") + 2
        self._feature_fmt = "<I" if version == 1 else "<Q"

    @property
    def status(self) -> int:
        return self.memory.read(self._status, 1)[0]

    @property
    def status_da(self) -> int:
        return self._status

    @property
    def gfeatures_da(self) -> int:
        return self._gfeatures

    def set_status(self, value: int) -> None:
        self.memory.write(self._status, bytes((value,)))

    @property
    def dfeatures(self) -> int:
        size = struct.calcsize(self._feature_fmt)
        return int(struct.unpack(self._feature_fmt, self.memory.read(self._dfeatures, size))[0])

    def set_gfeatures(self, value: int) -> None:
        self.memory.write(self._gfeatures, struct.pack(self._feature_fmt, value))

    def negotiate(self, driver_features: int) -> int:
        """Reset, ACKNOWLEDGE, DRIVER, then the features both sides have; returns them."""
        self.set_status(0)
        self.set_status(STATUS_ACKNOWLEDGE)
        self.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER)
        features = self.dfeatures & driver_features
        self.set_gfeatures(features)
        return features

    def driver_ok(self) -> None:
        self.set_status(STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK)

    def reset_for_stop(self) -> None:
        """What Linux 6.1 leaves in the remote's memory when it stops: status 0 (the driver's reset), then
        ACKNOWLEDGE again (drivers/virtio/virtio.c virtio_dev_remove: "Acknowledge the device's existence
        again"). The vrings' da and notifyid stay: rproc_stop points table_ptr at the cached copy
        (rproc_reset_rsc_table_on_stop) before rproc_free_vring resets them there. Seen against the real kernel
        by tests/conformance/linux/test_remoteproc_linux.py."""
        self.set_status(0)
        self.set_status(STATUS_ACKNOWLEDGE)
