"""The per-message path in C (rpmsg/csrc/fastpath.c), both roles: one call to send, one to take in what
arrived, one to wait, instead of the core -> queue -> engine layers per message.

:class:`HostFastPath` and :class:`RemoteFastPath` work on the same rings, pool and batch buffer as the core they
are made from, so the runner can mix them with the general path freely. The runner (:mod:`rpmsg.device`) uses
them only where the general path would do exactly the same: a core of the plain class on the C engine, copying
receives (no zero-copy endpoint), no mirroring doorbell, no per-message trace. ``RPROC_RPMSG_FASTPATH=0`` turns
them off (the tests run the rpmsg suite both ways).
"""

from __future__ import annotations

import os
import threading
from array import array
from collections.abc import Callable, Sequence
from typing import Any

from rpmsg import _native
from rpmsg._native import DEV_MAX as DEV_MAX
from rpmsg._native import DOORBELL as DOORBELL
from rpmsg._native import EINTR as EINTR
from rpmsg._native import GENERAL as GENERAL
from rpmsg._native import KICKED as KICKED
from rpmsg._native import MORE as MORE
from rpmsg._native import NOTIFY as NOTIFY
from rpmsg._native import READY as READY
from rpmsg._native import TIMEOUT as TIMEOUT
from rpmsg._native import WOKEN as WOKEN
from rpmsg._native import GateDevice as GateDevice
from rpmsg._native import PyGate as PyGate
from rpmsg.core import HostCore, Message, RemoteCore, TxBuffer
from rpmsg.errors import RemoteProtocolError
from rpmsg.protocol import HEADER, HEADER_SIZE, RX_VRING, TX_VRING
from transports.doorbell import (
    KICK_DATAGRAM,
    KICK_EPOLL,
    KICK_EVENTFD,
    KICK_MIRROR,
    KICK_STREAM_BYTE,
    Doorbell,
    c_doorbell_of,
)
from virtio.cring import CVring
from virtio.errors import RemoteFault
from virtio.queue import DeviceQueue, DriverQueue

endpoint_module = _native.endpoint_module  # rpmsg._endpoint_c or None (one loader for the core and the device)
_module = _native.fastpath_module  # rpmsg._fastpath_cffi, or ImportError


def enabled() -> bool:
    return os.environ.get("RPROC_RPMSG_FASTPATH", "1") != "0"


KICK_SHIFT = _native._C["RPF_KICK_SHIFT"]  # a kick word is the descriptor | the kind << 24 (fastpath.h)


def kick_word(fd: int, kind: int) -> int:
    """The C path's kick word for a descriptor and a ``transports.doorbell.KICK_*`` kind; -1 (the runner kicks)
    for a descriptor that does not fit in 24 bits or an unknown kind."""
    kinds = (KICK_EVENTFD, KICK_STREAM_BYTE, KICK_DATAGRAM, KICK_EPOLL, KICK_MIRROR)
    if not 0 <= fd < 1 << KICK_SHIFT or kind not in kinds:
        return -1
    return fd | kind << KICK_SHIFT


class _FastPath:
    """What both roles share: the batch buffer, the doorbell's descriptors, the wait."""

    recv_queue: int  # the queue a receive kicks (re-posted or returned buffers)
    send_queue: int  # the queue a send kicks
    where: str  # the receive ring's name in errors
    send_where: str  # the send ring's

    def __init__(
        self,
        recv: DriverQueue | DeviceQueue,
        send: DriverQueue | DeviceQueue,
        out: bytearray,
        lens: Any,
        doorbell: Doorbell,
        wake_fd: int,
    ) -> None:
        recv_ring, send_ring = recv.c_engine, send.c_engine
        if recv_ring is None or send_ring is None:
            raise ImportError("the queues are on the Python engine: no C path")
        mod = _module()
        self._ffi = ffi = mod.ffi
        self._lib = mod.lib
        self._wait_c = mod.lib.rpf_wait
        self._recv_queue_obj, self._send_queue_obj = recv, send
        self._send_ring: CVring = send_ring
        self._recv_ring: CVring = recv_ring
        self._recv_vq = self._vq(recv_ring)
        self._send_vq = self._vq(send_ring)
        self.out = out
        self.lens = lens
        self._view = memoryview(out)
        self._c_out = ffi.from_buffer("uint8_t[]", out, require_writable=True)
        self._c_lens = ffi.from_buffer("uint32_t[]", lens, require_writable=True)
        self._out_cap = len(out)
        self._unpack = HEADER.unpack_from
        # The doorbell's descriptors: a doorbell that describes itself to C (c_doorbell: eventfds, socket bytes,
        # datagrams, vhost-user's eventfds per queue, the UART mirror's sender thread) is kicked and drained in
        # C; any other (UIO, wrappers that count) is kicked and read by the runner, through its own methods.
        self._poll_fd = doorbell.fileno()
        # kick words (fastpath.h): the wait's drain, the kick of the send ring, the kick of the receive ring
        self._kick_fd = self._kick_out_fd = self._kick_recv_fd = -1
        described = c_doorbell_of(doorbell)
        if described is not None:
            self._poll_fd = described.poll_fd
            self._kick_fd = kick_word(described.drain_fd, described.drain)
            self._kick_out_fd = kick_word(described.kick_fd_of(self.send_queue), described.kick)
            self._kick_recv_fd = kick_word(described.kick_fd_of(self.recv_queue), described.kick)
        self._wake_fd = wake_fd
        self.max_payload: int
        self._pool_src: object = None
        self._gate: Any = None  # the endpoints' C methods, once attached
        self._gate_args: tuple[Any, ...] = ()
        self._watching: Any = None  # the device lock asking a mirroring doorbell's publishes (watch_rings)

    def _cast(self, ctype: str, other_ffi: Any, ptr: Any) -> Any:
        return self._ffi.cast(ctype, int(other_ffi.cast("uintptr_t", ptr)))

    def _vq(self, ring: CVring) -> Any:
        ffi, vq = ring.handles()[:2]
        return self._cast("struct rp_vq *", ffi, vq)

    def single(self, addr: int, bufsize: int) -> tuple[bytes, int] | None:
        """The batch's only message as (payload, src) if it is a well-formed one for ``addr``; None otherwise
        (the general parser then delivers it, or drops it with the reason)."""
        # protocol.parse_message's rule, inlined (this runs per message; the C twin is rpc_single, and the
        # differential tests hold both to the general path, which calls parse_message).
        size = self.lens[0]
        if size < HEADER_SIZE:
            return None
        src, dst, _reserved, length, _flags = self._unpack(self.out, 0)
        if dst != addr or length > size - HEADER_SIZE:
            return None
        return self._view[HEADER_SIZE : HEADER_SIZE + min(length, bufsize)].tobytes(), src

    def kicks_on(self) -> bool:
        """Whether the peer is asked to kick us for new messages: the receive ring's own flag, after a
        :meth:`recv` with ``arm`` (one that found messages before asking leaves them off)."""
        return not self._recv_vq.suppressed

    def wait(self, spin_ns: int, block: bool, timeout_ns: int, *, watch_send: bool = False) -> int:
        """Spin on the receive ring (``watch_send``: the send ring, for free buffers) up to ``spin_ns``, then
        (``block``) sleep on the doorbell up to ``timeout_ns`` (-1: no limit). Returns TIMEOUT, READY, KICKED,
        DOORBELL, WOKEN or EINTR."""
        rc: int = self._wait_c(
            self._send_vq if watch_send else self._recv_vq,
            spin_ns,
            self._poll_fd if block else -1,
            self._kick_fd,
            self._wake_fd,
            timeout_ns,
        )
        return rc

    def attach(
        self,
        gate: Any,
        lock: Any,
        trace_enabled: Callable[[int], bool],
        trace_level: int,
        device: GateDevice,
        changed: threading.Condition,
    ) -> bool:
        """Point the endpoints' C methods (an rpmsg._endpoint_c.Gate) at this path, and let a blocking receive
        sleep in C on the same descriptors as :meth:`wait` (``changed``: the device's condition, notified when
        it leaves the doorbell). The C methods hand over to the Python ones while ``trace_enabled(trace_level)``
        (the device logger's isEnabledFor) is not False. False when they cannot take it (no compiled module, or
        a doorbell C cannot kick: the kick is written in C)."""
        if not hasattr(gate, "attach") or self._kick_out_fd < 0 or self._kick_recv_fd < 0:
            return False
        # The device's callbacks, looked up at each call as a method call would be (a test may replace one).
        hooks = (
            lambda queue: device._kick(queue),
            lambda n: device._take_batch(n),
            lambda rc: device._c_send_failed(rc),
            lambda rc: device._c_recv_failed(rc),
            lambda ep, out, limit, bufsize: device._take_waiting(ep, out, limit, bufsize),
        )
        self._gate, self._gate_args = gate, (lock, (trace_enabled, trace_level), hooks)
        self._attach_gate()
        gate.set_wait(self._poll_fd, self._kick_fd, self._wake_fd, changed.notify_all)
        self._attached(gate)
        return True

    def _attached(self, gate: Any) -> None:
        """What a role adds once the gate is attached: zero-copy receives (both roles) lend their messages in C,
        a payload being a read-only slice of the memory the receive ring's buffers lie in, as the core's
        ``memory.view(...).toreadonly()``; the host adds zero-copy sends."""
        if hasattr(gate, "set_lend"):  # the compiled Gate: Message's base is that module's MessageBase (it checks)
            gate.set_lend(tuple(v.toreadonly() for v in self._recv_ring.region_views()), Message)

    def _attach_gate(self) -> None:
        def addr(ptr: Any) -> int:
            return int(self._ffi.cast("uintptr_t", ptr)) if ptr is not None else 0

        pool, npool, pool_cap, tx_size, rx_size, rx_count = self._gate_pointers()
        guard, guard_attr, guard_value = self._guard()
        lock, (trace_enabled, trace_level), hooks = self._gate_args
        self._gate.attach(
            api=addr(self._lib.rpf_api()),
            rx=addr(self._recv_vq),
            tx=addr(self._send_vq),
            pool=addr(pool),
            npool=addr(npool),
            pool_cap=pool_cap,
            tx_size=tx_size,
            rx_size=rx_size,
            rx_count=rx_count,
            max_payload=self.max_payload,
            out=addr(self._c_out),
            lens=addr(self._c_lens),
            out_cap=self._out_cap,
            kick_fd=self._kick_out_fd,
            rx_kick_fd=self._kick_recv_fd,
            remote=isinstance(self, RemoteFastPath),
            lock=lock,
            trace_enabled=trace_enabled,
            trace_level=trace_level,
            guard=guard,
            guard_attr=guard_attr,
            guard_value=guard_value,
            hooks=hooks,
        )

    def watch_rings(self, lock: Any, publish_fd: int) -> None:
        """Have the device's lock (a DeviceLock) ask a mirroring doorbell for a publish through ``publish_fd``
        at each release after which a field this side writes in these rings changed (on either path: the UART
        mirror's peer sees only what is sent); :meth:`close` stops it."""
        lock.watch(publish_fd, int(self._ffi.cast("uintptr_t", self._recv_vq)),
                   int(self._ffi.cast("uintptr_t", self._send_vq)))  # fmt: skip
        self._watching = lock

    def close(self) -> None:
        """Let go of the shared memory (its mapping cannot close while a view of it lives)."""
        if self._watching is not None:
            self._watching.watch(-1, 0, 0)
            self._watching = None
        if self._gate is not None:
            self._gate.detach()
            self._gate = None

    def _gate_pointers(self) -> tuple[Any, ...]:
        """(pool, pool count, pool capacity, send size, receive size, batch count) for the gate."""
        raise NotImplementedError

    def _guard(self) -> tuple[object, str, object]:
        """(obj, attr, value): the C methods send only while ``getattr(obj, attr) is value`` (checked with the
        lock held), as this class's :meth:`send` checks it first."""
        raise NotImplementedError

    def send_fault(self, rc: int) -> None:
        """Raise RemoteProtocolError for a failure code of a send (the ring's own check names what and where)."""
        self._fault(rc, self._send_queue_obj, self.send_where)

    def recv_fault(self, rc: int) -> None:
        """The same for a receive."""
        self._fault(rc, self._recv_queue_obj, self.where)

    def _fault(self, rc: int, queue: DriverQueue | DeviceQueue, where: str) -> None:
        """Report a broken ring the way the general path does (the queue's own check names what and where)."""
        try:
            queue._check(rc)
        except RemoteFault as exc:
            raise RemoteProtocolError(f"{where}: {exc}") from exc
        raise RemoteProtocolError(f"{where}: the C path failed with code {rc}")


class HostFastPath(_FastPath):
    recv_queue, send_queue, where, send_where = RX_VRING, TX_VRING, "vring 0", "vring 1"

    def __init__(self, core: HostCore, doorbell: Doorbell, wake_fd: int) -> None:
        super().__init__(core.rx, core.tx, core._rx_out, core._rx_lens, doorbell, wake_fd)
        lib = self._lib
        self._send_c, self._recv_c = lib.rpf_send, lib.rpf_recv
        self._take_c, self._send_buffer_c = lib.rpf_take, lib.rpf_send_buffer
        self._send_buffers_c = lib.rpf_send_buffers
        self._send_many_c = lib.rpf_send_many
        self._addr = self._ffi.new("uint64_t *")
        self.core = core
        self._bind_pool()
        self.max_payload = core.max_payload
        self._tx_size = core.tx_size
        self._rx_size = core.rx_size
        self._rx_count = core.rx_count
        # One view of the send buffers, sliced per zero-copy buffer (cheaper than looking up the region each time).
        lo = min(core.tx_addrs, default=0)
        self._tx_lo = lo
        self._tx_view = core.memory.view(lo, max(core.tx_addrs, default=lo) + self._tx_size - lo)

    def close(self) -> None:
        super().close()
        self._tx_view.release()

    def _bind_pool(self) -> None:
        """The send pool lives in the virtio module's arrays (replaced when the host restarts)."""
        tx_ffi, _, pool, npool, cap = self._send_ring.handles()
        self._pool_src = pool
        self._pool = self._cast("uint64_t *", tx_ffi, pool)
        self._npool = self._cast("uint32_t *", tx_ffi, npool)
        self._pool_cap = cap
        if self._gate is not None:
            self._attach_gate()

    def _gate_pointers(self) -> tuple[Any, ...]:
        return (self._pool, self._npool, self._pool_cap, self._tx_size, self._rx_size, self._rx_count)

    def _guard(self) -> tuple[object, str, object]:
        return (self._send_ring, "pool_array", self._pool_src)  # the pool not replaced (a restart rebinds it)

    # --- per message ---------------------------------------------------------------------------------------
    def send(self, src: int, dst: int, data: bytes | bytearray | memoryview) -> int:
        """0: no free buffer; 1: sent (and kicked, if the remote asked and C can kick the doorbell);
        1 | NOTIFY: sent, and the caller must kick vring 1. The caller checked the size (:attr:`max_payload`)."""
        if self._send_ring.pool_array is not self._pool_src:
            self._bind_pool()
        buf = data if type(data) is bytes else self._ffi.from_buffer(data)
        rc: int = self._send_c(
            self._send_vq,
            self._pool,
            self._npool,
            self._pool_cap,
            self._tx_size,
            src,
            dst,
            buf,
            len(data),
            self._kick_out_fd,
        )
        if rc < 0:
            self.send_fault(rc)
        return rc

    def send_many(self, src: int, dst: int, payloads: Sequence[bytes | bytearray | memoryview]) -> int:
        """As many of ``payloads`` as free buffers allow, in order, one publish: the count | NOTIFY (the caller
        kicks vring 1). The caller checked the sizes."""
        if self._send_ring.pool_array is not self._pool_src:
            self._bind_pool()
        data, lens = _batch(payloads)
        rc: int = self._send_many_c(
            self._send_vq,
            self._pool,
            self._npool,
            self._pool_cap,
            self._tx_size,
            src,
            dst,
            self._ffi.from_buffer(data),
            self._ffi.from_buffer("uint32_t[]", lens),
            len(lens),
            self._kick_out_fd,
        )
        if rc < 0:
            self.send_fault(rc)
        return rc

    def _attached(self, gate: Any) -> None:
        """Let the endpoints' zero-copy sends run in C too (their buffers are views of :attr:`_tx_view`, made by
        the C ``get_buffer`` as :meth:`buffer` makes them)."""
        super()._attached(gate)
        if hasattr(gate, "set_zero_copy") and isinstance(TxBuffer, type) and self._tx_view.nbytes:
            gate.set_zero_copy(self._tx_view, self._tx_lo, TxBuffer, self.core)  # its buffers' token

    def take(self) -> int | None:
        """A free send buffer's address for a zero-copy send (reclaiming returned ones), or None."""
        if self._send_ring.pool_array is not self._pool_src:
            self._bind_pool()
        rc: int = self._take_c(self._send_vq, self._pool, self._npool, self._pool_cap, self._addr)
        if rc < 0:
            self.send_fault(rc)
        return int(self._addr[0]) if rc else None

    def buffer(self, addr: int) -> TxBuffer:
        """The zero-copy handle of the send buffer at ``addr`` (from :meth:`take`)."""
        start = addr - self._tx_lo + HEADER_SIZE
        return TxBuffer(addr, self._tx_view[start : start + self.max_payload], self.max_payload, self.core)

    def send_buffer(self, addr: int, src: int, dst: int, length: int, reserved: int) -> int:
        """Header, add, publish (and kick) for a buffer from :meth:`take` the caller filled: 1, or 1 | NOTIFY
        when the caller must kick."""
        rc: int = self._send_buffer_c(self._send_vq, addr, self._tx_size, src, dst, length, reserved, self._kick_out_fd)
        if rc < 0:
            self.send_fault(rc)
        return rc

    def send_buffers(self, addrs: Sequence[int], src: int, dst: int, lengths: Sequence[int]) -> int:
        """:meth:`send_buffer` for a batch (rpf_send_buffers): headers, adds, one publish: ``len(addrs)``, or
        | NOTIFY when the caller must kick; 0 when the ring has fewer descriptors free (nothing added)."""
        ffi = self._ffi
        rc: int = self._send_buffers_c(
            self._send_vq,
            ffi.new("uint64_t[]", list(addrs)),
            ffi.new("uint32_t[]", list(lengths)),
            len(addrs),
            self._tx_size,
            src,
            dst,
            self._kick_out_fd,
        )
        if rc < 0:
            self.send_fault(rc)
        return rc

    def recv(self, arm: int, limit: int = 0) -> int:
        """Messages now in the batch buffer (their buffers re-posted), | NOTIFY when the remote wants a kick of
        vring 0. ``arm`` 1: when none waits, ask the remote to kick us for the next one; -1: first tell the
        remote not to kick us for new messages; 0: leave that as it is. ``limit``: at most that many (0: a
        whole batch buffer)."""
        count = min(limit, self._rx_count) if limit > 0 else self._rx_count
        rc: int = self._recv_c(self._recv_vq, self._c_out, self._out_cap, self._c_lens, count, self._rx_size, arm)
        if rc < 0:
            self.recv_fault(rc)
        return rc


class RemoteFastPath(_FastPath):
    recv_queue, send_queue, where, send_where = TX_VRING, RX_VRING, "vring 1", "vring 0"
    max_payload = DEV_MAX  # the host's buffer size decides the real limit (the general path names it)

    def __init__(self, core: RemoteCore, doorbell: Doorbell, wake_fd: int) -> None:
        super().__init__(core.from_host, core.to_host, core._rx_out, core._rx_lens, doorbell, wake_fd)
        self._send_c, self._recv_c = self._lib.rpf_dev_send, self._lib.rpf_dev_recv
        self._send_many_c = self._lib.rpf_dev_send_many
        self.core = core
        self._max = len(core._rx_lens)

    def _gate_pointers(self) -> tuple[Any, ...]:
        return (None, None, 0, 0, 0, self._max)  # no pool: the host's buffers come from vring 0

    def _guard(self) -> tuple[object, str, object]:
        return (self.core, "_spare", None)  # no host buffer the general path popped and kept goes first

    def _attached(self, gate: Any) -> None:
        """Let the endpoints' zero-copy sends run in C too: the C ``get_buffer`` holds the host's next posted
        receive buffer out of vring 0 (rpf_dev_lend), its view a slice of the memory that ring's buffers lie in,
        as RemoteCore.get_tx_buffer's ``memory.view``; kept buffers (``_spare``, the guard) are the general
        path's."""
        super()._attached(gate)
        if hasattr(gate, "set_zero_copy"):
            gate.set_zero_copy(tuple(self._send_ring.region_views()), 0, TxBuffer, self.core)  # its buffers' token

    def send_ready(self) -> bool:
        """The host has posted a buffer to send into."""
        return bool(self._lib.rp_dev_has_avail(self._send_vq) > 0)

    def send(self, src: int, dst: int, data: bytes | bytearray | memoryview) -> int:
        """0: no host buffer posted; 1: sent (and kicked when asked and possible); 1 | NOTIFY: sent, the caller
        kicks vring 0; GENERAL: the host's buffer is too small (nothing taken: the general path says so)."""
        if self.core._spare is not None:
            return GENERAL  # a popped buffer waits in the general path's hands: it goes first
        buf = data if type(data) is bytes else self._ffi.from_buffer(data)
        rc: int = self._send_c(self._send_vq, src, dst, buf, len(data), self._kick_out_fd)
        if rc < 0 and rc != GENERAL:
            self.send_fault(rc)
        return rc

    def send_many(self, src: int, dst: int, payloads: Sequence[bytes | bytearray | memoryview]) -> int:
        """As many of ``payloads`` as posted host buffers allow, one publish: the count | NOTIFY (the caller
        kicks vring 0); GENERAL: the first is the general path's (a host buffer too small, a spare held, or
        larger than the C copy takes)."""
        if self.core._spare is not None or any(len(p) > self.max_payload for p in payloads):
            return GENERAL
        data, lens = _batch(payloads)
        rc: int = self._send_many_c(
            self._send_vq,
            src,
            dst,
            self._ffi.from_buffer(data),
            self._ffi.from_buffer("uint32_t[]", lens),
            len(lens),
            self._kick_out_fd,
        )
        if rc < 0 and rc != GENERAL:
            self.send_fault(rc)
        return rc

    def recv(self, arm: int, limit: int = 0) -> int:
        """Messages now in the batch buffer (the host's buffers given back), | NOTIFY when the caller must kick
        vring 1; GENERAL: a message larger than the batch buffer waits (the general path takes it). ``limit``:
        at most that many (0: as many as fit)."""
        count = min(limit, self._max) if limit > 0 else self._max
        rc: int = self._recv_c(self._recv_vq, self._c_out, self._out_cap, self._c_lens, count, arm, self._kick_recv_fd)
        if rc < 0 and rc != GENERAL:
            self.recv_fault(rc)
        return rc


def _batch(payloads: Sequence[bytes | bytearray | memoryview]) -> tuple[bytes, array[int]]:
    """The payloads back to back and their lengths, as rpf_send_many and rpf_dev_send_many take them."""
    return b"".join(payloads), array("I", map(len, payloads))
