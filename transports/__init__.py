"""All operating-system I/O of rproc: shared memory, /dev/mem, UART, loopback, vhost-user.

Nothing protocol-specific lives here, and nothing here imports the other rproc packages. Today: the memory
window (:class:`Memory`, :class:`RegionMemory`) that the virtio engine works on. The transports themselves
(shm, devmem, uart, loop, vhost-user) arrive with the transports issue.
"""

from transports.errors import AddressError, TransportError
from transports.memory import MappedRegion, Memory, RegionMemory, bytearray_memory

__all__ = ["AddressError", "MappedRegion", "Memory", "RegionMemory", "TransportError", "bytearray_memory"]
