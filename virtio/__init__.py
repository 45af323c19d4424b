"""The split-virtqueue engine, driver and device side, over the transports' memory interface.

Sans-I/O: queues read and write ring memory and return :class:`Notify` intents; transports deliver them. A C
fast path (csrc/vring.c through cffi, the same file firmware compiles) and a pure-Python twin behave
identically; :data:`BACKEND` says which one is active.
"""

from virtio.backend import ACTIVE as BACKEND
from virtio.errors import LocalError, QueueBrokenError, RemoteFault, RingFullError, VirtioError
from virtio.features import VIRTIO_F_VERSION_1, VIRTIO_RING_F_EVENT_IDX, Negotiated, negotiate
from virtio.layout import VringLayout
from virtio.queue import Buf, Chain, Desc, DeviceQueue, DriverQueue, Notify, UsedBuf

__all__ = [
    "BACKEND",
    "VIRTIO_F_VERSION_1",
    "VIRTIO_RING_F_EVENT_IDX",
    "Buf",
    "Chain",
    "Desc",
    "DeviceQueue",
    "DriverQueue",
    "LocalError",
    "Negotiated",
    "Notify",
    "QueueBrokenError",
    "RemoteFault",
    "RingFullError",
    "UsedBuf",
    "VirtioError",
    "VringLayout",
    "negotiate",
]
