"""``loop://NAME?size=N``: both sides in one process, one bytearray as shared memory, an eventfd doorbell each
way.

:func:`loop_pair` makes the two sides at once. By URL the two sides are opened one at a time, so the sides of
each NAME wait in this module's table of open loops (this process's, under a lock) until both are closed: that
table is the one piece of state the scheme needs, and it lives here, with the scheme.
"""

from __future__ import annotations

import threading

from transports.doorbell import Doorbell, EventfdDoorbell
from transports.link import Link, ParsedUrl
from transports.memory import MappedRegion, RegionMemory


class LoopLink(Link):
    """One side of a loop: connected from the start (the doorbell is there at once)."""

    def __init__(self, memory: RegionMemory, role: str, doorbell: EventfdDoorbell, name: str | None = None) -> None:
        super().__init__(memory, role)
        self._doorbell = doorbell
        self._bell = doorbell
        self._name = name

    def _connect(self, timeout: float) -> Doorbell:
        return self._bell

    def close(self) -> None:
        self._bell.close()
        self.memory.release()
        if self._name is not None:
            _forget(self._name)


def loop_pair(size: int, *, da: int = 0, name: str | None = None) -> tuple[LoopLink, LoopLink]:
    """(host, remote) sharing ``size`` bytes at device address ``da``."""
    backing = bytearray(size)
    host_bell, remote_bell = EventfdDoorbell.pair()
    host = LoopLink(RegionMemory([MappedRegion("loop", da, size, backing)]), "host", host_bell, name)
    remote = LoopLink(RegionMemory([MappedRegion("loop", da, size, backing)]), "remote", remote_bell, name)
    return host, remote


_open: dict[str, tuple[LoopLink, LoopLink]] = {}
_open_lock = threading.Lock()


def open_url(url: ParsedUrl, role: str, **options: object) -> LoopLink:
    """The ``role`` side of the loop ``url.target`` (made, ``?size=`` bytes, by whichever side opens it first)."""
    with _open_lock:
        if url.target not in _open:
            _open[url.target] = loop_pair(url.int_param("size", 1 << 20), name=url.target)
        host, remote = _open[url.target]
    return host if role == "host" else remote


def _forget(name: str) -> None:
    with _open_lock:
        pair = _open.get(name)
        if pair is not None and all(side._bell.closed for side in pair):
            del _open[name]
