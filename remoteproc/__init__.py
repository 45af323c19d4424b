"""Firmware loading, resource handling and lifecycle of remote processors, and the ``rproc`` command line.

Today: reading firmware (:func:`remoteproc.firmware.firmware_info`) and the ``rproc`` tools for resource tables.
The loader, lifecycle and platforms come with the remoteproc issue.
"""

from remoteproc.errors import FirmwareError, RemoteprocError
from remoteproc.firmware import FirmwareInfo, firmware_info
from remoteproc.version import __version__

__all__ = ["FirmwareError", "FirmwareInfo", "RemoteprocError", "__version__", "firmware_info"]
