"""One side of a transport (:class:`Link`) and the URL it was opened from (:class:`ParsedUrl`).

Each scheme's module holds its one Link and an ``open_url(url, role, **options)`` that makes it from a
:class:`ParsedUrl`; :mod:`transports.url` parses a URL and dispatches to that function (its registry), nothing
more.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from transports.doorbell import Doorbell
from transports.errors import TransportError
from transports.memory import RegionMemory

ROLES = ("host", "remote")


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    target: str
    params: dict[str, str] = field(default_factory=dict)

    def int_param(self, name: str, default: int | None = None) -> int:
        if name not in self.params:
            if default is None:
                raise TransportError(f"{self.scheme}:// needs ?{name}=")
            return default
        try:
            return int(self.params[name].replace("_", ""), 0)
        except ValueError:
            raise TransportError(f"{name}={self.params[name]!r} is not a number") from None


class Link:
    """One side of a transport: :attr:`memory` at once, the doorbell from :meth:`connect`."""

    layout: str | None = None
    """None: the rpmsg layer lays out the memory (``rpmsg.wiring.host_on``/``remote_on`` with a Profile). A
    transport whose peers fix the layout themselves says here, in words, which it is and what to use instead
    (``openamp://``); ``host_on``/``remote_on`` refuse it with that text."""

    mirrors: bool = False
    """True: :attr:`memory` is this side's own copy, kept in step by messages (``uart:``): only what
    :meth:`declare_writes` names reaches the peer."""

    memory_at_open: bool = True
    """False: :attr:`memory` is known only once connected (``vhost-user:``, the guest's), so ``spy+`` cannot
    watch it."""

    def __init__(self, memory: RegionMemory, role: str) -> None:
        self.memory = memory
        self.role = role
        self._doorbell: Doorbell | None = None

    def declare_writes(self, ranges: list[tuple[int, int]], index_fields: list[int]) -> None:
        """What this side writes ((device address, size) pairs) and where its ring indices are. Shared memory
        needs no such thing; a link that mirrors memory (``uart:``) sends exactly these ranges, indices last.
        Called again once connected, it adds ranges (what this side learnt from the peer's memory)."""

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


Opener = Callable[..., Link]
"""A scheme's ``open_url(url: ParsedUrl, role: str, *, timeout: float, **options) -> Link``."""
