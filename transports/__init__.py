"""All operating-system I/O of rproc: shared memory, /dev/mem, UART, loopback, vhost-user.

Nothing protocol-specific lives here, and nothing here imports the other rproc packages: the memory window
(:class:`Memory`, :class:`RegionMemory`) that the virtio engine works on, doorbells, and one
:class:`~transports.link.Link` per scheme in the scheme's module (loop, shm, devmem, uart, openamp, vhost_user),
opened by URL through :func:`transports.url.open_link`.
"""

from transports.errors import AddressError, TransportError
from transports.memory import MappedRegion, Memory, RegionMemory, bytearray_memory

__all__ = ["AddressError", "MappedRegion", "Memory", "RegionMemory", "TransportError", "bytearray_memory"]
