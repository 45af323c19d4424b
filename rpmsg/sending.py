"""Sending on an rpmsg device, either role (host or remote): :class:`Sending`, the part of
:class:`rpmsg.device.RpmsgDevice` that sends one message, a batch (``send_many``: one publish, at most one kick)
or a zero-copy buffer (host: ``get_buffer``, ``send_buffer``, ``rearm``), on the C path where it does exactly
what the general path does (:mod:`rpmsg.fastpath`) and on the general path (the core) otherwise, waiting for a
free buffer through the device's :class:`rpmsg.waiting.Waiter`.

What a message may carry is the protocol's rule (:func:`rpmsg.protocol.check_payload`, applied by the cores);
``fast.max_payload`` here only chooses the path.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from rpmsg import fastpath
from rpmsg.core import HostCore, RemoteCore, TxBuffer
from rpmsg.errors import LocalProtocolError, MessageTooLong, PeerLost, RemoteProtocolError, RpmsgTimeout, WouldBlock
from rpmsg.protocol import TX_VRING

if TYPE_CHECKING:
    from rpmsg.waiting import Waiter

log = logging.getLogger("rpmsg.device")  # the runner's one logger: its TRACE level chooses the path
TRACE = 5  # below DEBUG: one line per message (`rproc -vvv`, or spy+ transports with logging at level 5)


class Sending:
    """The sending half of :class:`rpmsg.device.RpmsgDevice` (a base class of it: what it uses of the device is
    declared below)."""

    if TYPE_CHECKING:
        core: HostCore | RemoteCore
        failure: BaseException | None
        waiting: Waiter
        _lock: threading.RLock
        _closed: bool
        _fast: fastpath.HostFastPath | fastpath.RemoteFastPath | None

        def check(self) -> None: ...
        def _broke(self, exc: RemoteProtocolError) -> PeerLost: ...
        def _flush(self, changed: bool = True) -> None: ...
        def _c_done(self, rc: int, queue: int) -> int: ...

    def no_buffer(self, within: str) -> RpmsgTimeout:
        """The timeout of a send that found no buffer ``within`` (e.g. "in time"), worded for this side."""
        if isinstance(self.core, RemoteCore):
            return RpmsgTimeout(f"no host receive buffer became free {within}: the host is not posting any")
        return RpmsgTimeout(f"no send buffer became free {within}: the peer is not consuming")

    # --- sending ---------------------------------------------------------------------------------------------
    def try_send_c(self, src: int, dst: int, data: bytes | bytearray | memoryview) -> bool:
        """Send on the C path, when there is one; False hands over to :meth:`send` (no C path, no free buffer,
        too long, tracing). One method, not a check calling the path: this runs per message."""
        fast = self._fast
        if fast is None:
            return False
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
            self._c_done(sent, fast.send_queue)
        return True

    def send(self, src: int, dst: int, data: bytes | bytearray | memoryview, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                self.check()
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
                    self.waiting.wait_for_buffer(deadline)

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
                self.check()
                rest = payloads[done:] if done else payloads
                try:
                    k = fastpath.GENERAL
                    if fast is not None and not log.isEnabledFor(TRACE) and max(map(len, rest)) <= fast.max_payload:
                        k = fast.send_many(src, dst, rest)
                    if k == fastpath.GENERAL:
                        k = self.core.send_many(src, dst, rest)
                        self._flush()
                    else:
                        k = self._c_done(k, fast.send_queue)  # type: ignore[union-attr]
                except RemoteProtocolError as exc:
                    raise self._broke(exc) from exc
                except MessageTooLong:
                    if done:
                        return done  # the remote's next host buffer is too small: the next call says so
                    raise
                if k and log.isEnabledFor(TRACE):
                    for p in rest[:k]:
                        log.log(TRACE, "rpmsg -> %#x to %#x, %d bytes: %s", src, dst, len(p), bytes(p[:32]).hex(" "))
                done += k
                if done < len(payloads) and not k:
                    try:
                        self.waiting.wait_for_buffer(deadline)
                    except RpmsgTimeout:
                        if done:
                            return done
                        raise
        return done

    def get_buffer(self, timeout: float | None) -> TxBuffer:
        """A zero-copy send buffer, waited for as :meth:`send` waits: the host's own (its pool), or, remote, the
        host's next posted receive buffer held out of vring 0 (RemoteCore.get_tx_buffer)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        fast = self._fast if isinstance(self._fast, fastpath.HostFastPath) else None
        with self._lock:
            while True:
                self.check()
                try:
                    if fast is not None:
                        addr = fast.take()
                        if addr is not None:
                            return fast.buffer(addr)
                    return self.core.get_tx_buffer()
                except WouldBlock:
                    self.waiting.wait_for_buffer(deadline)
                except RemoteProtocolError as exc:
                    raise self._broke(exc) from exc

    def send_buffer(self, buf: TxBuffer, src: int, dst: int, length: int, *, reserved: int = 0) -> None:
        fast = self._fast if isinstance(self._fast, fastpath.HostFastPath) else None
        with self._lock:
            self.check()
            try:
                if fast is not None and not log.isEnabledFor(TRACE):
                    self.core.check_tx_buffer(buf, length)
                    buf._finish()
                    self._c_done(fast.send_buffer(buf.addr, src, dst, length, reserved), TX_VRING)
                    return
                self.core.send_buffer(buf, src, dst, length, reserved=reserved)
            except RemoteProtocolError as exc:
                raise self._broke(exc) from exc
            self._flush()

    def give_back(self, buf: TxBuffer) -> None:
        """A zero-copy buffer taken (``get_buffer``) and not sent, given back under the device's lock: the host's
        to its pool, the remote's kept for the next send (never returned to the host empty). Another device's
        buffer is refused (LocalProtocolError); one sent or given back already: nothing."""
        with self._lock:
            self.core.give_back(buf)

    def rearm(self, buf: TxBuffer) -> bool:
        """Point a sent ``buf`` at a send buffer free now (host): True, or False when none is (never waits)."""
        if not buf.done:
            raise LocalProtocolError("this TX buffer was not sent: send it first")
        try:
            fresh = self.get_buffer(0)
        except RpmsgTimeout:
            return False
        buf.addr, buf.view, buf.capacity, buf.token = fresh.addr, fresh.view, fresh.capacity, fresh.token
        buf.slot = fresh.slot  # (remote) the host's chain it now holds
        buf.done = False
        return True

    def rearm_many(self, bufs: Sequence[TxBuffer]) -> int:
        """:meth:`rearm` for each of ``bufs`` in order while buffers are free: how many were re-armed."""
        k = 0
        while k < len(bufs) and self.rearm(bufs[k]):
            k += 1
        return k

    def get_buffers(self, limit: int, timeout: float | None) -> list[TxBuffer]:
        """Up to ``limit`` send buffers: the first waited for as :meth:`get_buffer` waits, the rest those free
        now (:meth:`take_buffers`)."""
        out = [self.get_buffer(timeout)]
        if limit > 1:
            out += self.take_buffers(limit - 1)
        return out

    def take_buffers(self, limit: int) -> list[TxBuffer]:
        """Up to ``limit`` send buffers free now, without waiting (the host's reclaiming returned ones once; the
        remote's the host's posted ones): possibly none."""
        fast = self._fast if isinstance(self._fast, fastpath.HostFastPath) else None
        out: list[TxBuffer] = []
        with self._lock:
            while len(out) < limit:
                self.check()
                try:
                    if fast is not None:
                        addr = fast.take()
                        if addr is None:
                            break
                        out.append(fast.buffer(addr))
                    else:
                        out.append(self.core.get_tx_buffer())
                except (WouldBlock, MessageTooLong):
                    break  # (remote) a host buffer too small: kept, the next call says so
                except RemoteProtocolError as exc:
                    raise self._broke(exc) from exc
        return out

    def send_buffers(self, bufs: Sequence[TxBuffer], src: int, dst: int, lengths: Sequence[int]) -> None:
        """Send filled buffers with one publish and at most one kick (host): every one checked first (nothing
        sent when one is refused: another device's, sent already, in the batch twice, its length too long),
        as :meth:`send_buffer` checks one."""
        fast = self._fast if isinstance(self._fast, fastpath.HostFastPath) else None
        with self._lock:
            self.check()
            core = self.core
            try:
                if fast is not None and not log.isEnabledFor(TRACE):
                    core.check_tx_buffers(bufs, lengths)
                    if not bufs:
                        return
                    sent = 0
                    try:
                        for buf in bufs:  # marked sent (its view released) before it goes, as send_buffer does
                            buf._finish()
                            sent += 1
                    finally:  # a view still exported: the ones before it go, it and the rest not
                        if sent:
                            rc = fast.send_buffers([b.addr for b in bufs[:sent]], src, dst, lengths[:sent])
                            self._c_done(rc, TX_VRING)
                    return
                core.send_buffers(bufs, src, dst, lengths)
            except RemoteProtocolError as exc:
                raise self._broke(exc) from exc
            self._flush()

    def _c_send_failed(self, rc: int) -> None:
        """The endpoints' C send met a broken ring: reported as the Python path does."""
        fast = self._fast
        assert fast is not None
        try:
            fast.send_fault(rc)
        except RemoteProtocolError as exc:
            raise self._broke(exc) from exc
