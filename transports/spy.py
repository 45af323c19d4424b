"""``spy+URL``: any transport, with every kick, wait and watched ring change written to a trace.

:class:`SpyLink` wraps a link (``transports.url.open_link("spy+...")`` makes one); :class:`RingWatch` and
:class:`SpyDoorbell` serve the same tracing where a doorbell is made without a link (``remoteproc.spy``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from transports.doorbell import Doorbell, DoorbellWrapper
from transports.link import Link
from transports.memory import RegionMemory


class RingWatch:
    """Ring metadata to report as it changes (idx, flags, event words) in a memory: :meth:`watch` names it,
    :meth:`report_rings` traces what changed since the last report."""

    def __init__(self, memory: RegionMemory, trace: Callable[[str], None]) -> None:
        self.memory = memory
        self.trace = trace
        self._watched: dict[str, tuple[int, int]] = {}
        self._last: dict[str, int] = {}

    def watch(self, name: str, da: int, size: int = 2) -> None:
        """Report the little-endian field of ``size`` bytes at ``da`` whenever it changed (ring metadata)."""
        self._watched[name] = (da, size)

    def watch_vring(self, name: str, desc: int, avail: int, used: int, num: int) -> None:
        self.watch(f"{name}.avail.flags", avail)
        self.watch(f"{name}.avail.idx", avail + 2)
        self.watch(f"{name}.used_event", avail + 4 + 2 * num)
        self.watch(f"{name}.used.flags", used)
        self.watch(f"{name}.used.idx", used + 2)
        self.watch(f"{name}.avail_event", used + 4 + 8 * num)

    def report_rings(self) -> None:
        for name, (da, size) in self._watched.items():
            value = int.from_bytes(self.memory.read(da, size), "little")
            if self._last.get(name) != value:
                old = self._last.get(name)
                self.trace(f"{name}: {'?' if old is None else old} -> {value}")
                self._last[name] = value


class SpyDoorbell(DoorbellWrapper):
    """A doorbell that reports every kick and every wake-up, with the ring indices watched at that moment."""

    def __init__(self, inner: Doorbell, trace: Callable[[str], None], spy: RingWatch) -> None:
        super().__init__(inner)
        self.trace = trace
        self.spy = spy

    def notify(self, queue: int) -> None:
        self.spy.report_rings()
        self.trace(f"kick -> queue {queue}")
        self.inner.notify(queue)

    def wait(self, timeout: float | None) -> bool:
        woke = self.inner.wait(timeout)
        if woke:
            self.trace("kick <- peer")
            self.spy.report_rings()
        return woke


class SpyLink(Link, RingWatch):
    """Wraps a link; :meth:`watch` names ring metadata to report as it changes (idx, flags, event words)."""

    def __init__(self, inner: Link, trace: Callable[[str], None]) -> None:
        Link.__init__(self, inner.memory, inner.role)
        RingWatch.__init__(self, inner.memory, trace)
        self.inner = inner
        self.layout = inner.layout

    def _connect(self, timeout: float) -> Doorbell:
        return SpyDoorbell(self.inner.connect(timeout), self.trace, self)

    def close(self) -> None:
        self.inner.close()


def log_trace(prefix: str) -> Callable[[str], None]:
    """A trace that logs each line at INFO on the ``transports.spy`` logger, after ``prefix``."""
    log = logging.getLogger("transports.spy")
    return lambda line: log.info("%s: %s", prefix, line)
