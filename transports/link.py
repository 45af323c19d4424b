"""One side of a transport: its memory at once, its doorbell once the peer is there."""

from __future__ import annotations

from transports.doorbell import Doorbell
from transports.errors import TransportError
from transports.memory import RegionMemory


class Link:
    """One side of a transport: :attr:`memory` at once, the doorbell from :meth:`connect`."""

    def __init__(self, memory: RegionMemory, role: str) -> None:
        self.memory = memory
        self.role = role
        self._doorbell: Doorbell | None = None

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
