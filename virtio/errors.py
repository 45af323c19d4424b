"""The one exception root of :mod:`virtio`, split by whose fault it is (h11's Local/RemoteProtocolError)."""

from __future__ import annotations


class VirtioError(Exception):
    """Root of every error raised by :mod:`virtio`."""


class RemoteFault(VirtioError):
    """The peer wrote something a correct peer never writes. The queue is now in the error state.

    ``queue`` is the queue number, ``code`` the check that failed (``"BAD_HEAD"``, ``"LOOP"``, ...), ``where``
    the ring position or descriptor index, ``value`` what was found there.
    """

    def __init__(self, message: str, *, queue: int, code: str, where: int, value: int) -> None:
        self.queue = queue
        self.code = code
        self.where = where
        self.value = value
        super().__init__(message)


class QueueBrokenError(RemoteFault):
    """An operation on a queue that an earlier remote fault put in the error state."""


class LocalError(VirtioError, ValueError):
    """Misuse of the API by this side (a full ring, a buffer outside memory, a bad argument)."""

    def __init__(self, message: str, *, queue: int, code: str) -> None:
        self.queue = queue
        self.code = code
        super().__init__(message)


class RingFullError(LocalError):
    """No free descriptors for the chain: wait for used buffers."""
