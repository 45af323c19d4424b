"""The runner: one rpmsg device (a :class:`HostCore` or :class:`RemoteCore` plus a doorbell) and its endpoints.

Threads
-------
No thread is started unless needed. A thread that waits for a message drives the device itself: it processes
the rings, and when nothing is there it waits on the doorbell (``wait="block"``), spins on the rings
(``"busy"``), or spins a while and then waits (``"spin"``, the default: ~85 ns under load, nothing when idle).
One waiter at a time owns the doorbell; others wait on a condition the owner signals. Only when someone asks
for a pollable descriptor (:meth:`Endpoint.fileno`, or asyncio) does a pump thread start, so that the
descriptor becomes readable even while nobody is receiving.

Per message, a core of the plain class on the C engine goes through :mod:`rpmsg.fastpath` (one C call to send,
one to take in, the wait itself in C); everything else, and every case the C path does not cover, takes the
general path below, on the same rings.

Timeouts are the caller's (``settimeout``); there is no fixed wait anywhere. A doorbell that reports the peer
gone, or a ring the peer broke, makes every waiting and later call raise :class:`PeerLost`.

Bounds
------
What the peer sends lands in two places that grow: the channel registry (name-service announcements) and each
endpoint's receive queue. Both are bounded by :class:`rpmsg.profiles.Limits` (``self.limits``), in
:meth:`_channel_event` and :meth:`Endpoint._enqueue`, which every path reaches: the C paths return a message
straight to the endpoint that asked for it and hand everything else (a batch, a message for another endpoint,
the name service) to :meth:`_take_batch`, i.e. to :meth:`_handle` as the general path does. Beyond a bound,
what the peer sent is dropped and counted, never held: holding its buffer would stall the one ring that every
endpoint and the name service share (docs/reliability.md, "Bounds").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import select
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Literal

from rpmsg import fastpath
from rpmsg.core import ChannelEvent, Event, HostCore, Message, RemoteCore, TxBuffer
from rpmsg.errors import (
    EndpointClosed,
    LocalProtocolError,
    MessageTooLong,
    PeerLost,
    RemoteProtocolError,
    RpmsgTimeout,
    WouldBlock,
)
from rpmsg.log_limit import level_for
from rpmsg.profiles import Limits
from rpmsg.protocol import ADDR_ANY, NS_ADDR, TX_VRING, AddressAllocator, ns_address_problem
from transports.doorbell import Doorbell, PeerLostError
from virtio import DeviceQueue, DriverQueue
from virtio.status import describe

if TYPE_CHECKING:
    from rpmsg._endpoint_c import EndpointBase, Gate
else:
    _endpoint_c = fastpath.endpoint_module()
    EndpointBase = _endpoint_c.EndpointBase if _endpoint_c is not None else object

log = logging.getLogger(__name__)

WaitMode = Literal["block", "spin", "busy"]
ReceiveCallback = Callable[["Endpoint", "bytes | memoryview", int], object]
"""``callback(ep, data, src)``: one received message (OpenAMP's ``rpmsg_ept_cb`` without len and priv; the
return value is ignored). ``data`` is bytes, or on a zero-copy endpoint a read-only view valid until it returns."""
UnbindCallback = Callable[["Endpoint"], object]
"""``on_unbind(ep)``: the peer withdrew the channel this endpoint is bound to (OpenAMP's ``ns_unbind_cb``)."""
TRACE = 5  # below DEBUG: one line per message (`rproc -vvv`, or spy+ transports with logging at level 5)
SPIN_SECONDS = 50e-6
BUSY_SLICE_SECONDS = 0.001  # a busy-polling waiter looks at the doorbell (the peer's end) this often
BUFFER_POLL_SECONDS = 0.005


class RpmsgDevice:
    """Endpoints, channels and the wait loop over one core and one doorbell."""

    def __init__(
        self,
        core: HostCore | RemoteCore,
        doorbell: Doorbell,
        *,
        wait: WaitMode = "spin",
        ns: bool = True,
        limits: Limits | None = None,
    ) -> None:
        if wait not in ("block", "spin", "busy"):
            raise LocalProtocolError(f"wait mode {wait!r} is not block, spin or busy")
        self.core = core
        # What the endpoints' C methods (rpmsg/csrc/endpoint*.c) use: kept by _update_gate.
        module = fastpath.endpoint_module()
        self._gate: Gate | fastpath.PyGate = module.Gate() if module is not None else fastpath.PyGate()
        self._gate_attached = False
        self.doorbell = doorbell
        self.wait_mode = wait
        self.ns = ns
        self.limits = Limits() if limits is None else limits  # what the peer can make this device hold
        self.ns_refused = 0  # name-service messages refused: an invalid address, or the channel limit reached
        self.queue_dropped = 0  # messages dropped because their endpoint's queue was full (all endpoints)
        self.unbound_dropped = 0  # messages dropped because no endpoint is bound at their destination
        self.callback_errors = 0  # receive and unbind callbacks that raised (all endpoints)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._endpoints: dict[int, Endpoint] = {}
        self._addresses = AddressAllocator()
        self._channels: dict[str, int] = {}
        self._channel_callbacks: list[Callable[[str, int, bool], None]] = []
        self._doorbell_owner: threading.Thread | None = None
        self._pump: threading.Thread | None = None
        self._closed = False
        self._closing = False  # close() runs: a peer found gone now ended in order too (no warning)
        self._next_doorbell_check = 0.0
        self._zero_copy_endpoints = 0
        self._callback_endpoints = 0  # endpoints whose messages go to a callback: the Python path delivers them
        self._buffer_fd: int | None = None  # readable when the pump woke while async senders wait for a buffer
        self._async_senders = 0
        # Wakes the thread blocked on the doorbell when another thread took in its message, or at close.
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self.failure: BaseException | None = None
        self._salvaged = False
        self.unconfirmed = 0
        self._fast = self._make_fast()

    @property
    def limits(self) -> Limits:
        return self._limits

    @limits.setter
    def limits(self, limits: Limits) -> None:
        if not isinstance(limits, Limits):
            raise LocalProtocolError(f"limits must be an rpmsg.Limits, not {limits!r}")
        self._limits = limits

    @property
    def wait_mode(self) -> WaitMode:
        return self._wait_mode

    @wait_mode.setter
    def wait_mode(self, mode: WaitMode) -> None:
        self._wait_mode: WaitMode = mode
        self._gate.block = mode == "block"

    @property
    def _kicks_on(self) -> bool:
        """Whether we asked the peer to kick us for new messages (kept in the gate: the C methods change it)."""
        return bool(self._gate.kicks_on)

    @_kicks_on.setter
    def _kicks_on(self, on: bool) -> None:
        self._gate.kicks_on = on

    def _make_fast(self) -> fastpath.HostFastPath | fastpath.RemoteFastPath | None:
        """The per-message path in C, where it does exactly what the general path does: a core on the C engine
        with a doorbell that carries no memory. (Zero-copy receives and tracing are checked per call.) It is
        also what the endpoints' C methods use, when C can kick the doorbell (fastpath: c_doorbell_of)."""
        fast = self._make_fast_path()
        self._gate.detach()
        self._gate_attached = fast is not None and fast.attach(
            self._gate, self._lock, log.isEnabledFor, TRACE, self, self._changed
        )
        self._update_gate()
        return fast

    def _make_fast_path(self) -> fastpath.HostFastPath | fastpath.RemoteFastPath | None:
        core = self.core
        if not fastpath.enabled() or self._publish is not None:
            return None
        # A subclass (a conformance peer broken on purpose, a quirk model) overrides what the C path would skip.
        try:
            if type(core) is HostCore:
                return fastpath.HostFastPath(core, self._doorbell, self._wake_fd)
            if type(core) is RemoteCore:
                return fastpath.RemoteFastPath(core, self._doorbell, self._wake_fd)
        except ImportError:
            pass  # the Python engine, or no compiled module
        return None

    def _update_gate(self) -> None:
        """Open the endpoints' C methods exactly while the Python path would take their case the same way:
        attached, and no failure, close, pump thread, zero-copy receiver or receive callback (each of which it
        must see)."""
        self._gate.open = (
            self._gate_attached
            and self.failure is None
            and not self._closed
            and self._pump is None
            and not self._zero_copy_endpoints
            and not self._callback_endpoints
        )

    # --- lifecycle -------------------------------------------------------------------------------------------
    def start(self) -> None:
        """Host: post buffers and kick vring 0. Remote: nothing to do (construct the core after DRIVER_OK)."""
        with self._lock:
            if isinstance(self.core, HostCore) and not self.core.started:
                self.core.start()
            self._flush()

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closing = True
            for ep in list(self._endpoints.values()):
                ep.close(timeout=0)  # announce the end only if a buffer is free right now: the peer may be gone
            self._closed = True
            self._update_gate()
            self._changed.notify_all()
            # A thread may be blocked on the doorbell: wake it and let it leave before the descriptors go.
            os.eventfd_write(self._wake_fd, 1)
            deadline = time.monotonic() + 2
            while self._doorbell_owner is not None and time.monotonic() < deadline:
                self._changed.wait(0.05)
        if self._pump is not None and self._pump is not threading.current_thread():
            self._pump.join(timeout=2)
        with self._lock:
            self._gate.detach()
            if self._fast is not None:
                self._fast.close()
            self.core.close()
            self.doorbell.close()
            os.close(self._wake_fd)
            if self._buffer_fd is not None:
                os.close(self._buffer_fd)
                self._buffer_fd = None

    def __enter__(self) -> RpmsgDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- driving the rings -----------------------------------------------------------------------------------
    def _check(self) -> None:
        if self.failure is not None:
            raise PeerLost(f"rpmsg device unusable: {self.failure}", unconfirmed=self.unconfirmed) from self.failure
        if self._closed:
            raise EndpointClosed("the rpmsg device is closed")

    @property
    def doorbell(self) -> Doorbell:
        return self._doorbell

    @doorbell.setter
    def doorbell(self, doorbell: Doorbell) -> None:
        self._doorbell = doorbell
        # A doorbell that carries memory too (uart:, transports.mirror) must publish what this side wrote even
        # when no kick is due — a reply into a buffer the peer polls, a re-posted buffer, the flag asking the
        # peer to kick — or the peer never sees it. Shared-memory doorbells have no such method.
        self._publish: Callable[[], None] | None = getattr(doorbell, "publish", None)
        if hasattr(self, "_fast"):
            if self._fast is not None:
                self._fast.close()
            self._fast = self._make_fast()  # it polls the doorbell's descriptors

    def _flush(self, changed: bool = True) -> None:
        """Kick the peer for what the core asked; else, if the rings changed, publish them (mirroring doorbells)."""
        intents = self.core.take_intents()
        try:
            for queue in intents:
                self.doorbell.notify(queue)  # a mirroring doorbell publishes before it kicks
            if not intents and changed and self._publish is not None:
                self._publish()
        except PeerLostError as exc:
            self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        if self.failure is None:
            if self._closing:  # both sides closing in order: the other one was first; nothing for a user to do
                log.info("rpmsg device closing, the peer had already gone: %s", exc)
            else:
                log.warning("rpmsg device lost: %s", exc)
            self.failure = exc
            self._update_gate()
            # What the peer took with it: sends whose buffers never came back (host side; a remote's sends
            # land in buffers the host owns and re-posts, so it cannot tell).
            unconfirmed = getattr(self.core, "unconfirmed", None)
            self.unconfirmed = unconfirmed() if callable(unconfirmed) else 0
        self._changed.notify_all()
        self._wake_owner()
        for ep in self._endpoints.values():
            ep._wake()

    def _broke(self, exc: RemoteProtocolError) -> PeerLost:
        """The peer broke a ring this call met (sending or receiving): the device fails, and this is the PeerLost
        the call raises (every later call raises one too, from _check)."""
        self._fail(exc)
        return PeerLost(f"the peer broke the rings: {exc}", unconfirmed=self.unconfirmed)

    def process(self) -> int:
        """Take in whatever the peer sent; returns how many events were handled."""
        with self._lock:
            self._check()
            try:
                events = self.core.poll(zero_copy=self._zero_copy_filter)
            except RemoteProtocolError as exc:
                self._fail(exc)
                raise PeerLost(f"the peer broke the rings: {exc}", unconfirmed=self.unconfirmed) from exc
            self._handle(events)
            self._flush(changed=bool(events))
            return len(events)

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ChannelEvent):
                self._channel_event(event)
            else:
                self._deliver(event)
        if events:
            self._changed.notify_all()
            self._wake_owner()

    def _fast_recvfrom(self, ep: Endpoint, bufsize: int, deadline: float | None) -> tuple[bytes, int] | None:
        """The C path of ``recvfrom``: a message for ``ep`` straight from the ring to bytes. None hands over to
        the general path (messages already queued, zero-copy, a pump thread, errors, timeouts, tracing), which
        then does the rest exactly as before."""
        fast = self._fast
        assert fast is not None
        block = self.wait_mode == "block"
        armed = False  # this pass asks for kicks and, if nothing came, sleeps
        with self._lock:
            while True:
                if (
                    ep._queue
                    or ep.closed
                    or self.failure is not None
                    or self._closed
                    or self._pump is not None
                    or self._zero_copy_endpoints
                    or self._callback_endpoints
                    or log.isEnabledFor(TRACE)
                ):
                    return None
                # Blocking: the peer's kicks are asked for only while this thread sleeps (as "spin" does after
                # its spin), so a reply that finds us awake costs the peer no doorbell write. Asking and looking
                # once more is one C call. They stay on while another thread sleeps on the doorbell.
                arm = 1 if armed else -1 if block and self._kicks_on and self._doorbell_owner is None else 0
                try:
                    n = fast.recv(arm)
                except RemoteProtocolError as exc:
                    self._fail(exc)
                    raise PeerLost(f"the peer broke the rings: {exc}", unconfirmed=self.unconfirmed) from exc
                if arm:
                    self._kicks_on = fast.kicks_on()  # asking may have found messages first: then still off
                if n == fastpath.GENERAL:
                    return None
                if n:
                    if n & fastpath.NOTIFY:
                        self._kick(fast.recv_queue)
                    n &= 0xFFFF
                    if n == 1:
                        got = fast.single(ep.addr, bufsize)
                        if got is not None:
                            return got
                    self._take_batch(n)
                    armed = False
                    continue
                if armed:
                    armed = False  # kicks asked for, nothing came: sleep
                    with self._doorbell_owned():
                        self._block(None if deadline is None else max(0.0, deadline - time.monotonic()))
                    continue
                if deadline is not None and time.monotonic() >= deadline:
                    return None  # the general path looks once more and raises the timeout
                if self._doorbell_owner is not None:
                    return None  # another thread waits on the doorbell: wait on the condition, generally
                if block:
                    armed = True
                    continue
                self._wait(deadline)

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
                        and self._pump is None
                        and not self._zero_copy_endpoints
                        and not self._callback_endpoints
                        and not log.isEnabledFor(TRACE)
                    ):
                        n = fast.recv(0, want)
                        if n == fastpath.GENERAL:
                            fast = None
                            continue
                        if n & fastpath.NOTIFY:
                            self._kick(fast.recv_queue)
                        n &= 0xFFFF
                        if not n:
                            return
                        self._take_batch(n)
                        continue
                    events = self.core.poll(zero_copy=self._zero_copy_filter, limit=want)
                except RemoteProtocolError as exc:
                    self._fail(exc)
                    return
                self._handle(events)
                self._flush(changed=bool(events))
                if not events:
                    return

    def _take_batch(self, n: int) -> None:
        """Deliver the ``n`` messages the C path copied into its batch buffer (a batch, or not the caller's)."""
        fast = self._fast
        assert fast is not None
        self._handle(self.core._parse_batch(fast.out, fast.lens, n, fast.where))

    def _c_recv_failed(self, rc: int) -> None:
        """The endpoints' C receive met a broken ring: reported as the Python path does."""
        fast = self._fast
        assert fast is not None
        try:
            fast.recv_fault(rc)
        except RemoteProtocolError as exc:
            self._fail(exc)
            raise PeerLost(f"the peer broke the rings: {exc}", unconfirmed=self.unconfirmed) from exc

    def _c_send_failed(self, rc: int) -> None:
        """The endpoints' C send met a broken ring: reported as the Python path does."""
        fast = self._fast
        assert fast is not None
        try:
            fast.send_fault(rc)
        except RemoteProtocolError as exc:
            raise self._broke(exc) from exc

    @contextlib.contextmanager
    def _doorbell_owned(self) -> Iterator[None]:
        """This thread owns the doorbell and waits without the lock (entered and left with the lock held); a
        peer found gone meanwhile fails the device. Other waiters wait on the condition, notified at the end."""
        self._doorbell_owner = threading.current_thread()
        self._lock.release()
        try:
            yield
        except PeerLostError as exc:
            with self._lock:
                if not self._closed:
                    self._fail(exc)
        finally:
            self._lock.acquire()
            self._doorbell_owner = None
            self._changed.notify_all()

    def _kick(self, queue: int) -> None:
        try:
            self.doorbell.notify(queue)
        except PeerLostError as exc:
            self._fail(exc)

    def _salvage(self) -> bool:
        """After the peer is lost: take in, once, the messages it left in the rings (the memory is still mapped).
        True if that delivered anything. A ring the peer broke is not read again."""
        if self._salvaged or self._closed or isinstance(self.failure, RemoteProtocolError):
            return False
        self._salvaged = True
        try:
            events = self.core.poll(zero_copy=self._zero_copy_filter)
        except RemoteProtocolError:
            return False
        for event in events:
            if isinstance(event, ChannelEvent):
                self._channel_event(event)
            else:
                self._deliver(event)
        return bool(events)

    def _wake_owner(self) -> None:
        """The doorbell owner sleeps in select, not on the condition: a message another thread took in may be
        its own, so wake it to look."""
        owner = self._doorbell_owner
        if owner is not None and owner is not threading.current_thread() and not self._closed:
            os.eventfd_write(self._wake_fd, 1)

    def _block(self, timeout: float | None) -> None:
        """Sleep until the peer kicks, another thread wakes us, or ``timeout``; PeerLostError if the peer left."""
        if self._fast is not None:  # the same wait in C: ppoll on both descriptors, an eventfd's kick read there
            if self._fast.wait(0, True, -1 if timeout is None else int(timeout * 1e9)) == fastpath.DOORBELL:
                self.doorbell.wait(0)  # not a kick read in C: the doorbell's own check (the peer's end?)
            return
        if self._publish is not None:
            self._publish()  # the flag that asks the peer to kick us was just set: the peer must see it
        ready, _, _ = select.select([self.doorbell.fileno(), self._wake_fd], [], [], timeout)
        if self._wake_fd in ready:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._wake_fd)
        if self.doorbell.fileno() in ready:
            self.doorbell.wait(0)  # consumes the kick; raises PeerLostError at end of file

    def _wants_zero_copy(self, dst: int) -> bool:
        ep = self._endpoints.get(dst)
        return ep is not None and ep.zero_copy

    @property
    def _zero_copy_filter(self) -> Callable[[int], bool] | None:
        """None (the batch-copy fast path) unless some endpoint receives zero-copy."""
        return self._wants_zero_copy if self._zero_copy_endpoints else None

    def _deliver(self, msg: Message) -> None:
        if log.isEnabledFor(TRACE):
            log.log(
                TRACE,
                "rpmsg <- %#x to %#x, %d bytes: %s",
                msg.src,
                msg.dst,
                len(msg.payload),
                bytes(msg.payload[:32]).hex(" "),
            )
        ep = self._endpoints.get(msg.dst)
        if ep is None or ep.closed:
            self.unbound_dropped += 1
            log.log(
                logging.INFO if self.unbound_dropped & (self.unbound_dropped - 1) == 0 else logging.DEBUG,
                "message from %#x to unbound address %#x dropped (%d so far)",
                msg.src,
                msg.dst,
                self.unbound_dropped,
            )
            msg.release()
            return
        if ep._callback is not None:
            ep._call(ep._callback, msg)
            return
        ep._enqueue(msg)

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

    def _wait(self, deadline: float | None, *, for_buffer: bool = False) -> None:
        """Wait for something to happen (called with the lock held, returns with it held); the caller looks at
        the rings again. ``for_buffer``: what is awaited is a send buffer coming back, not a message."""
        if self._closed:  # by a callback run while processing: its doorbell is gone
            raise EndpointClosed("the rpmsg device is closed")
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        fast = self._fast
        if self.wait_mode == "busy":
            self._kicks(False)  # we poll anyway: spare the peer a doorbell write per message
            self._lock.release()
            try:
                if fast is not None:
                    # Spin in C (the GIL released) until the ring has entries or a slice is over.
                    slice_s = BUSY_SLICE_SECONDS if remaining is None else min(remaining, BUSY_SLICE_SECONDS)
                    fast.wait(int(slice_s * 1e9), False, -1, watch_send=for_buffer)
                now = time.monotonic()
                if now >= self._next_doorbell_check:
                    # Busy-polling never blocks on the doorbell, so look at it now and then: it is what says
                    # that the peer is gone (and it drains the kicks we do not need).
                    self._next_doorbell_check = now + BUSY_SLICE_SECONDS
                    self.doorbell.wait(0)
                    time.sleep(0)  # let other threads of this process run now and then
            except PeerLostError as exc:
                with self._lock:
                    if not self._closed:
                        self._fail(exc)
            finally:
                self._lock.acquire()
            if fast is None:
                self.process()
            return
        if self._pump is not None or self._doorbell_owner is not None:
            self._changed.wait(remaining)
            return
        with self._doorbell_owned():
            if self.wait_mode == "spin":
                with self._lock:
                    self._kicks(False)
                if fast is not None:
                    spin = SPIN_SECONDS if remaining is None else min(remaining, SPIN_SECONDS)
                    if fast.wait(int(spin * 1e9), False, -1, watch_send=for_buffer) == fastpath.READY:
                        return
                else:
                    stop = time.perf_counter() + SPIN_SECONDS
                    while time.perf_counter() < stop:
                        if self.process():
                            return
            with self._lock:
                if self._kicks(True):
                    return  # a message arrived between the last poll and asking for kicks
            self._block(remaining)
        if fast is None:
            self.process()

    def request_kicks(self, on: bool) -> None:
        """Ask the peer to notify (kick) us for new messages, or not; the wait loop changes this itself as
        it spins or blocks, so this only sets where it starts from."""
        with self._lock:
            self._kicks(on)

    def _kicks(self, on: bool) -> bool:
        """Turn the peer's kicks for new messages on or off; True if messages are already waiting. Never off
        while another thread (or the pump) sleeps on the doorbell: it waits for exactly those kicks."""
        if on == self._kicks_on:
            return False
        owner = self._doorbell_owner
        if not on and (self._pump is not None or (owner is not None and owner is not threading.current_thread())):
            return False
        self._kicks_on = on
        try:
            return self.core.notifications(on)
        except Exception:  # a broken ring shows up in process(), which reports it properly
            return True

    def _ensure_pump(self) -> None:
        with self._lock:
            if self._pump is None and not self._closed:
                self._pump = threading.Thread(target=self._run_pump, name="rpmsg-pump", daemon=True)
                self._update_gate()
                self._pump.start()

    def _run_pump(self) -> None:
        while True:
            with self._lock:
                if self._closed or self.failure is not None:
                    return
                self._kicks(True)
            try:
                self.process()
                self._block(0.05)
                if self._async_senders:
                    self._wake_async_senders()
            except PeerLostError as exc:
                with self._lock:
                    self._fail(exc)
                return
            except (PeerLost, EndpointClosed):
                return

    # --- async sending ---------------------------------------------------------------------------------------
    def _wake_async_senders(self) -> None:
        with self._lock:
            if self._buffer_fd is not None:
                os.eventfd_write(self._buffer_fd, 1)

    async def _await_buffer(self, wait: float) -> None:
        """Let the event loop run until a send buffer may have come back: the pump thread woke (a kick, such as
        the one asked for here when the peer gives buffers back), or ``wait`` seconds passed (a peer that never
        kicks after consuming, as for a blocking send: BUFFER_POLL_SECONDS)."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._check()
            if self._buffer_fd is None:
                self._buffer_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            fd = self._buffer_fd
            self._async_senders += 1
            try:
                back = self.core.want_buffer_wakeup(True)
            except RemoteProtocolError as exc:
                self._async_senders -= 1
                raise self._broke(exc) from exc
        try:
            if back:
                return  # buffers came back meanwhile
            self._ensure_pump()
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _set_once, ready)
            try:
                await asyncio.wait_for(ready, wait)
            except asyncio.TimeoutError:  # not TimeoutError before Python 3.11
                pass
            finally:
                loop.remove_reader(fd)
        finally:
            with self._lock:
                self._async_senders -= 1
                if not self._async_senders and not self._closed:
                    self.core.want_buffer_wakeup(False)
                    if self._buffer_fd is not None:
                        with contextlib.suppress(BlockingIOError):
                            os.eventfd_read(self._buffer_fd)

    # --- sending ---------------------------------------------------------------------------------------------
    def _fast_send(self, src: int, dst: int, data: bytes | bytearray | memoryview) -> bool:
        """The C path of a send; False hands over to :meth:`send` (no free buffer, too long, tracing)."""
        fast = self._fast
        assert fast is not None
        if len(data) > fast.max_payload or log.isEnabledFor(TRACE):
            return False
        with self._lock:
            if self.failure is not None or self._closed:
                return False  # the general path raises what it should
            try:
                sent = fast.send(src, dst, data)
            except RemoteProtocolError as exc:
                raise self._broke(exc) from exc
            if sent <= 0:
                return False  # no buffer free (the general path waits for one), or the general path's case
            if sent & fastpath.NOTIFY:
                self._kick(fast.send_queue)
        return True

    def send(self, src: int, dst: int, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                self._check()
                try:
                    try:
                        self.core.send(src, dst, data)
                    except RemoteProtocolError as exc:
                        raise self._broke(exc) from exc
                    if log.isEnabledFor(TRACE):
                        log.log(
                            TRACE, "rpmsg -> %#x to %#x, %d bytes: %s", src, dst, len(data), bytes(data[:32]).hex(" ")
                        )
                    self._flush()
                    return
                except WouldBlock:
                    self._wait_for_buffer(deadline)

    def send_many(
        self, src: int, dst: int, payloads: Sequence[bytes | bytearray | memoryview], timeout: float | None
    ) -> int:
        """Send ``payloads`` in order, as many as buffers allow per publish (one publish and at most one kick
        each time), waiting for buffers as :meth:`send` does; returns how many were sent: all of them, or fewer
        when ``timeout`` ran out after some went (none: RpmsgTimeout), or (remote) when the host's buffer is too
        small for the next (sending that one again raises MessageTooLong). Every size is checked first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fast = self._fast
        done = 0
        with self._lock:
            while done < len(payloads):
                self._check()
                rest = payloads[done:] if done else payloads
                try:
                    k = fastpath.GENERAL
                    if fast is not None and not log.isEnabledFor(TRACE) and max(map(len, rest)) <= fast.max_payload:
                        k = fast.send_many(src, dst, rest)
                    if k == fastpath.GENERAL:
                        k = self.core.send_many(src, dst, rest)
                        self._flush()
                    elif k & fastpath.NOTIFY:
                        self._kick(fast.send_queue)  # type: ignore[union-attr]
                except RemoteProtocolError as exc:
                    raise self._broke(exc) from exc
                except MessageTooLong:
                    if done:
                        return done  # the remote's next host buffer is too small: the next call says so
                    raise
                k &= 0xFFFF
                if k and log.isEnabledFor(TRACE):
                    for p in rest[:k]:
                        log.log(TRACE, "rpmsg -> %#x to %#x, %d bytes: %s", src, dst, len(p), bytes(p[:32]).hex(" "))
                done += k
                if done < len(payloads) and not k:
                    try:
                        self._wait_for_buffer(deadline)
                    except RpmsgTimeout:
                        if done:
                            return done
                        raise
        return done

    def get_buffer(self, timeout: float | None) -> TxBuffer:
        if not isinstance(self.core, HostCore):
            raise LocalProtocolError(
                "zero-copy send buffers belong to the host: the remote writes into the "
                "host's receive buffers (use send)"
            )
        deadline = None if timeout is None else time.monotonic() + timeout
        fast = self._fast if isinstance(self._fast, fastpath.HostFastPath) else None
        with self._lock:
            while True:
                self._check()
                try:
                    if fast is not None:
                        addr = fast.take()
                        if addr is not None:
                            return fast.buffer(addr)
                    return self.core.get_tx_buffer()
                except WouldBlock:
                    self._wait_for_buffer(deadline)
                except RemoteProtocolError as exc:
                    raise self._broke(exc) from exc

    def send_buffer(self, buf: TxBuffer, src: int, dst: int, length: int, *, reserved: int = 0) -> None:
        fast = self._fast if isinstance(self._fast, fastpath.HostFastPath) else None
        with self._lock:
            self._check()
            if not isinstance(self.core, HostCore):
                raise LocalProtocolError("only the host has send buffers")
            try:
                if fast is not None and not log.isEnabledFor(TRACE):
                    self.core.check_tx_buffer(buf, length)
                    buf._finish()
                    if fast.send_buffer(buf.addr, src, dst, length, reserved) & fastpath.NOTIFY:
                        self._kick(TX_VRING)
                    return
                self.core.send_buffer(buf, src, dst, length, reserved=reserved)
            except RemoteProtocolError as exc:
                raise self._broke(exc) from exc
            self._flush()

    def rearm(self, buf: TxBuffer) -> bool:
        """Point a sent ``buf`` at a send buffer free now (host): True, or False when none is (never waits)."""
        if not buf.done:
            raise LocalProtocolError("this TX buffer was not sent: send it first")
        try:
            fresh = self.get_buffer(0)
        except RpmsgTimeout:
            return False
        buf.addr, buf.view, buf.capacity, buf.done = fresh.addr, fresh.view, fresh.capacity, False
        return True

    def _wait_for_buffer(self, deadline: float | None) -> None:
        if deadline is not None and time.monotonic() >= deadline:
            if isinstance(self.core, RemoteCore):
                raise RpmsgTimeout("no host receive buffer became free in time: the host is not posting any")
            raise RpmsgTimeout("no send buffer became free in time: the peer is not consuming")
        if self.core.want_buffer_wakeup(True):
            return  # buffers came back meanwhile
        # Bounded: RPMsg-Lite without RL_ALLOW_CONSUMED_BUFFERS_NOTIFICATION never kicks after consuming, so
        # look at the used ring again every few milliseconds instead of waiting for a kick that may not come.
        poll = time.monotonic() + BUFFER_POLL_SECONDS
        try:
            self._wait(poll if deadline is None else min(deadline, poll), for_buffer=True)
            if self._fast is not None:
                self.process()  # the C wait only waits: take in what arrived meanwhile (it may be the peer's end)
        finally:
            self.core.want_buffer_wakeup(False)

    # --- endpoints and channels ------------------------------------------------------------------------------
    def endpoint(
        self,
        name: str = "",
        *,
        addr: int = ADDR_ANY,
        peer: int | None = None,
        announce: bool | None = None,
        zero_copy: bool = False,
        timeout: float | None = None,
        max_queued: int | None = None,
        max_queued_bytes: int | None = None,
        callback: ReceiveCallback | None = None,
        on_unbind: UnbindCallback | None = None,
    ) -> Endpoint:
        """Bind a local endpoint (a dynamic address from 1024 unless ``addr`` is given). With a ``name`` and the
        name service on, the remote role announces it (``announce`` overrides), waiting up to ``timeout`` for a
        host buffer to announce in. ``max_queued``/``max_queued_bytes``: this endpoint's receive queue bound
        (None: the device's ``limits``). ``callback``/``on_unbind``: see :meth:`Endpoint.set_callback`."""
        _check_callback(callback, "callback")
        _check_callback(on_unbind, "on_unbind")
        _check_bound(max_queued, "max_queued")
        _check_bound(max_queued_bytes, "max_queued_bytes")  # before an address is taken
        with self._lock:
            self._check()
            if addr == ADDR_ANY:
                addr = self._addresses.allocate()
            else:
                if addr == NS_ADDR:
                    raise LocalProtocolError(f"address {NS_ADDR} is the name service")
                self._addresses.claim(addr)
            ep = Endpoint(self, addr, name, peer, zero_copy)
            ep.max_queued, ep.max_queued_bytes = max_queued, max_queued_bytes
            self._endpoints[addr] = ep
            if callback is not None or on_unbind is not None:
                ep.set_callback(callback, on_unbind=on_unbind)
            self._zero_copy_endpoints += zero_copy
            self._update_gate()
            if announce is None:
                announce = bool(name) and self.ns and isinstance(self.core, RemoteCore)
        if announce:
            try:
                self._announce(name, addr, destroy=False, timeout=timeout)
            except BaseException:
                self._remove(ep)
                raise
            ep.announced = True
        return ep

    def _announce(self, name: str, addr: int, *, destroy: bool, timeout: float | None = None) -> None:
        from rpmsg.protocol import pack_ns

        self.send(addr, NS_ADDR, pack_ns(name, addr, destroy), timeout=timeout)

    def _remove(self, ep: Endpoint) -> None:
        with self._lock:
            if self._endpoints.get(ep.addr) is ep:
                del self._endpoints[ep.addr]
                self._addresses.release(ep.addr)
                self._zero_copy_endpoints -= ep.zero_copy
                self._callback_endpoints -= ep._callback is not None
                self._update_gate()

    # --- state -----------------------------------------------------------------------------------------------
    def state(self) -> dict[str, object]:
        """A JSON-serialisable snapshot of the device: its vrings (the shared indices and flags as they are in
        memory now, this side's own, descriptors in flight, broken or not and why), endpoints, channels, the
        buffers this side holds and its counters (docs/rpmsg.md, "State")."""
        with self._lock:
            core = self.core
            host = isinstance(core, HostCore)
            out: dict[str, object] = {
                "role": "host" if host else "remote",
                "closed": self._closed,
                "failure": None if self.failure is None else str(self.failure),
                "wait_mode": self.wait_mode,
                "c_path": self._fast is not None,
                "endpoint_c_methods": bool(self._gate.open),
                "pump_thread": self._pump is not None,
                "endpoints": [ep._state() for ep in sorted(self._endpoints.values(), key=lambda e: e.addr)],
                "channels": dict(sorted(self._channels.items())),
                "counters": {
                    "queue_dropped": self.queue_dropped,
                    "unbound_dropped": self.unbound_dropped,
                    "ns_refused": self.ns_refused,
                    "malformed_dropped": core.dropped,
                    "callback_errors": self.callback_errors,
                    "unconfirmed": self.unconfirmed,
                },
            }
            if self._closed:
                out["vrings"] = []  # the memory is let go of
                out["buffers"] = {}
                return out
            if isinstance(core, HostCore):
                queues: list[tuple[str, DriverQueue | DeviceQueue]] = [("rx", core.rx), ("tx", core.tx)]
                rx_posted = core.rx.num - core.rx.num_free
                tx_free = len(core.tx.pool)
                tx_in_flight = core.tx.num - core.tx.num_free
                out["buffers"] = {
                    "rx_count": core.rx_count,
                    "rx_size": core.rx_size,
                    "rx_posted": rx_posted,
                    "rx_held": core.rx_count - rx_posted,  # zero-copy messages not released yet
                    "tx_count": core.tx_count,
                    "tx_size": core.tx_size,
                    "tx_free": tx_free,
                    "tx_in_flight": tx_in_flight,  # sent, not given back by the remote yet
                    "tx_held": core.tx_count - tx_free - tx_in_flight,  # get_buffer() not sent yet
                }
            else:
                queues = [("rx", core.to_host), ("tx", core.from_host)]
                out["buffers"] = {
                    "from_host_held": _device_in_flight(core.from_host),  # zero-copy messages not released yet
                    "to_host_spare": core._spare is not None,  # a host buffer too small for the last send
                }
            out["vrings"] = [_queue_state(name, q, host) for name, q in queues]
            return out

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
                self._check()
                self.process()
                if name in self._channels:
                    return self._channels[name]
                if deadline is not None and time.monotonic() >= deadline:
                    raise RpmsgTimeout(
                        f"no channel {name!r} announced within {timeout} s "
                        f"(announced: {sorted(self._channels) or 'none'})"
                    )
                self._wait(deadline)

    def open(
        self,
        name: str,
        timeout: float | None = None,
        *,
        zero_copy: bool = False,
        max_queued: int | None = None,
        max_queued_bytes: int | None = None,
        callback: ReceiveCallback | None = None,
        on_unbind: UnbindCallback | None = None,
    ) -> Endpoint:
        """A local endpoint connected to the peer's channel ``name`` (waiting for it to be announced)."""
        remote = self.wait_for_channel(name, timeout)
        return self.endpoint(
            name,
            peer=remote,
            announce=False,
            zero_copy=zero_copy,
            max_queued=max_queued,
            max_queued_bytes=max_queued_bytes,
            callback=callback,
            on_unbind=on_unbind,
        )


def _check_bound(value: int | None, name: str) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise LocalProtocolError(f"{name} must be None (the device's limits) or an int >= 1, not {value!r}")


def _field(state: dict[str, object], key: str) -> int:
    value = state[key]
    assert isinstance(value, int)
    return value


def _device_in_flight(q: DeviceQueue) -> int:
    """Chains a device side popped and has not pushed back."""
    st = q.state()
    return (_field(st, "last_avail") - _field(st, "used_shadow")) & 0xFFFF


def _queue_state(name: str, q: DriverQueue | DeviceQueue, host: bool) -> dict[str, object]:
    """One vring for :meth:`RpmsgDevice.state`: what is in shared memory now (avail and used flags and idx) and
    this side's own view of it."""
    layout = q.layout
    avail_flags, avail_idx = struct.unpack("<HH", q.memory.read(layout.avail, 4))
    used_flags, used_idx = struct.unpack("<HH", q.memory.read(layout.used, 4))
    st = q.state()
    err = _field(st, "err")
    driver = isinstance(q, DriverQueue)
    out: dict[str, object] = {
        "index": q.index,
        "name": name,  # from the host's point of view: vring 0 carries the remote's messages to the host
        "side": "driver" if driver else "device",
        "engine": q.backend,
        "num": q.num,
        "desc": layout.desc,
        "avail": {"idx": avail_idx, "flags": avail_flags},
        "used": {"idx": used_idx, "flags": used_flags},
        "event_idx": q.event_idx,
        "broken": bool(st["broken"]),
        "error": describe(err, _field(st, "err_where"), _field(st, "err_value")) if err else None,
    }
    if isinstance(q, DriverQueue):
        out["last_used"] = st["last_used"]  # the next used entry this side will read
        out["in_flight"] = q.num - _field(st, "num_free")  # descriptors the peer holds
    else:
        out["last_avail"] = st["last_avail"]  # the next avail entry this side will read
        out["in_flight"] = _device_in_flight(q)  # chains this side holds
    out["notifications_suppressed"] = bool(st["suppressed"])
    return out


def _check_callback(fn: object, name: str) -> None:
    if fn is not None and not callable(fn):
        raise LocalProtocolError(f"{name} must be None or callable, not {fn!r}")


def _check_bufsize(size: int, call: str) -> None:
    if size < 0:
        raise ValueError(f"negative buffersize in {call}")  # as socket's (a slice would take all but the end)


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Endpoint(EndpointBase):
    """A socket-like rpmsg endpoint: ``send``/``sendto``, ``recv``/``recvfrom``/``recv_into``, timeouts,
    ``fileno()`` for selectors and asyncio, zero-copy buffers, iteration and ``with``.

    ``send``, ``sendto``, ``recv`` and ``recvfrom`` are the ``_*_py`` methods below. When rpmsg._endpoint_c is
    built they are its C methods (the base class), which do the common case themselves (either role) while the
    device's gate is open and otherwise call the ``_*_py`` method with the same arguments."""

    def __init__(self, device: RpmsgDevice, addr: int, name: str, peer: int | None, zero_copy: bool) -> None:
        gate = device._gate
        if not isinstance(gate, fastpath.PyGate):
            self._gate = gate
        self.device = device
        self.addr = addr
        self.name = name
        self.peer = peer
        self.zero_copy = zero_copy
        self.announced = False
        self.closed = False
        self._queue: deque[Message] = deque()
        self._queued_bytes = 0
        self._max_queued: int | None = None
        self._max_queued_bytes: int | None = None
        self.dropped = 0  # messages dropped because the receive queue was full
        self._timeout: float | None = None
        self._fd: int | None = None
        self._callback: ReceiveCallback | None = None
        self._on_unbind: UnbindCallback | None = None
        self.callback_errors = 0  # calls of this endpoint's callbacks that raised

    def __repr__(self) -> str:
        peer = f"{self.peer:#x}" if self.peer is not None else "none"
        return f"<Endpoint {self.name!r} addr {self.addr:#x} peer {peer}>"

    # --- options ---------------------------------------------------------------------------------------------
    def settimeout(self, timeout: float | None) -> None:
        """None: block; 0: non-blocking (WouldBlock); > 0: wait at most that many seconds (RpmsgTimeout)."""
        if timeout is not None and timeout < 0:
            raise ValueError("timeout must be None or >= 0")
        self._timeout = timeout

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self._timeout = None if flag else 0.0

    def connect(self, peer: int) -> None:
        self.peer = peer

    @property
    def max_queued(self) -> int | None:
        """Messages the receive queue holds at most (None: the device's ``limits.queued``)."""
        return self._max_queued

    @max_queued.setter
    def max_queued(self, value: int | None) -> None:
        _check_bound(value, "max_queued")
        self._max_queued = value

    @property
    def max_queued_bytes(self) -> int | None:
        """Payload bytes the receive queue holds at most (None: the device's ``limits.queued_bytes``)."""
        return self._max_queued_bytes

    @max_queued_bytes.setter
    def max_queued_bytes(self, value: int | None) -> None:
        _check_bound(value, "max_queued_bytes")
        self._max_queued_bytes = value

    # --- callbacks -------------------------------------------------------------------------------------------
    @property
    def callback(self) -> ReceiveCallback | None:
        return self._callback

    def set_callback(self, callback: ReceiveCallback | None, *, on_unbind: UnbindCallback | None = None) -> None:
        """Deliver each message for this endpoint to ``callback(ep, data, src)`` instead of queueing it for
        ``recv`` (None: back to the queue); ``on_unbind(ep)`` is called when the peer's name service destroys
        the channel this endpoint is bound to (same name, ``peer`` its address).

        The callback runs in the thread that drives the device, with the device's lock held: setting one starts
        the device's pump thread, so callbacks run without anyone calling ``recv``; a ``recv`` of another
        endpoint, :meth:`RpmsgDevice.process`, ``wait_for_channel`` or a send waiting for a buffer may also run
        it, first. It may send (a
        reply), but must not block long: no other message is taken in meanwhile. An exception it raises is
        logged and counted (``callback_errors``) and the message is consumed; the device goes on. Messages
        already queued are handed to the new callback first, in order."""
        _check_callback(callback, "callback")
        _check_callback(on_unbind, "on_unbind")
        dev = self.device
        with dev._lock:
            self._check_open()
            dev._callback_endpoints += (callback is not None) - (self._callback is not None)
            self._callback = callback
            self._on_unbind = on_unbind
            dev._update_gate()
            if callback is not None:
                while (msg := self._take()) is not None:
                    self._call(callback, msg)
        if callback is not None:
            dev._ensure_pump()

    def _call(self, callback: ReceiveCallback, msg: Message) -> None:
        try:
            callback(self, msg.payload, msg.src)
        except Exception:  # a user callback must not stop the device
            self._callback_failed("receive callback")
        finally:
            msg.release()

    def _call_unbind(self) -> None:
        on_unbind = self._on_unbind
        assert on_unbind is not None
        try:
            on_unbind(self)
        except Exception:
            self._callback_failed("unbind callback")

    def _callback_failed(self, what: str) -> None:
        self.callback_errors += 1
        self.device.callback_errors += 1
        log.log(
            level_for(self.callback_errors),
            "%r: %s raised (%d so far here)",
            self,
            what,
            self.callback_errors,
            exc_info=True,
        )

    def _state(self) -> dict[str, object]:
        return {
            "addr": self.addr,
            "name": self.name,
            "peer": self.peer,
            "announced": self.announced,
            "zero_copy": self.zero_copy,
            "callback": self._callback is not None,
            "queued": len(self._queue),
            "queued_bytes": self._queued_bytes,
            "held_in_queue": sum(1 for m in self._queue if m.held),  # zero-copy buffers waiting in the queue
            "dropped": self.dropped,
            "callback_errors": self.callback_errors,
            "timeout": self._timeout,
        }

    def _check_recv(self) -> None:
        if self._callback is not None:
            raise LocalProtocolError(f"{self!r} has a receive callback: its messages go there, not to recv")

    # --- sending ---------------------------------------------------------------------------------------------
    def _send_py(self, data: bytes | bytearray | memoryview) -> int:
        if self.peer is None:
            raise LocalProtocolError(f"{self!r} is not connected: use sendto or connect")
        dev = self.device
        if dev._fast is not None and not self.closed and dev._fast_send(self.addr, self.peer, data):
            return len(data)
        return self._send_general(data, self.peer)

    def _sendto_py(self, data: bytes | bytearray | memoryview, dst: int) -> int:
        dev = self.device
        if dev._fast is not None and not self.closed and dev._fast_send(self.addr, dst, data):
            return len(data)
        return self._send_general(data, dst)

    def _send_general(self, data: bytes | bytearray | memoryview, dst: int) -> int:
        self._check_open()
        timeout = self._timeout
        try:
            self.device.send(self.addr, dst, data, timeout)
        except RpmsgTimeout:
            if timeout == 0:
                raise WouldBlock("no send buffer free right now") from None
            raise
        return len(data)

    async def send_async(self, data: bytes | bytearray | memoryview) -> int:
        """Send to the connected peer without blocking the event loop while no send buffer is free; the
        endpoint's timeout applies as to ``send`` (0: WouldBlock, t: RpmsgTimeout after t seconds). Cancelled
        while waiting, nothing was sent."""
        if self.peer is None:
            raise LocalProtocolError(f"{self!r} is not connected: use sendto_async or connect")
        return await self._send_async(data, self.peer)

    async def sendto_async(self, data: bytes | bytearray | memoryview, dst: int) -> int:
        """``sendto`` for asyncio (see :meth:`send_async`)."""
        return await self._send_async(data, dst)

    async def _send_async(self, data: bytes | bytearray | memoryview, dst: int) -> int:
        dev = self.device
        timeout = self._timeout
        deadline = self._deadline()
        while True:
            if dev._fast is not None and not self.closed and dev._fast_send(self.addr, dst, data):
                return len(data)
            self._check_open()
            try:
                dev.send(self.addr, dst, data, 0)  # one look, no wait: the wait is below, on the event loop
                return len(data)
            except RpmsgTimeout:
                pass
            if timeout == 0:
                raise WouldBlock("no send buffer free right now")
            wait = BUFFER_POLL_SECONDS
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if isinstance(dev.core, RemoteCore):
                        raise RpmsgTimeout(
                            f"no host receive buffer became free within {timeout} s: the host is not posting any"
                        )
                    raise RpmsgTimeout(f"no send buffer became free within {timeout} s: the peer is not consuming")
                wait = min(wait, remaining)
            await dev._await_buffer(wait)

    def _get_buffer_py(self) -> TxBuffer:
        """Zero-copy send (host): a writable view of a send buffer in shared memory."""
        self._check_open()
        return self.device.get_buffer(self._timeout)

    def _send_buffer_py(self, buf: TxBuffer, length: int, dst: int | None = None) -> None:
        target = self.peer if dst is None else dst
        if target is None:
            raise LocalProtocolError(f"{self!r} is not connected: give dst")
        self.device.send_buffer(buf, self.addr, target, length)

    def _send_buffer_reuse_py(self, buf: TxBuffer, length: int, dst: int | None = None) -> bool:
        """:meth:`send_buffer`, then point the same ``buf`` at a send buffer free right now (True; never waits),
        or leave it sent (False: none is free; :meth:`get_buffer` waits for one). A producer that keeps one
        buffer object pays for no new object or view per message (docs/rpmsg.md, "Zero-copy")."""
        self._send_buffer_py(buf, length, dst)
        return self.device.rearm(buf)

    def _send_many_py(
        self, messages: Iterable[bytes | bytearray | memoryview], dst: int | None = None, _sent: int = 0
    ) -> int:
        """Send each message in order to ``dst`` (None: the connected peer): one publish and at most one kick
        per batch. Returns how many were sent: all, unless the endpoint's timeout ran out after some went (none
        went: WouldBlock for timeout 0, RpmsgTimeout) or, remote role, the host's buffer is too small for the
        next one (sending it again raises MessageTooLong). Every size is checked before anything is sent.
        ``_sent``: how many the C method sent before handing the rest over (counted in, and the rest's timeout
        then ends the call with that count)."""
        target = self.peer if dst is None else dst
        if target is None:
            raise LocalProtocolError(f"{self!r} is not connected: use send_many(messages, dst) or connect")
        batch = messages if isinstance(messages, (list, tuple)) else list(messages)
        self._check_open()
        timeout = self._timeout
        try:
            return _sent + self.device.send_many(self.addr, target, batch, timeout)
        except MessageTooLong:
            if _sent:  # (remote) the host's buffer is too small for the next: the C method sent the ones before
                return _sent
            raise
        except RpmsgTimeout:
            if _sent:
                return _sent
            if timeout == 0:
                raise WouldBlock("no send buffer free right now") from None
            raise

    def _recvfrom_many_py(self, max: int = 64, bufsize: int = 1 << 16) -> list[tuple[bytes, int]]:
        """Up to ``max`` messages and their sources: waits for the first as :meth:`recvfrom` does (the
        endpoint's timeout), then takes those already there without waiting (recvmmsg's MSG_WAITFORONE)."""
        if type(max) is not int or max < 1:
            raise ValueError(f"recvfrom_many: max must be an int >= 1, not {max!r}")
        _check_bufsize(bufsize, "recvfrom_many")
        self._check_recv()
        # What is there already, at most max taken from the ring (the C method's order: take_more_c first)
        out: list[tuple[bytes, int]] = []
        if not self.closed and self.device.failure is None and not self.device._closed:
            self.device._take_waiting(self, out, max, bufsize)
        if not out:
            out.append(self.recvfrom(bufsize))  # waits as recvfrom does (and raises what it raises)
            if max > 1:
                self.device._take_waiting(self, out, max, bufsize)
        return out

    def recv_many(self, max: int = 64, bufsize: int = 1 << 16) -> list[bytes]:
        """:meth:`recvfrom_many` without the sources."""
        return [data for data, _ in self.recvfrom_many(max, bufsize)]

    # --- receiving -------------------------------------------------------------------------------------------
    def _enqueue(self, msg: Message) -> None:
        """Queue a message the device took in for this endpoint, or drop and count it when the queue is full (an
        empty queue takes any one message)."""
        queue = self._queue
        size = len(msg.payload)
        if queue:
            limits = self.device.limits
            cap = limits.queued if self._max_queued is None else self._max_queued
            cap_bytes = limits.queued_bytes if self._max_queued_bytes is None else self._max_queued_bytes
            if len(queue) >= cap or self._queued_bytes + size > cap_bytes:
                self._drop_full(msg, size, cap, cap_bytes)
                return
        queue.append(msg)
        self._queued_bytes += size
        if self._fd is not None and len(queue) == 1:
            os.eventfd_write(self._fd, 1)

    def _drop_full(self, msg: Message, size: int, cap: int, cap_bytes: int) -> None:
        self.dropped += 1
        self.device.queue_dropped += 1
        msg.release()  # a zero-copy message's buffer goes back to the ring
        log.log(
            level_for(self.dropped),
            "%r: receive queue full (%d messages, %d bytes; bound %d messages, %d bytes): dropped a %d-byte "
            "message from %#x (%d dropped here so far)",
            self,
            len(self._queue),
            self._queued_bytes,
            cap,
            cap_bytes,
            size,
            msg.src,
            self.dropped,
        )

    def _wake(self) -> None:
        if self._fd is not None:
            os.eventfd_write(self._fd, 1)

    def _take(self) -> Message | None:
        if not self._queue:
            return None
        msg = self._queue.popleft()
        self._queued_bytes -= len(msg.payload)
        if self._fd is not None and not self._queue:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._fd)
        return msg

    def _deadline(self) -> float | None:
        return None if self._timeout is None else time.monotonic() + self._timeout

    def recv_message(self) -> Message:
        """The next message as a :class:`Message` (zero-copy endpoints: release it, or use ``with``)."""
        return self._recv_message(self._deadline())

    def _recv_message(self, deadline: float | None) -> Message:
        self._check_recv()
        dev = self.device
        timeout = self._timeout
        with dev._lock:
            while True:
                msg = self._take()
                if msg is not None:
                    return msg
                if dev.failure is not None and dev._salvage():
                    continue  # what the peer sent before it went is still in the rings: deliver it first
                self._check_open()
                handled = dev.process()
                msg = self._take()
                if msg is not None:
                    return msg
                if handled:
                    continue  # a batch for others: look again before saying nothing is there (as the C path)
                if deadline is not None and time.monotonic() >= deadline:
                    if timeout == 0:
                        raise WouldBlock(f"no message waiting on {self!r}")
                    raise RpmsgTimeout(f"no message on {self!r} within {timeout} s")
                dev._wait(deadline)

    def _recvfrom_py(self, bufsize: int = 1 << 16) -> tuple[bytes, int]:
        _check_bufsize(bufsize, "recvfrom")
        self._check_recv()
        deadline = self._deadline()
        if self.device._fast is not None:
            got = self.device._fast_recvfrom(self, bufsize, deadline)
            if got is not None:
                return got
        return self._recv_general(bufsize, deadline)

    def _recv_general(self, bufsize: int, deadline: float | None) -> tuple[bytes, int]:
        msg = self._recv_message(deadline)
        try:
            data = bytes(msg.payload[:bufsize])
        finally:
            msg.release()
        return data, msg.src

    def _recv_py(self, bufsize: int = 1 << 16) -> bytes:
        _check_bufsize(bufsize, "recv")
        self._check_recv()
        timeout = self._timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        if self.device._fast is not None:
            got = self.device._fast_recvfrom(self, bufsize, deadline)
            if got is not None:
                return got[0]
        return self._recv_general(bufsize, deadline)[0]

    def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0) -> int:
        _check_bufsize(nbytes, "recv_into")
        self._check_recv()
        deadline = self._deadline()
        if self.device._fast is not None:
            got = self.device._fast_recvfrom(self, nbytes or len(buffer), deadline)
            if got is not None:
                n = len(got[0])
                memoryview(buffer)[:n] = got[0]
                return n
        msg = self._recv_message(deadline)
        try:
            n = min(len(msg.payload), nbytes or len(buffer))
            memoryview(buffer)[:n] = msg.payload[:n]
        finally:
            msg.release()
        return n

    async def recv_async(self, bufsize: int = 1 << 16) -> bytes:
        """Await the next message (uses :meth:`fileno` with the running loop's ``add_reader``)."""
        loop = asyncio.get_running_loop()
        fd = self.fileno()
        saved = self._timeout
        while True:
            self._timeout = 0.0
            try:
                return self.recv(bufsize)
            except WouldBlock:
                pass
            finally:
                self._timeout = saved
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, _set_once, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)

    def fileno(self) -> int:
        """A descriptor that is readable while messages wait here (starts the device's pump thread)."""
        self._check_open()
        with self.device._lock:
            if self._fd is None:
                self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                if self._queue or self.device.failure is not None:
                    os.eventfd_write(self._fd, 1)
        self.device._ensure_pump()
        return self._fd

    def __iter__(self) -> Iterator[bytes]:
        while True:
            try:
                yield self.recv()
            except EndpointClosed:
                return

    # --- closing ---------------------------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise EndpointClosed(f"{self!r} is closed")
        self.device._check()

    def close(self, timeout: float = 1.0) -> None:
        """Withdraw the endpoint (name-service destroy when it was announced, waiting up to ``timeout`` for a
        buffer to send it in) and free its address."""
        if self.closed:
            return
        if self.announced and self.device.failure is None:
            try:
                self.device._announce(self.name, self.addr, destroy=True, timeout=timeout)
            except (PeerLost, EndpointClosed, RpmsgTimeout) as exc:
                log.info("could not announce the end of %r: %s", self, exc)
        self.closed = True
        with self.device._lock:
            while self._queue:
                self._queue.popleft().release()
            self._queued_bytes = 0
            self.device._remove(self)
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Endpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    if EndpointBase is object:  # rpmsg._endpoint_c not built: the Python methods are the methods
        send, sendto, recv, recvfrom = _send_py, _sendto_py, _recv_py, _recvfrom_py
        send_many, get_buffer, send_buffer = _send_many_py, _get_buffer_py, _send_buffer_py
        send_buffer_reuse, recvfrom_many = _send_buffer_reuse_py, _recvfrom_many_py
