"""One side of a transport: its memory at once, its doorbell once the peer is there."""

from __future__ import annotations

from transports.doorbell import Doorbell
from transports.errors import TransportError
from transports.memory import RegionMemory


class Link:
    """One side of a transport: :attr:`memory` at once, the doorbell from :meth:`connect`."""

    layout: str | None = None
    """None: the rpmsg layer lays out the memory (``rpmsg.links.host_on``/``remote_on`` with a Profile). A
    transport whose peers fix the layout themselves says here, in words, which it is and what to use instead
    (``openamp://``); ``host_on``/``remote_on`` refuse it with that text."""

    def __init__(self, memory: RegionMemory, role: str) -> None:
        self.memory = memory
        self.role = role
        self._doorbell: Doorbell | None = None

    def declare_writes(self, ranges: list[tuple[int, int]], index_fields: list[int]) -> None:
        """What this side writes ((device address, size) pairs) and where its ring indices are. Shared memory
        needs no such thing; a link that mirrors memory (``uart:``) sends exactly these ranges, indices last."""

    def connect(self, timeout: float = 10.0) -> Doorbell:
        """Host: wait for the remote (call it once the rings are laid out). Remote: the doorbell."""
        if self._doorbell is None:
            self._doorbell = self._connect(timeout)
        return self._doorbell

    @property
    def doorbell(self) -> Doorbell:
        if self._doorbell is None:
            raise TransportError("not connected yet: call connect()")
        return self._doorbell

    def _connect(self, timeout: float) -> Doorbell:
        raise NotImplementedError

    def close(self) -> None:
        if self._doorbell is not None:
            self._doorbell.close()
