"""The one exception root of :mod:`transports`."""

from __future__ import annotations


class TransportError(Exception):
    """Root of every error raised by :mod:`transports`."""


class AddressError(TransportError, IndexError):
    """An access outside the mapped memory. ``address`` and ``size`` say which, when known."""

    def __init__(self, message: str, *, address: int | None = None, size: int | None = None) -> None:
        self.address = address
        self.size = size
        super().__init__(message)
