"""The one exception root of :mod:`rpmsg`, split by whose fault it is."""

from __future__ import annotations


class RpmsgError(Exception):
    """Root of every error raised by :mod:`rpmsg`."""


class RemoteProtocolError(RpmsgError):
    """The peer sent something the rpmsg protocol does not allow (a length past its buffer, ...)."""


class LocalProtocolError(RpmsgError, ValueError):
    """This side asked for something the protocol cannot do (an oversized message, a reserved address, ...)."""


class MessageTooLong(LocalProtocolError):
    """The payload does not fit the peer's buffer; ``limit`` is the largest payload that does (EMSGSIZE)."""

    def __init__(self, message: str, *, size: int, limit: int) -> None:
        self.size = size
        self.limit = limit
        super().__init__(message)


class RpmsgTimeout(RpmsgError, TimeoutError):
    """A send or receive did not complete within the caller's timeout."""


class WouldBlock(RpmsgError, BlockingIOError):
    """A non-blocking call that would have had to wait."""


class EndpointClosed(RpmsgError, OSError):
    """The endpoint, or the device under it, is closed."""


class PeerLost(RpmsgError, ConnectionError):
    """The other side went away (its process died, the link dropped, or its ring broke).

    ``unconfirmed``: messages this side sent whose buffers the peer never gave back when it went: they may or
    may not have been read. Everything else that ``send`` accepted was taken by the peer."""

    def __init__(self, message: str, *, unconfirmed: int = 0) -> None:
        self.unconfirmed = unconfirmed
        super().__init__(message if not unconfirmed else f"{message} ({unconfirmed} sent message(s) unconfirmed)")
