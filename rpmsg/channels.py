"""The channels the peer announced through the name service, either role: :class:`Channels`, the part of
:class:`rpmsg.device.RpmsgDevice` that keeps the registry (bounded by ``limits.channels``), tells the callbacks of
its changes, and waits for a channel by name (``wait_for_channel``, ``open``)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rpmsg.core import ChannelEvent
from rpmsg.errors import RpmsgTimeout
from rpmsg.log_limit import level_for
from rpmsg.protocol import ns_address_problem
from rpmsg.sending import TRACE

if TYPE_CHECKING:
    from rpmsg.endpoint import Endpoint
    from rpmsg.profiles import Limits
    from rpmsg.waiting import Waiter

log = logging.getLogger("rpmsg.device")  # the runner's one logger


class Channels:
    """The channel registry of :class:`rpmsg.device.RpmsgDevice` (a base class of it: what it uses of the device
    is declared below)."""

    if TYPE_CHECKING:
        limits: Limits
        waiting: Waiter
        ns_refused: int
        _lock: threading.RLock
        _channels: dict[str, int]
        _channel_callbacks: list[Callable[[str, int, bool], None]]
        _endpoints: dict[int, Endpoint]

        def check(self) -> None: ...
        def process(self) -> int: ...

    def _channel_event(self, event: ChannelEvent) -> None:
        """The registry: refuse an address no message can go to and a new name beyond ``limits.channels``; a
        create for a known name moves it to the new address (the newest announcement wins, as OpenAMP re-points
        the endpoint of that name); a destroy removes the name only if it names the address it has now. The
        callbacks hear of what changed the registry (or repeated a create), nothing else."""
        channels = self._channels
        log.log(
            TRACE,
            "rpmsg <- name service: %s %r at %#x",
            "destroy" if event.destroy else "create",
            event.name,
            event.addr,
        )
        problem = ns_address_problem(event.addr)
        full = not event.destroy and event.name not in channels and len(channels) >= self.limits.channels
        if problem is None and full:
            problem = f"{len(channels)} channels are announced already (limits.channels)"
        if problem is not None:
            self.ns_refused += 1
            log.log(
                level_for(self.ns_refused),
                "name service: refused %s of %r at %#x: %s (%d refused so far)",
                "destroy" if event.destroy else "create",
                event.name,
                event.addr,
                problem,
                self.ns_refused,
            )
            return
        if event.destroy:
            if channels.get(event.name) != event.addr:
                log.debug("name service: destroy of %r at %#x, not announced there: ignored", event.name, event.addr)
                return
            del channels[event.name]
            # OpenAMP (lib/rpmsg/rpmsg_virtio.c, rpmsg_virtio_ns_callback): the local endpoint of that name bound
            # to that address hears of it through its ns_unbind_cb.
            for ep in list(self._endpoints.values()):
                if ep._on_unbind is not None and ep.name == event.name and ep.peer == event.addr:
                    ep._call_unbind()
        else:
            old = channels.get(event.name)
            if old is not None and old != event.addr:
                log.info("name service: channel %r moves from %#x to %#x", event.name, old, event.addr)
            channels[event.name] = event.addr
        for callback in list(self._channel_callbacks):
            try:
                callback(event.name, event.addr, not event.destroy)
            except Exception:  # a user callback must not stop the device
                log.exception("channel callback failed")

    def channels(self) -> dict[str, int]:
        """Channels the peer announced and has not withdrawn: name -> its address."""
        with self._lock:
            return dict(self._channels)

    def on_channel(self, callback: Callable[[str, int, bool], None]) -> None:
        """Call ``callback(name, addr, created)`` when the peer announces or withdraws a channel."""
        with self._lock:
            self._channel_callbacks.append(callback)

    def wait_for_channel(self, name: str, timeout: float | None = None) -> int:
        """The address of the peer's channel ``name``, waiting for its announcement up to ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                self.check()
                self.process()
                if name in self._channels:
                    return self._channels[name]
                if deadline is not None and time.monotonic() >= deadline:
                    raise RpmsgTimeout(
                        f"no channel {name!r} announced within {timeout} s "
                        f"(announced: {sorted(self._channels) or 'none'})"
                    )
                self.waiting.wait(deadline)
