"""The one exception root of :mod:`remoteproc`."""

from __future__ import annotations


class RemoteprocError(Exception):
    """Root of every error raised by :mod:`remoteproc`."""


class FirmwareError(RemoteprocError, ValueError):
    """A firmware file cannot be used: not an ELF, truncated, or its table is malformed.

    ``path`` is the file, ``offset`` the byte offset in it where the problem is, when known.
    """

    def __init__(self, message: str, *, path: str | None = None, offset: int | None = None) -> None:
        self.message = message
        self.path = path
        self.offset = offset
        where = f"{path}: " if path else ""
        at = f" (file offset {offset:#x})" if offset is not None else ""
        super().__init__(f"{where}{message}{at}")
