"""The public virtqueue API: :class:`DriverQueue` and :class:`DeviceQueue` over a :class:`transports.Memory`.

Sans-I/O: operations read and write ring memory and return what to do next — :meth:`publish` returns a
:class:`Notify` intent ("notify queue N") when the peer asked to be told, ``None`` when it suppressed
notifications. Transports deliver intents; nothing here touches a file, a socket or a clock.

Errors say whose fault they are: :class:`RemoteFault` (the peer broke the ring; the queue stays in the error
state and every later call raises :class:`QueueBrokenError`) or :class:`LocalError` (this side's misuse).
"""

from __future__ import annotations

from collections.abc import MutableSequence, Sequence
from typing import NamedTuple

from transports.memory import RegionMemory
from virtio.backend import ring_class
from virtio.cring import CVring
from virtio.errors import LocalError, QueueBrokenError, RemoteFault, RingFullError
from virtio.layout import VringLayout, avail_size, desc_size, used_size
from virtio.pyring import PyVring
from virtio.status import (
    DESC_F_WRITE,
    DESCRIPTIONS,
    ROLE_DEVICE,
    ROLE_DRIVER,
    RP_ERR_BROKEN,
    RP_ERR_FULL,
    describe,
)


class Notify(NamedTuple):
    """Intent: notify the peer about queue ``queue``."""

    queue: int


class Buf(NamedTuple):
    """A buffer to add: device address, length, and whether the device may write it."""

    addr: int
    len: int
    write: bool = False


class UsedBuf(NamedTuple):
    token: int
    len: int
    head: int


class Desc(NamedTuple):
    """A validated descriptor: device address, length, flags and its slot in the descriptor table."""

    addr: int
    len: int
    flags: int
    slot: int

    @property
    def writable(self) -> bool:
        return bool(self.flags & DESC_F_WRITE)


class Chain(NamedTuple):
    head: int
    descs: tuple[Desc, ...]


class _Closed:
    """Stands in for the engine after close(): every use is a local error, never a touch of freed memory."""

    def __init__(self, index: int) -> None:
        self._index = index

    def __getattr__(self, name: str) -> object:
        raise LocalError(f"queue {self._index} is closed", queue=self._index, code="CLOSED")


class _Queue:
    role = ROLE_DRIVER

    def __init__(
        self,
        memory: RegionMemory,
        layout: VringLayout,
        *,
        index: int = 0,
        event_idx: bool = False,
        backend: str | None = None,
    ) -> None:
        self.memory = memory
        self.layout = layout
        self.index = index
        self.event_idx = event_idx
        num = layout.num
        desc = memory.view(layout.desc, desc_size(num))
        avail = memory.view(layout.avail, avail_size(num))
        used = memory.view(layout.used, used_size(num))
        regions = [(r.da, r.size, memory.view(r.da, r.size)) for r in memory.regions]
        self._ring: PyVring = ring_class(backend)(self.role, num, index, desc, avail, used, regions, event_idx)

    @property
    def backend(self) -> str:
        return self._ring.backend

    @property
    def c_engine(self) -> CVring | None:
        """The C engine's queue, for C code that works on the same ring (the rpmsg host's C path: rpmsg/fastpath.py);
        None on the Python engine, or once closed."""
        ring: object = self._ring
        return ring if isinstance(ring, CVring) else None

    def close(self) -> None:
        """Let go of the shared memory (a mapping cannot be closed while a queue still views it)."""
        if not isinstance(self._ring, _Closed):
            self._ring.close()
            self._ring = _Closed(self.index)  # type: ignore[assignment]

    def __enter__(self) -> _Queue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def num(self) -> int:
        return self.layout.num

    @property
    def broken(self) -> bool:
        return bool(self._ring.broken)

    def state(self) -> dict[str, object]:
        return self._ring.state()

    def _check(self, rc: int) -> int:
        if rc >= 0:
            return rc
        ring = self._ring
        text = f"queue {self.index}: {describe(ring.err, ring.err_where, ring.err_value)}"
        code = DESCRIPTIONS.get(ring.err, (str(ring.err), ""))[0]
        if rc == RP_ERR_BROKEN:
            raise QueueBrokenError(
                f"{text} (the queue is in the error state)",
                queue=self.index,
                code=code,
                where=ring.err_where,
                value=ring.err_value,
            )
        if ring.broken:
            raise RemoteFault(text, queue=self.index, code=code, where=ring.err_where, value=ring.err_value)
        if rc == RP_ERR_FULL:
            raise RingFullError(text, queue=self.index, code=code)
        raise LocalError(text, queue=self.index, code=code)

    def _notify(self, rc: int) -> Notify | None:
        return Notify(self.index) if self._check(rc) else None


class DriverQueue(_Queue):
    """The driver side: owns descriptors and the avail ring; adds buffers, collects used ones."""

    role = ROLE_DRIVER

    def reset(self) -> None:
        """Zero the ring and free every descriptor (the driver initialises rings, Linux ``vring_init``)."""
        self._ring.drv_reset()

    @property
    def num_free(self) -> int:
        return int(self._ring.num_free)

    def add(self, bufs: Sequence[Buf], token: int) -> int:
        """Add one chain (device-readable buffers first, then writable ones); returns its head. Not visible to
        the device until :meth:`publish`."""
        return self._check(self._ring.drv_add([(b.addr, b.len, DESC_F_WRITE if b.write else 0) for b in bufs], token))

    def add_many(self, bufs: Sequence[Buf], tokens: Sequence[int]) -> int:
        """Add single-buffer chains until the ring is full; returns how many were added."""
        flat = [(b.addr, b.len, DESC_F_WRITE if b.write else 0) for b in bufs]
        return self._check(self._ring.drv_add_many(flat, tokens))

    def publish(self) -> Notify | None:
        """Make added chains visible; a :class:`Notify` when the device wants to be told."""
        return self._notify(self._ring.drv_publish())

    def get_used(self, max_count: int | None = None) -> list[UsedBuf]:
        rc, items = self._ring.drv_get_used(self.num if max_count is None else max_count)
        self._check(rc)
        return [UsedBuf(*i) for i in items]

    def peek_used(self) -> UsedBuf | None:
        """The next used buffer, as :meth:`get_used` gives it, left in the ring until :meth:`skip_used` takes it
        (a reader that looks at a buffer in place first, then decides); None when none waits."""
        rc, used = self._ring.drv_peek()
        self._check(rc)
        return None if used is None else UsedBuf(*used)

    def skip_used(self) -> UsedBuf:
        """Take the used buffer :meth:`peek_used` gave (its descriptors free, as after :meth:`get_used`)."""
        rc, used = self._ring.drv_skip()
        self._check(rc)
        assert used is not None
        return UsedBuf(*used)

    def has_used(self) -> bool:
        return bool(self._check(self._ring.drv_has_used()))

    def disable_callbacks(self) -> None:
        self._ring.drv_disable_cb()

    def enable_callbacks(self) -> bool:
        """Ask to be notified again; True when used buffers are already waiting (poll once more)."""
        return bool(self._check(self._ring.drv_enable_cb()))

    # --- batches with copies (one C call each) ---
    def set_pool(self, addrs: Sequence[int]) -> None:
        """Free buffers (device addresses) for :meth:`send_copy`; :meth:`reclaim` returns used ones here."""
        self._ring.drv_pool_set(addrs)

    @property
    def pool(self) -> list[int]:
        return list(self._ring.pool)

    def pool_take(self) -> int | None:
        """One free pool buffer for the caller to fill (zero-copy); give it back by adding it with token = its
        address (reclaim returns it) or with :meth:`pool_put`."""
        return self._ring.drv_pool_take()

    def pool_put(self, addr: int) -> None:
        self._ring.drv_pool_put(addr)

    def send_copy(self, data: bytes | memoryview, lens: Sequence[int], buf_size: int) -> int:
        """Copy payloads (concatenated in ``data``) into pool buffers and add each; returns how many."""
        return self._check(self._ring.drv_send_copy(data, lens, buf_size))

    def reclaim(self, cap: int = 1 << 30) -> int:
        """Return used buffers to the pool; returns how many."""
        return self._check(self._ring.drv_reclaim(cap))

    def recv_copy_into(
        self, out: memoryview | bytearray, lens: MutableSequence[int], max_count: int, buf_size: int
    ) -> int:
        """Copy used device-written buffers into ``out`` (lengths into ``lens``) and post them again.

        Each buffer's token must be its device address (as :meth:`add_many` with ``tokens=addrs`` makes it)."""
        return self._check(self._ring.drv_recv_copy_into(memoryview(out), lens, max_count, buf_size))


class DeviceQueue(_Queue):
    """The device side: takes available chains, returns them used."""

    role = ROLE_DEVICE

    def pop(self) -> Chain | None:
        rc, head, descs = self._ring.dev_pop(self.num)
        if self._check(rc) == 0:
            return None
        return Chain(head, tuple(Desc(*d) for d in descs))

    def peek(self, ahead: int = 0) -> Chain | None:
        """The next chain, as :meth:`pop` gives it, left in the ring until :meth:`skip` takes it; ``ahead``: the
        chain that many after the next (None when fewer wait)."""
        rc, head, descs = self._ring.dev_peek(self.num, ahead)
        if self._check(rc) == 0:
            return None
        return Chain(head, tuple(Desc(*d) for d in descs))

    def skip(self) -> int:
        """Take the chain :meth:`peek` gave (push it back as after :meth:`pop`); its head."""
        return self._check(self._ring.dev_skip())

    def pop_many(self, max_chains: int | None = None) -> list[Chain]:
        rc, chains = self._ring.dev_pop_many(self.num, self.num if max_chains is None else max_chains)
        self._check(rc)
        return [Chain(h, tuple(Desc(*d) for d in descs)) for h, descs in chains]

    def push(self, head: int, length: int) -> None:
        self._check(self._ring.dev_push(head, length))

    def push_many(self, heads: Sequence[int], lens: Sequence[int]) -> None:
        self._check(self._ring.dev_push_many(heads, lens))

    def publish(self) -> Notify | None:
        return self._notify(self._ring.dev_publish())

    def adopt_used_index(self) -> int:
        """Start the used index where the driver left it, not at 0 (call before the first pop). Only for a driver
        that pre-fills the used ring: RPMsg-Lite's master puts its send buffers on vring 1's used ring at init
        (lib/rpmsg_lite/rpmsg_lite.c ``rpmsg_lite_master_init``, ``virtqueue_fill_used_buffers``). Returns it."""
        self._check(self._ring.dev_adopt_used())
        return int.from_bytes(self.memory.read(self.layout.used + 2, 2), "little")

    def has_avail(self) -> bool:
        return bool(self._check(self._ring.dev_has_avail()))

    def disable_notifications(self) -> None:
        self._ring.dev_disable_notify()

    def enable_notifications(self) -> bool:
        """Ask to be notified again; True when chains are already waiting (poll once more)."""
        return bool(self._check(self._ring.dev_enable_notify()))

    def read(self, desc: Desc) -> bytes:
        return self.memory.read(desc.addr, desc.len)

    def write(self, desc: Desc, data: bytes) -> None:
        if len(data) > desc.len or not desc.writable:
            raise LocalError(
                f"queue {self.index}: {len(data)} bytes do not fit writable descriptor {desc.slot} "
                f"({desc.len} bytes, flags {desc.flags:#x})",
                queue=self.index,
                code="SPACE",
            )
        self.memory.write(desc.addr, data)

    def recv_copy_into(self, out: memoryview | bytearray, lens: MutableSequence[int], max_count: int) -> int:
        """Pop chains, copy their readable bytes into ``out`` (lengths into ``lens``), return them used."""
        return self._check(self._ring.dev_recv_copy_into(memoryview(out), lens, max_count))

    def send_copy(self, data: bytes | memoryview, lens: Sequence[int]) -> int:
        """Fill available writable chains with payloads; returns how many were sent."""
        return self._check(self._ring.dev_send_copy(data, lens))
