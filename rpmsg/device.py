"""The runner: one rpmsg device (a :class:`HostCore` or :class:`RemoteCore` plus a doorbell), either role, and
its registry of endpoints and channels.

The device keeps the rings (through its core) and the registry: the endpoints bound to it (:mod:`rpmsg.endpoint`,
which reach the device only through :class:`rpmsg.endpoint.EndpointDevice`) and the channels the peer announced.
Sending and the C path's receiving are its base classes (:mod:`rpmsg.sending`, :mod:`rpmsg.receiving`); how
threads wait (doorbell ownership, the wait modes, the pump thread) is its :class:`rpmsg.waiting.Waiter`,
``self.waiting``.

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

import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from rpmsg import fastpath
from rpmsg.channels import Channels
from rpmsg.core import ChannelEvent, Event, HostCore, Message, RemoteCore
from rpmsg.endpoint import Endpoint, ReceiveCallback, UnbindCallback, check_bound, check_callback
from rpmsg.errors import (
    EndpointClosed,
    LocalProtocolError,
    PeerLost,
    RemoteProtocolError,
)
from rpmsg.profiles import Limits
from rpmsg.protocol import ADDR_ANY, NS_ADDR, AddressAllocator, pack_ns
from rpmsg.receiving import Receiving
from rpmsg.sending import TRACE, Sending
from rpmsg.state import rings_state
from rpmsg.waiting import BUSY_SLICE_SECONDS, SPIN_SECONDS, Waiter, WaitMode
from transports.doorbell import Doorbell, PeerLostError, c_doorbell_of

if TYPE_CHECKING:
    from rpmsg._endpoint_c import Gate

__all__ = ["TRACE", "Endpoint", "ReceiveCallback", "RpmsgDevice", "UnbindCallback", "WaitMode"]

log = logging.getLogger(__name__)


class RpmsgDevice(Sending, Receiving, Channels):
    """Endpoints, channels and the rings of one core and one doorbell, either role. (Sending, the C path's
    receiving and the channel registry are its bases :class:`rpmsg.sending.Sending`,
    :class:`rpmsg.receiving.Receiving` and :class:`rpmsg.channels.Channels`; waiting, endpoints and the state
    report live in their own modules.)

    What its endpoints use of it is :class:`rpmsg.endpoint.EndpointDevice`; what the endpoints' C methods look
    up on it by name (rpmsg/csrc/endpoint*.c): ``_kick``, ``_take_batch``,
    ``_c_send_failed``, ``_c_recv_failed`` and ``_take_waiting``."""

    # The doorbell's publish when it carries memory (uart:) and this side publishes per operation (see the
    # doorbell setter); None for shared memory, or when the lock asks the doorbell's thread (_make_fast).
    _publish: Callable[[], None] | None

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
        self.waiting = Waiter(self)
        self.doorbell = doorbell
        self.wait_mode = wait
        self.ns = ns
        self.limits = Limits() if limits is None else limits  # what the peer can make this device hold
        self.ns_refused = 0  # name-service messages refused: an invalid address, or the channel limit reached
        self.queue_dropped = 0  # messages dropped because their endpoint's queue was full (all endpoints)
        self.unbound_dropped = 0  # messages dropped because no endpoint is bound at their destination
        self.callback_errors = 0  # receive and unbind callbacks that raised (all endpoints)
        # threading.RLock's API; the C methods' DeviceLock (rpmsg/csrc/endpoint_lock.c) takes no Python call
        self._lock: threading.RLock = module.DeviceLock() if module is not None else threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._endpoints: dict[int, Endpoint] = {}
        self._addresses = AddressAllocator()
        self._channels: dict[str, int] = {}
        self._channel_callbacks: list[Callable[[str, int, bool], None]] = []
        self._closed = False
        self._closing = False  # close() runs: a peer found gone now ended in order too (no warning)
        self._zero_copy_endpoints = 0
        self._callback_endpoints = 0  # endpoints whose messages go to a callback: the Python path delivers them
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
        # the endpoints' C receive waits as Waiter.wait does: spins this long (spin), or in these slices (busy)
        self._gate.spin_ns = int(SPIN_SECONDS * 1e9) if mode == "spin" else 0
        self._gate.busy_ns = int(BUSY_SLICE_SECONDS * 1e9) if mode == "busy" else 0

    @property
    def _wake_fd(self) -> int:
        """What wakes the thread on the doorbell (:attr:`Waiter.wake_fd`)."""
        return self.waiting.wake_fd

    def _make_fast(self) -> fastpath.HostFastPath | fastpath.RemoteFastPath | None:
        """The per-message path in C, where it does exactly what the general path does: a core on the C engine
        with a doorbell that carries no memory. (Zero-copy receives and tracing are checked per call.) It is
        also what the endpoints' C methods use, when C can kick the doorbell (fastpath: c_doorbell_of)."""
        fast = self._make_fast_path()
        self._gate.detach()
        self._gate_attached = fast is not None and fast.attach(
            self._gate, self._lock, log.isEnabledFor, TRACE, self, self._changed
        )
        if fast is not None and self._publish is not None:
            # A mirroring doorbell C can kick (uart:): the lock asks its sender thread to publish after any change
            # of a ring, on either path, in place of the publish per operation (_flush, the wait's).
            fast.watch_rings(self._lock, self._doorbell.publish_fd)  # type: ignore[attr-defined]
            self._publish = None
        self._update_gate()
        return fast

    def _make_fast_path(self) -> fastpath.HostFastPath | fastpath.RemoteFastPath | None:
        core = self.core
        if not fastpath.enabled():
            return None
        if self._publish is not None and (
            c_doorbell_of(self._doorbell) is None
            or not hasattr(self._doorbell, "publish_fd")
            or not hasattr(self._lock, "watch")
        ):
            return None  # a doorbell that carries memory and only Python can kick: it publishes per operation
        # A subclass (a conformance peer broken on purpose, a quirk model) overrides what the C path would skip.
        try:
            if type(core) is HostCore:
                return fastpath.HostFastPath(core, self._doorbell, self._wake_fd)
            # A remote watching the host's status byte: only RemoteCore.poll reads it, the C receives do not
            # (yet), so the Python path serves it, where a reset is seen before the next message is taken.
            if type(core) is RemoteCore and not core.watches_status:
                return fastpath.RemoteFastPath(core, self._doorbell, self._wake_fd)
        except ImportError:
            pass  # the Python engine, or no compiled module
        return None

    def _update_gate(self) -> None:
        """Open the endpoints' C methods exactly while the Python path would take their case the same way:
        attached, and no failure or close; the receives also no pump thread, zero-copy receiver or receive
        callback (each of which the Python path must see: they are about what comes in, so the C sends stay
        open with them)."""
        sends = self._gate_attached and self.failure is None and not self._closed
        self._gate.send_open = sends
        lent = bool(self._zero_copy_endpoints)  # their messages must be lent from the ring, not copied out
        others = self.waiting.pump is not None or bool(self._callback_endpoints)
        self._gate.open = sends and not lent and not others
        # zero-copy receivers only: a receive may still take its own endpoint's next messages in C
        self._gate.peek_open = sends and lent and not others

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
            self.waiting.stop()
        self.waiting.join_pump()
        with self._lock:
            self._gate.detach()
            if self._fast is not None:
                self._fast.close()
            self.core.close()
            self.doorbell.close()
            self._give_back_doorbell()  # its descriptors close now
            self.waiting.close()

    def __enter__(self) -> RpmsgDevice:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- driving the rings -----------------------------------------------------------------------------------
    @property
    def lock(self) -> threading.RLock:
        """The device's lock: held while the rings, a queue or the registry change."""
        return self._lock

    @property
    def usable(self) -> bool:
        """Neither failed nor closed."""
        return self.failure is None and not self._closed

    def check(self) -> None:
        """PeerLost (the peer gone, a ring broken) or EndpointClosed unless the device is usable."""
        if self.failure is not None:
            raise PeerLost(f"rpmsg device unusable: {self.failure}", unconfirmed=self.unconfirmed) from self.failure
        if self._closed:
            raise EndpointClosed("the rpmsg device is closed")

    @property
    def doorbell(self) -> Doorbell:
        return self._doorbell

    @doorbell.setter
    def doorbell(self, doorbell: Doorbell) -> None:
        fast = getattr(self, "_fast", None)
        if fast is not None:
            fast.close()  # before the old doorbell's descriptors go: its lock no longer writes to them
            self._fast = None
        self._give_back_doorbell()
        self._doorbell = doorbell
        # Its descriptors stay valid for this device's life, even past the doorbell's close (transports.doorbell,
        # Loans): C code here kicks and drains them by number; a close under us fails this device at once.
        lend, give_back = getattr(doorbell, "lend", None), getattr(doorbell, "give_back", None)
        self._loan: tuple[Callable[[int], None], int] | None = None
        if callable(lend) and callable(give_back):
            with contextlib.suppress(PeerLostError):  # closed already: the first kick or wait reports it
                self._loan = (give_back, lend(self._doorbell_closed))
        # A doorbell that carries memory too (uart:, transports.mirror) must publish what this side wrote even
        # when no kick is due — a reply into a buffer the peer polls, a re-posted buffer, the flag asking the
        # peer to kick — or the peer never sees it. Shared-memory doorbells have no such method.
        self._publish = getattr(doorbell, "publish", None)
        if hasattr(self, "_fast"):
            self._fast = self._make_fast()  # it polls the doorbell's descriptors

    def _give_back_doorbell(self) -> None:
        loan = getattr(self, "_loan", None)
        if loan is not None:
            self._loan = None
            give_back, token = loan
            give_back(token)

    def _doorbell_closed(self, exc: PeerLostError) -> None:
        """The doorbell closed under this device (its link closed first): the device fails now, on either path,
        as a Python kick through the closed doorbell would make it fail."""
        with self._lock:
            if not self._closed:
                self._fail(exc)

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
        self.waiting.wake_owner()
        for ep in self._endpoints.values():
            ep._wake()

    def _broke(self, exc: RemoteProtocolError) -> PeerLost:
        """The peer broke a ring this call met (sending or receiving): the device fails, and this is the PeerLost
        the call raises (every later call raises one too, from check)."""
        self._fail(exc)
        return PeerLost(f"the peer broke the rings: {exc}", unconfirmed=self.unconfirmed)

    def process(self) -> int:
        """Take in whatever the peer sent; returns how many messages it took (each an event, or dropped as
        malformed: a receive looks again after either, as the C receive looks again after any batch it took)."""
        with self._lock:
            self.check()
            dropped = self.core.dropped
            try:
                events = self.core.poll(zero_copy=self._zero_copy_filter)
            except RemoteProtocolError as exc:
                raise self._broke(exc) from exc
            self._handle(events)
            self._flush(changed=bool(events))
            return len(events) + self.core.dropped - dropped

    def _handle(self, events: list[Event]) -> None:
        for event in events:
            if isinstance(event, ChannelEvent):
                self._channel_event(event)
            else:
                self._deliver(event)
        if events:
            self._changed.notify_all()
            self.waiting.wake_owner()

    def _kick(self, queue: int) -> None:
        try:
            self.doorbell.notify(queue)
        except PeerLostError as exc:
            self._fail(exc)

    def _c_done(self, rc: int, queue: int) -> int:
        """After a C path call that published (kick after publish): kick ``queue`` when its result carries
        NOTIFY (the peer asked and C could not write the doorbell itself); the count it carries (| MORE, kept for
        :meth:`_take_batch`)."""
        if rc & fastpath.NOTIFY:
            self._kick(queue)
        return rc & (0xFFFF | fastpath.MORE)

    def salvage(self) -> bool:
        """After the peer is lost: take in, once, the messages it left in the rings (the memory is still mapped).
        True if that delivered anything. A ring the peer broke is not read again; a device not failed: False."""
        if self.failure is None or self._salvaged or self._closed or isinstance(self.failure, RemoteProtocolError):
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

    def _wants_zero_copy(self, dst: int) -> bool:
        ep = self._endpoints.get(dst)
        return ep is not None and ep.zero_copy

    @property
    def _zero_copy_filter(self) -> Callable[[int], bool] | None:
        """None (the batch-copy fast path) unless some endpoint receives zero-copy."""
        return self._wants_zero_copy if self._zero_copy_endpoints else None

    def _trace_in(self, msg: Message) -> None:
        if log.isEnabledFor(TRACE):
            log.log(
                TRACE,
                "rpmsg <- %#x to %#x, %d bytes: %s",
                msg.src,
                msg.dst,
                len(msg.payload),
                bytes(msg.payload[:32]).hex(" "),
            )

    def _deliver(self, msg: Message) -> None:
        self._trace_in(msg)
        if msg._release is not None:  # lent (zero-copy): its release takes the lock and kicks
            msg._release = functools.partial(self._give_back, msg._release)
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

    def _give_back(self, give: Callable[[], None]) -> None:
        """A lent message's release (Message.release, any thread): its buffer back to the ring with the device's
        lock held, then the kick the peer asked for (a sender waiting for buffers hears now, not at our next
        receive). A failed or closed device has no ring to give it to: nothing. The C twin: give_back in
        rpmsg/csrc/endpoint_message.c."""
        with self._lock:
            if self.failure is None and not self._closed:
                give()
                self._flush()

    def request_kicks(self, on: bool) -> None:
        """Ask the peer to notify (kick) us for new messages, or not; the wait loop changes this itself as
        it spins or blocks, so this only sets where it starts from."""
        with self._lock:
            self.waiting.kicks(on)

    def wait(self, deadline: float | None) -> None:
        """Wait once for something to happen, at most until ``deadline`` (the lock held); the caller looks at the
        rings again (:meth:`Waiter.wait`)."""
        self.waiting.wait(deadline)

    def ensure_pump(self) -> None:
        """Start the pump thread, so that messages are taken in while nobody receives (:meth:`Waiter.ensure_pump`)."""
        self.waiting.ensure_pump()

    async def await_buffer(self, wait: float) -> None:
        """Let an event loop run until a send buffer may be free (:meth:`Waiter.await_buffer`)."""
        await self.waiting.await_buffer(wait)

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
        check_callback(callback, "callback")
        check_callback(on_unbind, "on_unbind")
        check_bound(max_queued, "max_queued")
        check_bound(max_queued_bytes, "max_queued_bytes")  # before an address is taken
        with self._lock:
            self.check()
            if addr == ADDR_ANY:
                addr = self._addresses.allocate()
            else:
                if addr == NS_ADDR:
                    raise LocalProtocolError(f"address {NS_ADDR} is the name service")
                self._addresses.claim(addr)
            ep = Endpoint(self, self._gate, addr, name, peer, zero_copy)
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
                self.announce(name, addr, destroy=False, timeout=timeout)
            except BaseException:
                self.remove_endpoint(ep)
                raise
            ep.announced = True
        return ep

    def announce(self, name: str, addr: int, *, destroy: bool, timeout: float | None = None) -> None:
        """Send a name-service announcement (``destroy``: its withdrawal) of ``name`` at ``addr``."""
        self.send(addr, NS_ADDR, pack_ns(name, addr, destroy), timeout=timeout)

    def callbacks_changed(self, delta: int) -> None:
        """An endpoint set (+1) or removed (-1) its receive callback: the Python path must deliver its messages."""
        self._callback_endpoints += delta
        self._update_gate()

    def remove_endpoint(self, ep: Endpoint) -> None:
        """Unbind ``ep`` (its address freed)."""
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
                "pump_thread": self.waiting.pump is not None,
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
            out["buffers"], out["vrings"] = rings_state(core)
            return out

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
