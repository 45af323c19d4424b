"""Receiving on an rpmsg device through the per-message C path, either role (host or remote): :class:`Receiving`,
the part of :class:`rpmsg.device.RpmsgDevice` that takes a message for one endpoint straight from the ring
(:mod:`rpmsg.fastpath`), takes what is already waiting for a batch (``recv_many``), and hands every message the C
path copied but did not return (a batch, another endpoint's, the name service) to the device's general
delivery (``_handle``: the endpoints' queues and the registry, with their bounds). Where the C path cannot do
exactly what the general path does (messages queued, zero-copy, a pump thread, a callback, tracing, errors) it
returns None and the endpoint takes the general path (``process`` and the core's ``poll``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rpmsg import fastpath
from rpmsg.core import Event, HostCore, Message, RemoteCore
from rpmsg.errors import PeerLost, RemoteProtocolError
from rpmsg.sending import TRACE

if TYPE_CHECKING:
    from rpmsg._endpoint_c import Gate
    from rpmsg.endpoint import Endpoint
    from rpmsg.waiting import Waiter, WaitMode

log = logging.getLogger("rpmsg.device")  # the runner's one logger: its TRACE level chooses the path


class Receiving:
    """The C-path receiving half of :class:`rpmsg.device.RpmsgDevice` (a base class of it: what it uses of the
    device is declared below). ``_take_batch``, ``_take_waiting`` and ``_c_recv_failed`` are called by name by
    the endpoints' C methods (rpmsg/csrc/endpoint*.c)."""

    if TYPE_CHECKING:
        core: HostCore | RemoteCore
        failure: BaseException | None
        waiting: Waiter
        unconfirmed: int
        _lock: threading.RLock
        _closed: bool
        _fast: fastpath.HostFastPath | fastpath.RemoteFastPath | None
        _zero_copy_endpoints: int
        _callback_endpoints: int
        _gate: Gate | fastpath.PyGate

        @property
        def wait_mode(self) -> WaitMode: ...
        @property
        def _zero_copy_filter(self) -> Callable[[int], bool] | None: ...
        def _fail(self, exc: BaseException) -> None: ...
        def _broke(self, exc: RemoteProtocolError) -> PeerLost: ...
        def _flush(self, changed: bool = True) -> None: ...
        def _handle(self, events: list[Event]) -> None: ...
        def _trace_in(self, msg: Message) -> None: ...
        def _c_done(self, rc: int, queue: int) -> int: ...

    def try_recv_c(self, ep: Endpoint, bufsize: int, deadline: float | None) -> tuple[bytes, int] | None:
        """The C path of ``recvfrom``, when there is one: a message for ``ep`` straight from the ring to bytes.
        None hands over to the general path (messages already queued, zero-copy, a pump thread, errors,
        timeouts, tracing), which then does the rest exactly as before. (One method, not a check calling the
        loop: this runs per message.)"""
        fast = self._fast
        if fast is None:
            return None
        waiting = self.waiting
        block = self.wait_mode == "block"
        armed = False  # this pass asks for kicks and, if nothing came, sleeps
        with self._lock:
            while True:
                if (
                    ep._queue
                    or ep.closed
                    or self.failure is not None
                    or self._closed
                    or waiting.pump is not None
                    or self._zero_copy_endpoints
                    or self._callback_endpoints
                    or log.isEnabledFor(TRACE)
                ):
                    return None
                # Blocking: the peer's kicks are asked for only while this thread sleeps (as "spin" does after
                # its spin), so a reply that finds us awake costs the peer no doorbell write. Asking and looking
                # once more is one C call. They stay on while another thread sleeps on the doorbell.
                # (The gate's kicks_on and owner read directly: Waiter's properties cost per message.)
                arm = 1 if armed else -1 if block and self._gate.kicks_on and self._gate.owner is None else 0
                try:
                    n = fast.recv(arm)
                except RemoteProtocolError as exc:
                    raise self._broke(exc) from exc
                if arm:
                    waiting.kicks_on = fast.kicks_on()  # asking may have found messages first: then still off
                if n == fastpath.GENERAL:
                    return None
                if n:
                    if n & (fastpath.NOTIFY | fastpath.MORE):  # (the call only when needed: this runs per message)
                        n = self._c_done(n, fast.recv_queue)
                    if n == 1:
                        got = fast.single(ep.addr, bufsize)
                        if got is not None:
                            return got
                    else:  # a batch all ours: the first, the rest queued as copies the C methods pop (in C)
                        got = ep._queue_batch(n, bufsize)
                        if got is not None:
                            return got
                    self._take_batch(n)
                    armed = False
                    continue
                if armed:
                    armed = False  # kicks asked for, nothing came: sleep
                    left = None if deadline is None else max(0.0, deadline - time.monotonic())
                    waiting.owning(waiting.block, left)
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    return None  # the general path looks once more and raises the timeout
                if self._gate.owner is not None:
                    return None  # another thread waits on the doorbell: wait on the condition, generally
                if block:
                    armed = True
                    continue
                waiting.wait(deadline)

    def take_waiting(self, ep: Endpoint, out: list[tuple[bytes, int]], limit: int, bufsize: int) -> None:
        """:meth:`_take_waiting` (the name the C methods call)."""
        self._take_waiting(ep, out, limit, bufsize)

    def _take_waiting(self, ep: Endpoint, out: list[tuple[bytes, int]], limit: int, bufsize: int) -> None:
        """Append to ``out`` the messages for ``ep`` already there, queued or in the ring, up to ``limit`` in
        all, without waiting (:meth:`Endpoint.recvfrom_many` after its first). Takes at most what is still
        wanted from the ring per pass (with the C path: one C call each). A peer found gone or a ring found
        broken ends the batch, not what it already holds: the next receive raises."""
        fast = self._fast
        with self._lock:
            while len(out) < limit:
                msg = ep._take()
                if msg is not None:
                    try:
                        out.append((bytes(msg.payload[:bufsize]), msg.src))
                    finally:
                        msg.release()
                    continue
                if self.failure is not None or self._closed or ep.closed:
                    return
                want = limit - len(out)
                try:
                    if (
                        fast is not None
                        and self.waiting.pump is None
                        and not self._zero_copy_endpoints
                        and not self._callback_endpoints
                        and not log.isEnabledFor(TRACE)
                    ):
                        n = fast.recv(0, want)
                        if n == fastpath.GENERAL:
                            fast = None
                            continue
                        n = self._c_done(n, fast.recv_queue)
                        if not n:
                            return
                        self._take_batch(n, lambda events: self._handle_into(events, ep, out, limit, bufsize))
                        continue
                    events = self.core.poll(zero_copy=self._zero_copy_filter, limit=want)
                except RemoteProtocolError as exc:
                    self._fail(exc)
                    return
                self._handle_into(events, ep, out, limit, bufsize)
                self._flush(changed=bool(events))
                if not events:
                    return

    def _handle_into(
        self, events: list[Event], ep: Endpoint, out: list[tuple[bytes, int]], limit: int, bufsize: int
    ) -> None:
        """:meth:`_handle`, but ``ep``'s messages go straight into ``out`` (up to ``limit``, as (bytes, src)), as
        the C receive takes them: a message the caller takes now is never queued, so the endpoint's queue bound
        cannot drop it. The rest (beyond ``limit``, others', the name service) is delivered as ever, in order."""
        rest: list[Event] = []
        direct = ep._callback is None and not ep.closed
        for event in events:
            if direct and isinstance(event, Message) and event.dst == ep.addr:
                if len(out) < limit:
                    self._trace_in(event)
                    try:
                        out.append((bytes(event.payload[:bufsize]), event.src))
                    finally:
                        event.release()
                    continue
                direct = False  # this one is queued: the endpoint's later ones queue behind it, in order
            rest.append(event)
        self._handle(rest)

    def _take_batch(self, n: int, handle: Callable[[list[Event]], None] | None = None) -> None:
        """Deliver the ``n`` messages the C path copied into its batch buffer (a batch, or not the caller's) to
        ``handle`` (:meth:`_handle` by default). ``n | MORE`` (a remote whose batch buffer filled before the ring
        emptied): then take the messages still waiting too, as the general path's poll takes every waiting
        message (RemoteCore.poll)."""
        fast = self._fast
        assert fast is not None
        handle = handle or self._handle
        more = n & fastpath.MORE
        handle(self.core._parse_batch(fast.out, fast.lens, n & 0xFFFF, fast.where))
        if more:
            try:
                events = self.core.poll(zero_copy=self._zero_copy_filter)
            except RemoteProtocolError as exc:
                self._fail(exc)  # what was taken is delivered; the next receive reports the broken ring
                return
            handle(events)
            self._flush(changed=bool(events))

    def _c_recv_failed(self, rc: int) -> None:
        """The endpoints' C receive met a broken ring: reported as the Python path does."""
        fast = self._fast
        assert fast is not None
        try:
            fast.recv_fault(rc)
        except RemoteProtocolError as exc:
            raise self._broke(exc) from exc
