"""The socket-like endpoint of an rpmsg device, either role (host or remote): :class:`Endpoint`.

An endpoint holds its own receive queue, timeout and callbacks; everything that touches the rings goes through
its device, and only through :class:`EndpointDevice`: the short list of what an endpoint may ask of the device
it is bound to (:class:`rpmsg.device.RpmsgDevice` implements it). The device, in turn, hands an endpoint its
messages (``_enqueue``, ``_call``), tells it of an unbind (``_call_unbind``) or a failure (``_wake``), takes
queued messages (``_take``) and reads its state (``_state``).

``send``, ``sendto``, ``recv``, ``recvfrom`` and the batch and zero-copy calls are the ``_*_py`` methods here,
unless rpmsg._endpoint_c is built: then they are its C methods (the base class :class:`EndpointBase`), which do
the common case themselves while the device's gate is open and otherwise call the ``_*_py`` method with the same
arguments. The C methods look up these names on the endpoint by string: ``device``, ``_timeout``,
``_recv_timed_out`` and the ``_*_py`` methods (rpmsg/csrc/endpoint*.c); keep them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, NoReturn, Protocol

from rpmsg import fastpath
from rpmsg.core import Message, TxBuffer
from rpmsg.errors import (
    EndpointClosed,
    LocalProtocolError,
    MessageTooLong,
    PeerLost,
    RpmsgTimeout,
    WouldBlock,
)
from rpmsg.log_limit import level_for
from rpmsg.profiles import Limits
from rpmsg.protocol import payload_bytes, receive_slots, receive_target
from rpmsg.waiting import BUFFER_POLL_SECONDS, set_once

if TYPE_CHECKING:
    from rpmsg._endpoint_c import EndpointBase, Gate
    from rpmsg.device import RpmsgDevice
else:
    _endpoint_c = fastpath.endpoint_module()
    EndpointBase = _endpoint_c.EndpointBase if _endpoint_c is not None else object

# The runner's one logger (rpmsg.device): its TRACE level is what `rproc -vvv`, spy+ and the C methods look at.
log = logging.getLogger("rpmsg.device")

ReceiveCallback = Callable[["Endpoint", "bytes | memoryview", int], object]
"""``callback(ep, data, src)``: one received message (OpenAMP's ``rpmsg_ept_cb`` without len and priv; the
return value is ignored). ``data`` is bytes, or on a zero-copy endpoint a read-only view valid until it returns."""
UnbindCallback = Callable[["Endpoint"], object]
"""``on_unbind(ep)``: the peer withdrew the channel this endpoint is bound to (OpenAMP's ``ns_unbind_cb``)."""


class EndpointDevice(Protocol):
    """What an endpoint asks of its device, either role: nothing else of the device is used by :class:`Endpoint`."""

    failure: BaseException | None  # why the device is unusable (the peer lost, a ring broken), or None
    queue_dropped: int  # counters kept across the device's endpoints
    callback_errors: int

    @property
    def lock(self) -> threading.RLock: ...  # the device's lock: held while a queue or the rings change

    @property
    def limits(self) -> Limits: ...

    @property
    def usable(self) -> bool: ...  # neither failed nor closed

    def check(self) -> None: ...  # PeerLost or EndpointClosed unless usable

    # sending (src, dst: addresses; timeout None: wait, 0: one look)
    def try_send_c(self, src: int, dst: int, data: bytes | bytearray | memoryview) -> bool: ...
    def send(self, src: int, dst: int, data: bytes | bytearray | memoryview, timeout: float | None) -> None: ...
    def send_many(
        self, src: int, dst: int, payloads: Sequence[bytes | bytearray | memoryview], timeout: float | None
    ) -> int: ...
    def get_buffer(self, timeout: float | None) -> TxBuffer: ...
    def send_buffer(self, buf: TxBuffer, src: int, dst: int, length: int, *, reserved: int = 0) -> None: ...
    def rearm(self, buf: TxBuffer) -> bool: ...
    def get_buffers(self, limit: int, timeout: float | None) -> list[TxBuffer]: ...
    def take_buffers(self, limit: int) -> list[TxBuffer]: ...
    def send_buffers(self, bufs: Sequence[TxBuffer], src: int, dst: int, lengths: Sequence[int]) -> None: ...
    def rearm_many(self, bufs: Sequence[TxBuffer]) -> int: ...
    def no_buffer(self, within: str) -> RpmsgTimeout: ...  # the timeout a send raises, worded for the role
    async def await_buffer(self, wait: float) -> None: ...

    # receiving
    def try_recv_c(self, ep: Endpoint, bufsize: int, deadline: float | None) -> tuple[bytes, int] | None: ...
    def take_waiting(self, ep: Endpoint, out: list[tuple[bytes, int]], limit: int, bufsize: int) -> None: ...
    def process(self) -> int: ...
    def salvage(self) -> bool: ...
    def wait(self, deadline: float | None) -> None: ...
    def ensure_pump(self) -> None: ...

    # the registry
    def callbacks_changed(self, delta: int) -> None: ...
    def announce(self, name: str, addr: int, *, destroy: bool, timeout: float | None = None) -> None: ...
    def remove_endpoint(self, ep: Endpoint) -> None: ...


def check_bound(value: int | None, name: str) -> None:
    if value is not None and (type(value) is not int or value < 1):
        raise LocalProtocolError(f"{name} must be None (the device's limits) or an int >= 1, not {value!r}")


def check_callback(fn: object, name: str) -> None:
    if fn is not None and not callable(fn):
        raise LocalProtocolError(f"{name} must be None or callable, not {fn!r}")


def _check_bufsize(size: int, call: str) -> None:
    if size < 0:
        raise ValueError(f"negative buffersize in {call}")  # as socket's (a slice would take all but the end)


class Endpoint(EndpointBase):
    """A socket-like rpmsg endpoint, either role: ``send``/``sendto``, ``recv``/``recvfrom``/``recv_into``,
    timeouts, ``fileno()`` for selectors and asyncio, zero-copy buffers, iteration and ``with``. (Over ~400 lines:
    the user's one class, its socket-like surface in one place; it holds no ring logic.)

    ``send``, ``sendto``, ``recv`` and ``recvfrom`` are the ``_*_py`` methods below. When rpmsg._endpoint_c is
    built they are its C methods (the base class), which do the common case themselves (either role) while the
    device's gate is open and otherwise call the ``_*_py`` method with the same arguments."""

    def __init__(
        self, device: RpmsgDevice, gate: Gate | fastpath.PyGate, addr: int, name: str, peer: int | None, zero_copy: bool
    ) -> None:
        if not isinstance(gate, fastpath.PyGate):
            self._gate = gate
        self.device: RpmsgDevice = device  # what users reach (and the C methods look up, by this name)
        self._dev: EndpointDevice = device  # all this class asks of it
        self.addr = addr
        self.name = name
        self.peer = peer
        self.zero_copy = zero_copy
        self.announced = False
        self.closed = False
        # Message, or (payload, src): the rest of a batch the C receive took (rpmsg/csrc/endpoint_recv.c), a copy
        self._queue: deque[Message | tuple[bytes, int]] = deque()
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
        check_bound(value, "max_queued")
        self._max_queued = value

    @property
    def max_queued_bytes(self) -> int | None:
        """Payload bytes the receive queue holds at most (None: the device's ``limits.queued_bytes``)."""
        return self._max_queued_bytes

    @max_queued_bytes.setter
    def max_queued_bytes(self, value: int | None) -> None:
        check_bound(value, "max_queued_bytes")
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
        check_callback(callback, "callback")
        check_callback(on_unbind, "on_unbind")
        dev = self._dev
        with dev.lock:
            self._check_open()
            old = self._callback
            self._callback = callback
            self._on_unbind = on_unbind
            dev.callbacks_changed((callback is not None) - (old is not None))
            if callback is not None:
                while (msg := self._take()) is not None:
                    self._call(callback, msg)
        if callback is not None:
            dev.ensure_pump()

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
        self._dev.callback_errors += 1
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
            # zero-copy buffers waiting in the queue
            "held_in_queue": sum(1 for m in self._queue if not isinstance(m, tuple) and m.held),
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
        data = payload_bytes(data)
        if not self.closed and self._dev.try_send_c(self.addr, self.peer, data):
            return len(data)
        return self._send_general(data, self.peer)

    def _sendto_py(self, data: bytes | bytearray | memoryview, dst: int) -> int:
        data = payload_bytes(data)
        if not self.closed and self._dev.try_send_c(self.addr, dst, data):
            return len(data)
        return self._send_general(data, dst)

    def _send_general(self, data: bytes | bytearray | memoryview, dst: int) -> int:
        self._check_open()
        timeout = self._timeout
        try:
            self._dev.send(self.addr, dst, data, timeout)
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
        data = payload_bytes(data)
        dev = self._dev
        timeout = self._timeout
        deadline = self._deadline()
        while True:
            if not self.closed and dev.try_send_c(self.addr, dst, data):
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
                    raise dev.no_buffer(f"within {timeout} s")
                wait = min(wait, remaining)
            await dev.await_buffer(wait)

    def _get_buffer_py(self) -> TxBuffer:
        """Zero-copy send (host): a writable view of a send buffer in shared memory."""
        self._check_open()
        return self._dev.get_buffer(self._timeout)

    def _send_buffer_py(self, buf: TxBuffer, length: int, dst: int | None = None) -> None:
        target = self.peer if dst is None else dst
        if target is None:
            raise LocalProtocolError(f"{self!r} is not connected: give dst")
        self._check_open()  # a closed endpoint sends nothing (its address may be another's by now)
        self._dev.send_buffer(buf, self.addr, target, length)

    def _send_buffer_reuse_py(self, buf: TxBuffer, length: int, dst: int | None = None) -> bool:
        """:meth:`send_buffer`, then point the same ``buf`` at a send buffer free right now (True; never waits),
        or leave it sent (False: none is free; :meth:`get_buffer` waits for one). A producer that keeps one
        buffer object pays for no new object or view per message (docs/rpmsg.md, "Zero-copy")."""
        self._send_buffer_py(buf, length, dst)
        return self._dev.rearm(buf)

    def _get_buffers_py(self, max: int = 64) -> list[TxBuffer]:
        """Zero-copy send (host), a batch: up to ``max`` send buffers, at least one (waited for as
        :meth:`get_buffer` waits: the endpoint's timeout), the rest those free now."""
        if type(max) is not int or max < 1:
            raise ValueError(f"get_buffers: max must be an int >= 1, not {max!r}")
        self._check_open()
        out = [self._dev.get_buffer(self._timeout)]  # the first waited for
        if max > 1:  # the rest free now: in C where it can (the remote's Python take is ~10 us a buffer)
            rest = self._take_buffers(max - 1)
            out += self._dev.take_buffers(max - 1) if rest is None else rest
        return out

    def _buffer_batch(
        self, bufs: Iterable[TxBuffer], lengths: int | Iterable[int], dst: int | None
    ) -> tuple[Sequence[TxBuffer], list[int], int]:
        target = self.peer if dst is None else dst
        if target is None:
            raise LocalProtocolError(f"{self!r} is not connected: give dst")
        batch = bufs if isinstance(bufs, (list, tuple)) else list(bufs)
        if isinstance(lengths, int):
            sizes = [lengths] * len(batch)
        else:
            sizes = list(lengths)
            if len(sizes) != len(batch):
                raise ValueError(f"send_buffers: {len(sizes)} lengths for {len(batch)} buffers")
        return batch, sizes, target

    def _send_buffers_py(self, bufs: Iterable[TxBuffer], lengths: int | Iterable[int], dst: int | None = None) -> None:
        """Send filled buffers (from :meth:`get_buffer`/:meth:`get_buffers`) to ``dst`` (None: the connected
        peer), ``lengths`` one int for all or one each: one publish and at most one kick. Every buffer is
        checked first, as :meth:`send_buffer` checks one (another device's, sent already, twice in the batch,
        a length it cannot hold: nothing is sent)."""
        batch, sizes, target = self._buffer_batch(bufs, lengths, dst)
        self._check_open()
        self._dev.send_buffers(batch, self.addr, target, sizes)

    def _send_buffers_reuse_py(
        self, bufs: Iterable[TxBuffer], lengths: int | Iterable[int], dst: int | None = None
    ) -> int:
        """:meth:`send_buffers`, then point the same buffer objects, in order, at send buffers free right now
        (never waits): how many were (the first k of ``bufs``; the rest stay sent). A producer that keeps its
        list of buffers makes no object per message (docs/rpmsg.md, "Zero-copy")."""
        batch, sizes, target = self._buffer_batch(bufs, lengths, dst)
        self._check_open()
        self._dev.send_buffers(batch, self.addr, target, sizes)
        return self._dev.rearm_many(batch)

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
        batch = [payload_bytes(m) for m in messages]
        self._check_open()
        timeout = self._timeout
        try:
            return _sent + self._dev.send_many(self.addr, target, batch, timeout)
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
        if not self.closed and self._dev.usable:
            self._take_rest(out, max, bufsize)
        if not out:
            out.append(self.recvfrom(bufsize))  # waits as recvfrom does (and raises what it raises)
            if max > 1:
                self._take_rest(out, max, bufsize)
        return out

    def _take_rest(self, out: list[tuple[bytes, int]], max: int, bufsize: int) -> None:
        """The messages already there, up to ``max`` in ``out``: in C where it can (``_take_more``), then the
        device's take_waiting for what C leaves (queued Messages, others' messages, the general path's cases)."""
        if not self._take_more(out, max, bufsize):
            self._dev.take_waiting(self, out, max, bufsize)

    def _recv_many_py(self, max: int = 64, bufsize: int = 1 << 16) -> list[bytes]:
        """:meth:`recvfrom_many` without the sources."""
        return [data for data, _ in self._recvfrom_many_py(max, bufsize)]

    def _recv_many_into_py(self, buffer: object, sizes: object, slot: int = 0) -> int:
        """:meth:`recv_many` into one buffer, recvmmsg's shape (``recv_many_into``): message i at i * ``slot``
        in ``buffer``, cut to ``slot`` bytes, its size into ``sizes[i]`` (an ``array('I')``; how many it holds is
        the most taken); ``slot`` 0: ``len(buffer) // len(sizes)``. Waits for the first as ``recv`` does, then
        takes those already there; returns how many. The C method makes no object per message."""
        target, lens, slot, most = receive_slots(buffer, sizes, slot)
        got = self.recv_many(most, slot)
        for i, data in enumerate(got):
            target[i * slot : i * slot + len(data)] = data
            lens[i] = len(data)
        return len(got)

    # --- receiving -------------------------------------------------------------------------------------------
    def _enqueue(self, msg: Message) -> None:
        """Queue a message the device took in for this endpoint, or drop and count it when the queue is full (an
        empty queue takes any one message)."""
        queue = self._queue
        size = len(msg.payload)
        if queue:
            limits = self._dev.limits
            cap = limits.queued if self._max_queued is None else self._max_queued
            cap_bytes = limits.queued_bytes if self._max_queued_bytes is None else self._max_queued_bytes
            if len(queue) >= cap or self._queued_bytes + size > cap_bytes:
                self._drop_full(msg, size, cap, cap_bytes)
                return
        if msg._release is None and type(msg.payload) is bytes:
            # a copy, queued as the C receive queues one: the endpoints' C methods take it too (a Message in the
            # queue sends every receive to the Python method until the queue is empty, which a sender faster
            # than those receives never lets happen: stop 35, benchmarks/python_remote_stream.py)
            queue.append((msg.payload, msg.src))
        else:
            queue.append(msg)
        self._queued_bytes += size
        if self._fd is not None and len(queue) == 1:
            os.eventfd_write(self._fd, 1)

    def _drop_full(self, msg: Message, size: int, cap: int, cap_bytes: int) -> None:
        self.dropped += 1
        self._dev.queue_dropped += 1
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
        if isinstance(msg, tuple):  # queued by the C receive: a copy's payload and source
            payload, src = msg
            msg = Message(src=src, dst=self.addr, payload=payload)
        self._queued_bytes -= len(msg.payload)
        if self._fd is not None and not self._queue:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._fd)
        return msg

    def _deadline(self) -> float | None:
        """When a receive (or a send waiting for a buffer) that starts now gives up: the endpoint's timeout from
        now, or the deadline of the C receive that began waiting and handed over to this Python method."""
        handed = self._handed_deadline()
        if handed is not None:
            return handed
        return None if self._timeout is None else time.monotonic() + self._timeout

    if EndpointBase is object:

        def _handed_deadline(self) -> float | None:
            return None  # no C receive to hand one over

        def _lend(self) -> Message | None:
            return None  # no C receive to lend one

        def _take_more(self, out: list[tuple[bytes, int]], max: int, bufsize: int) -> bool:
            return False  # no C receive: the device's take_waiting takes them

        def _take_buffers(self, max: int) -> list[TxBuffer] | None:
            return None  # no C get_buffers: the device's take_buffers takes them

        def _queue_batch(self, n: int, bufsize: int) -> tuple[bytes, int] | None:
            return None  # no C queue: the device's parser delivers the batch

    def _recv_message_py(self) -> Message:
        """The next message as a :class:`Message` (zero-copy endpoints: release it, or use ``with``)."""
        return self._recv_message(self._deadline())

    def _recv_message(self, deadline: float | None) -> Message:
        self._check_recv()
        dev = self._dev
        timeout = self._timeout
        with dev.lock:
            while True:
                msg = self._take()
                if msg is not None:
                    return msg
                msg = self._lend()  # what a wait brought in, lent in C: not taken in by the Python path's poll
                if msg is not None:
                    return msg
                if dev.salvage():
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
                    self._recv_timed_out(timeout)
                dev.wait(deadline)

    def _recv_timed_out(self, timeout: float | None) -> NoReturn:
        """Raise what a receive raises when its ``timeout`` ran out with nothing for it (the C receive, which
        keeps the time limit itself, calls it too)."""
        raise RpmsgTimeout(f"no message on {self!r} within {timeout} s")

    def _recvfrom_py(self, bufsize: int = 1 << 16) -> tuple[bytes, int]:
        _check_bufsize(bufsize, "recvfrom")
        self._check_recv()
        deadline = self._deadline()
        got = self._dev.try_recv_c(self, bufsize, deadline)
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
        deadline = self._deadline()
        got = self._dev.try_recv_c(self, bufsize, deadline)
        if got is not None:
            return got[0]
        return self._recv_general(bufsize, deadline)[0]

    def recv_into(self, buffer: bytearray | memoryview, nbytes: int = 0) -> int:
        _check_bufsize(nbytes, "recv_into")
        target, size = receive_target(buffer, nbytes)
        self._check_recv()
        deadline = self._deadline()
        got = self._dev.try_recv_c(self, size, deadline)
        if got is not None:
            n = len(got[0])
            target[:n] = got[0]
            return n
        msg = self._recv_message(deadline)
        try:
            n = min(len(msg.payload), size)
            target[:n] = msg.payload[:n]
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
            loop.add_reader(fd, set_once, ready)
            try:
                await ready
            finally:
                loop.remove_reader(fd)

    def fileno(self) -> int:
        """A descriptor that is readable while messages wait here (starts the device's pump thread)."""
        self._check_open()
        with self._dev.lock:
            if self._fd is None:
                self._fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
                if self._queue or self._dev.failure is not None:
                    os.eventfd_write(self._fd, 1)
        self._dev.ensure_pump()
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
        self._dev.check()

    def close(self, timeout: float = 1.0) -> None:
        """Withdraw the endpoint (name-service destroy when it was announced, waiting up to ``timeout`` for a
        buffer to send it in) and free its address."""
        if self.closed:
            return
        if self.announced and self._dev.failure is None:
            try:
                self._dev.announce(self.name, self.addr, destroy=True, timeout=timeout)
            except (PeerLost, EndpointClosed, RpmsgTimeout, MessageTooLong) as exc:
                # (MessageTooLong: the host's next buffer cannot hold the announcement; the endpoint still goes)
                log.info("could not announce the end of %r: %s", self, exc)
        self.closed = True
        with self._dev.lock:
            while self._queue:
                msg = self._queue.popleft()
                if not isinstance(msg, tuple):  # (a tuple is a copy: nothing to give back)
                    msg.release()
            self._queued_bytes = 0
            self._dev.remove_endpoint(self)
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
        send_buffer_reuse, recvfrom_many, recv_many = _send_buffer_reuse_py, _recvfrom_many_py, _recv_many_py
        recv_many_into, recv_message = _recv_many_into_py, _recv_message_py
        get_buffers, send_buffers, send_buffers_reuse = _get_buffers_py, _send_buffers_py, _send_buffers_reuse_py
