"""The two rpmsg roles over virtqueues, without I/O: :class:`HostCore` (virtio driver) and :class:`RemoteCore`
(virtio device).

Theory of operation
-------------------
The host owns every buffer (Linux ``rpmsg_probe``): one pool, ``rx_count`` buffers posted device-writable to
vring 0 (remote -> host) at start, ``tx_count`` handed out for sending on vring 1 (host -> remote) and taken back
from vring 1's used ring. The remote never allocates: it sends by filling a host RX buffer popped from vring 0, and
receives by popping host TX buffers from vring 1, returning each (used) once read.

Both cores are sans-I/O: operations return nothing about notifications directly; instead queues that need a
kick accumulate in :attr:`intents` (``take_intents()`` drains them) and incoming traffic comes out of
:meth:`poll` as events. A runner (:mod:`rpmsg.device`) moves intents to a doorbell and events to endpoints.

Interoperability rules (see :mod:`rpmsg.protocol`): payload length from ``hdr.len``, bounded by the used length
and the buffer; ``reserved`` ignored; any peer address accepted.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import struct
from array import array
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from rpmsg.errors import LocalProtocolError, MessageTooLong, RemoteProtocolError, WouldBlock
from rpmsg.log_limit import level_for
from rpmsg.protocol import (
    HEADER,
    HEADER_SIZE,
    LINUX_BUFFER_SIZE,
    MAX_PAYLOAD,
    NS_ADDR,
    RX_VRING,
    TX_VRING,
    check_payload,
    pack_header,
    pack_ns,
    unpack_header,
    unpack_ns,
)
from transports.memory import RegionMemory
from virtio import Buf, Chain, DeviceQueue, DriverQueue, Notify, VringLayout
from virtio.errors import LocalError, RemoteFault, VirtioError
from virtio.status import DESC_F_WRITE

if TYPE_CHECKING:
    from rpmsg._endpoint_c import TxBufferBase
else:
    from rpmsg._native import endpoint_module

    TxBufferBase = endpoint_module().TxBufferBase if endpoint_module() is not None else object

log = logging.getLogger(__name__)

Payload = bytes | bytearray | memoryview


@dataclass
class Message:
    """A received message. ``payload`` is a copy, unless it was received zero-copy: then it is a read-only
    view of shared memory, valid until :meth:`release` (which hands the buffer back to the ring)."""

    src: int
    dst: int
    payload: bytes | memoryview
    _release: Callable[[], None] | None = field(default=None, repr=False)

    @property
    def held(self) -> bool:
        return self._release is not None

    def release(self) -> None:
        if self._release is not None:
            release, self._release = self._release, None
            if isinstance(self.payload, memoryview):
                self.payload.release()  # later use raises ValueError instead of reading a recycled buffer
            release()

    def __enter__(self) -> Message:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(frozen=True)
class ChannelEvent:
    """The peer announced (``destroy`` False) or withdrew a channel through the name service."""

    name: str
    addr: int
    destroy: bool


Event = Message | ChannelEvent


class TxBuffer(TxBufferBase):
    """A send buffer in shared memory for zero-copy sends: write into :attr:`view`, then ``send_buffer``.

    After it is sent (or given back) the view is released: a late write raises, it cannot corrupt a buffer the
    peer is reading. Its fields live in rpmsg._endpoint_c.TxBufferBase when that is built, so that the endpoint's
    C ``get_buffer`` makes one without running Python (docs/rpmsg.md, "Zero-copy")."""

    def __init__(self, addr: int, view: memoryview, capacity: int, token: object = None) -> None:
        self.addr = addr
        self.view = view
        self.capacity = capacity
        self.token = token
        self.done = False

    if TxBufferBase is object:  # no compiled base: its methods, in Python

        def _finish(self) -> None:
            self.done = True
            self.view.release()

        def __setitem__(self, key: int | slice, value: object) -> None:
            """``buf[i] = byte``, ``buf[a:b] = data``: into the payload (refused once sent)."""
            if self.done:
                raise ValueError("this TX buffer was sent or given back: take another (get_buffer)")
            self.view[key] = value  # type: ignore[call-overload]

        def __len__(self) -> int:
            return self.capacity


def _flagged_writable(length: int) -> str:
    return (
        f"descriptor flagged device-writable (VRING_DESC_F_WRITE), so its {length} bytes are not for the device "
        "to read: a host send buffer must be device-readable (an RPMsg-Lite master flags all its descriptors so: "
        "use the rpmsg-lite profile, rpmsg.rpmsg_lite)"
    )


def _never(dst: int) -> bool:
    return False


def from_host_num(layout: VringLayout) -> int:
    return layout.num


class _CoreBase:
    def __init__(self) -> None:
        self.intents: set[int] = set()
        self.dropped = 0  # malformed messages dropped (buffer kept); see the log for each

    def _drop(self, why: str) -> None:
        self.dropped += 1
        log.log(level_for(self.dropped), "dropped a malformed message (%d so far): %s", self.dropped, why)

    def take_intents(self) -> list[int]:
        out = sorted(self.intents)
        self.intents.clear()
        return out

    def _note(self, intent: Notify | None) -> None:
        if intent is not None:
            self.intents.add(intent.queue)

    def _publish_taken(self, queue: DriverQueue | DeviceQueue) -> None:
        """Publish after taking messages in. An entry after them that broke the queue (the engine took the good
        ones, then stopped) makes this fail: the messages taken are still delivered, and the next poll reports
        the broken queue (nothing the peer completed correctly is lost to a later bad entry)."""
        with contextlib.suppress(RemoteFault):
            self._note(queue.publish())

    def _parse_batch(self, out: bytearray, lens: array[int], n: int, where: str) -> list[Event]:
        """Messages copied back to back into ``out`` (sizes in ``lens``): each header checked, each dispatched."""
        events: list[Event] = []
        pos = 0
        unpack = HEADER.unpack_from
        for i in range(n):
            size = lens[i]
            if size < HEADER_SIZE:
                self._drop(self._short_message(where, size, i, n))
            else:
                src, dst, _reserved, length, _flags = unpack(out, pos)
                if length > size - HEADER_SIZE:
                    self._drop(f"{where}: header len {length} from {src:#x} runs past its {size}-byte buffer")
                else:
                    start = pos + HEADER_SIZE
                    event = self._dispatch(src, dst, bytes(out[start : start + length]), None)
                    if event is not None:
                        events.append(event)
            pos += size
        return events

    def _short_message(self, where: str, size: int, i: int, n: int) -> str:
        """Why message ``i`` of a batch of ``n`` (``size`` bytes) was too short for a header."""
        return f"{where}: a {size}-byte message cannot hold the rpmsg header"

    def _dispatch(
        self, src: int, dst: int, payload: bytes | memoryview, release: Callable[[], None] | None
    ) -> Event | None:
        if dst == NS_ADDR:
            try:
                ns = unpack_ns(payload)
            except RemoteProtocolError as exc:
                self._drop(f"name service from {src:#x}: {exc}")
                return None
            finally:
                if release is not None:
                    release()
            return ChannelEvent(name=ns.name, addr=ns.addr, destroy=ns.destroy)
        return Message(src=src, dst=dst, payload=payload, _release=release)


class HostCore(_CoreBase):
    """The host (virtio driver) side of one rpmsg device."""

    def __init__(
        self,
        memory: RegionMemory,
        rx_layout: VringLayout,
        tx_layout: VringLayout,
        *,
        pool_da: int,
        rx_count: int | None = None,
        tx_count: int | None = None,
        rx_size: int = LINUX_BUFFER_SIZE,
        tx_size: int = LINUX_BUFFER_SIZE,
        event_idx: bool = False,
    ) -> None:
        super().__init__()
        self.memory = memory
        self.rx = DriverQueue(memory, rx_layout, index=RX_VRING, event_idx=event_idx)
        self.tx = DriverQueue(memory, tx_layout, index=TX_VRING, event_idx=event_idx)
        self.rx_count = min(rx_layout.num, 256) if rx_count is None else rx_count
        self.tx_count = min(tx_layout.num, 256) if tx_count is None else tx_count
        if self.rx_count > rx_layout.num:
            raise LocalProtocolError(f"{self.rx_count} RX buffers cannot all be posted to a vring of {rx_layout.num}")
        for name, size in (("rx_size", rx_size), ("tx_size", tx_size)):
            if size <= HEADER_SIZE:
                raise LocalProtocolError(f"{name} {size} leaves no room after the {HEADER_SIZE}-byte header")
        self.rx_size = rx_size
        self.tx_size = tx_size
        self.rx_addrs = [pool_da + i * rx_size for i in range(self.rx_count)]
        tx_base = pool_da + self.rx_count * rx_size
        self.tx_addrs = [tx_base + i * tx_size for i in range(self.tx_count)]
        self._rx_out = bytearray(self.rx_count * rx_size)  # where one C call copies a batch of messages
        self._rx_lens = array("I", bytes(4 * self.rx_count))
        self.started = False

    @property
    def max_payload(self) -> int:
        """What one send carries: the buffer after the header, and at most the header's u16 len."""
        return min(self.tx_size - HEADER_SIZE, MAX_PAYLOAD)

    def start(self) -> None:
        """Initialise both rings, post every RX buffer, and ask for a kick of vring 0 (Linux rpmsg_probe)."""
        self.rx.reset()
        self.tx.reset()
        self.rx.add_many([Buf(a, self.rx_size, write=True) for a in self.rx_addrs], self.rx_addrs)
        # Linux suppresses TX-complete interrupts; it re-enables them only while a sender waits for a buffer.
        self.tx.disable_callbacks()
        self.tx.set_pool(list(reversed(self.tx_addrs)))
        self.rx.publish()
        self.intents.add(RX_VRING)  # kick vring 0 once, even if suppressed: it is the start signal
        self.started = True

    # --- sending ---------------------------------------------------------------------------------------------
    def _take_tx(self) -> int:
        addr = self.tx.pool_take()
        if addr is None:
            self._reclaim()
            addr = self.tx.pool_take()
        if addr is None:
            raise WouldBlock("no free TX buffer: the remote has not returned any yet")
        return addr

    def _reclaim(self) -> None:
        try:
            self.tx.reclaim()
        except RemoteFault as exc:
            raise RemoteProtocolError(f"vring 1: {exc}") from exc

    def notifications(self, on: bool) -> bool:
        """Ask the remote to kick us for new messages (True if some already wait), or not (busy-polling)."""
        if on:
            return self.rx.enable_callbacks()
        self.rx.disable_callbacks()
        return False

    def unconfirmed(self) -> int:
        """Sent messages whose buffers the remote has not given back (yet)."""
        with contextlib.suppress(RemoteProtocolError):
            self._reclaim()
        return self.tx_count - len(self.tx.pool)

    def want_buffer_wakeup(self, on: bool) -> bool:
        """Ask the remote to kick when it returns TX buffers (a sender is waiting); True if some are back."""
        if on:
            return self.tx.enable_callbacks()
        self.tx.disable_callbacks()
        return False

    def send(self, src: int, dst: int, payload: bytes | bytearray | memoryview) -> None:
        check_payload(len(payload), self.tx_size - HEADER_SIZE, f"a {self.tx_size}-byte buffer")
        message = pack_header(src, dst, len(payload)) + bytes(payload)
        lens = [len(message)]
        # One C call copies the message into a free buffer and adds it; reclaim only when none is free.
        if not self.tx.send_copy(message, lens, self.tx_size):
            self._reclaim()
            if not self.tx.send_copy(message, lens, self.tx_size):
                raise WouldBlock("no free TX buffer: the remote has not returned any yet")
        self._note(self.tx.publish())

    def send_many(self, src: int, dst: int, payloads: Sequence[Payload]) -> int:
        """Send as many of ``payloads`` as free buffers allow, in order, with one publish: how many went (0: no
        buffer free). Every size is checked before anything is sent (MessageTooLong: none went). The twin of
        rpmsg/csrc/fastpath.c's rpf_send_many."""
        for payload in payloads:
            check_payload(len(payload), self.tx_size - HEADER_SIZE, f"a {self.tx_size}-byte buffer")
        if not payloads:
            return 0
        messages = [pack_header(src, dst, len(p)) + bytes(p) for p in payloads]
        lens = [len(m) for m in messages]
        data = b"".join(messages)
        n = self.tx.send_copy(data, lens, self.tx_size)
        if n < len(lens):
            self._reclaim()
            n += self.tx.send_copy(data[sum(lens[:n]) :], lens[n:], self.tx_size)
        if n:
            self._note(self.tx.publish())
        return n

    def get_tx_buffer(self) -> TxBuffer:
        addr = self._take_tx()
        return TxBuffer(addr, self.memory.view(addr + HEADER_SIZE, self.max_payload), self.max_payload)

    def check_tx_buffer(self, buf: TxBuffer, length: int) -> None:
        """What makes a zero-copy send refused: a buffer already sent or given back, a length it cannot hold."""
        if buf.done:
            raise LocalProtocolError("this TX buffer was already sent or given back")
        if not 0 <= length <= buf.capacity:
            raise MessageTooLong(
                f"{length} bytes do not fit the buffer's {buf.capacity}", size=length, limit=buf.capacity
            )

    def send_buffer(self, buf: TxBuffer, src: int, dst: int, length: int, *, reserved: int = 0) -> None:
        """Send a filled buffer. ``reserved`` is 0 for every real sender; conformance checks that a peer
        ignores it."""
        self.check_tx_buffer(buf, length)
        self.memory.write(buf.addr, pack_header(src, dst, length, reserved=reserved))
        buf._finish()
        self.tx.add([Buf(buf.addr, HEADER_SIZE + length)], token=buf.addr)
        self._note(self.tx.publish())

    def give_back(self, buf: TxBuffer) -> None:
        if not buf.done:
            buf._finish()
            self.tx.pool_put(buf.addr)

    # --- receiving -------------------------------------------------------------------------------------------
    def poll(self, *, zero_copy: Callable[[int], bool] | None = None, limit: int | None = None) -> list[Event]:
        """Messages the remote sent since the last poll. Copies are re-posted at once; messages whose ``dst``
        ``zero_copy`` selects stay in their buffer until released."""
        if zero_copy is None:
            return self._poll_copy(limit)
        events: list[Event] = []
        try:
            used_list = self.rx.get_used(limit)
        except RemoteFault as exc:
            raise RemoteProtocolError(f"vring 0: {exc}") from exc
        for used in used_list:
            addr = used.token
            capacity = min(used.len, self.rx_size)  # OpenAMP/RPMsg-Lite report the whole buffer: only a bound
            try:
                hdr = unpack_header(self.memory.read(addr, min(HEADER_SIZE, self.rx_size)), capacity)
            except RemoteProtocolError as exc:
                self._drop(f"vring 0 buffer {addr:#x}: {exc}")
                self._repost(addr, publish=False)  # drop the message, keep the buffer
                continue
            if zero_copy(hdr.dst) and hdr.dst != NS_ADDR:
                view = self.memory.view(addr + HEADER_SIZE, hdr.len).toreadonly()
                events.append(Message(hdr.src, hdr.dst, view, functools.partial(self._repost, addr)))
            else:
                payload = self.memory.read(addr + HEADER_SIZE, hdr.len)
                self._repost(addr, publish=False)
                event = self._dispatch(hdr.src, hdr.dst, payload, None)
                if event is not None:
                    events.append(event)
        if used_list:
            self._publish_taken(self.rx)
        return events

    def _poll_copy(self, limit: int | None) -> list[Event]:
        """The fast path: one C call copies a batch of used buffers out and posts them again."""
        try:
            n = self.rx.recv_copy_into(
                self._rx_out, self._rx_lens, self.rx_count if limit is None else limit, self.rx_size
            )
        except RemoteFault as exc:
            raise RemoteProtocolError(f"vring 0: {exc}") from exc
        if not n:
            return []
        self._publish_taken(self.rx)
        return self._parse_batch(self._rx_out, self._rx_lens, n, "vring 0")

    def _repost(self, addr: int, *, publish: bool = True) -> None:
        self.rx.add([Buf(addr, self.rx_size, write=True)], token=addr)
        if publish:
            self._note(self.rx.publish())

    def close(self) -> None:
        self.rx.close()
        self.tx.close()


class RemoteCore(_CoreBase):
    """The remote (virtio device) side of one rpmsg device. Construct it only once the host has set DRIVER_OK
    (test the bit: Linux writes 0x07, OpenAMP 0x04) — before that the vring addresses are not valid."""

    queue_class: type[DeviceQueue] = DeviceQueue  # a host's quirk may need another (rpmsg.quirks)
    read_write_flagged = False  # read host send buffers flagged VRING_DESC_F_WRITE (rpmsg.quirks), else drop them

    def __init__(
        self, memory: RegionMemory, rx_layout: VringLayout, tx_layout: VringLayout, *, event_idx: bool = False
    ) -> None:
        super().__init__()
        self.memory = memory
        # Named from the host's point of view, like the vrings: host RX (vring 0) is where we send.
        self.to_host = self.queue_class(memory, rx_layout, index=RX_VRING, event_idx=event_idx)
        self.from_host = self.queue_class(memory, tx_layout, index=TX_VRING, event_idx=event_idx)
        self._spare: Chain | None = None  # a popped host buffer not yet used (too small for the last send)
        self._rx_out = bytearray(1 << 16)
        self._rx_lens = array("I", bytes(4 * from_host_num(tx_layout)))
        # The host re-posts a receive buffer after every message; we only need to hear about it while a send
        # waits for one (the same trick as Linux's suppressed TX-complete interrupts, mirrored).
        self.to_host.disable_notifications()

    def want_buffer_wakeup(self, on: bool) -> bool:
        """Ask the host to kick when it posts receive buffers (a send is waiting); True if some are there."""
        if on:
            return self.to_host.enable_notifications()
        self.to_host.disable_notifications()
        return False

    def _take_rx_buffer(self) -> Chain:
        if self._spare is not None:
            chain, self._spare = self._spare, None
            return chain
        try:
            popped = self.to_host.pop()
        except RemoteFault as exc:
            raise RemoteProtocolError(f"vring 0: {exc}") from exc
        if popped is None:
            raise WouldBlock("no host receive buffer available: the host has not posted or re-posted any")
        if not popped.descs[0].writable:
            self.to_host.push(popped.head, 0)
            self._note(self.to_host.publish())  # returned now, not with the next send (C twin: rpmsg_remote.c)
            raise RemoteProtocolError(f"vring 0: host buffer {popped.head} is not device-writable")
        return popped

    def announce(self, name: str, addr: int, *, destroy: bool = False) -> None:
        self.send(addr, NS_ADDR, pack_ns(name, addr, destroy))

    def notifications(self, on: bool) -> bool:
        """Ask the host to kick us for new messages (True if some already wait), or not (busy-polling)."""
        if on:
            return self.from_host.enable_notifications()
        self.from_host.disable_notifications()
        return False

    def send(self, src: int, dst: int, payload: bytes | bytearray | memoryview) -> None:
        check_payload(len(payload))  # the host's buffer size is checked once one is taken
        if not self._put(src, dst, payload):
            raise WouldBlock("no host receive buffer available: the host has not posted or re-posted any")
        self._note(self.to_host.publish())

    def send_many(self, src: int, dst: int, payloads: Sequence[Payload]) -> int:
        """Send as many of ``payloads`` as posted host buffers allow, in order, with one publish: how many went
        (0: no host buffer). A host buffer too small for the first raises MessageTooLong (that buffer is kept,
        as by :meth:`send`); for a later one, the count so far is returned and sending it again raises. The
        twin of rpmsg/csrc/fastpath.c's rpf_dev_send_many."""
        for payload in payloads:
            check_payload(len(payload))
        n = 0
        try:
            for payload in payloads:
                if not self._put(src, dst, payload):
                    break
                n += 1
        except MessageTooLong:
            if not n:
                raise
        if n:
            self._note(self.to_host.publish())
        return n

    def _put(self, src: int, dst: int, payload: Payload) -> bool:
        """Write one message into a host buffer and push it (not published); False: no host buffer posted."""
        if self._spare is None:
            message = pack_header(src, dst, len(payload)) + bytes(payload)
            try:
                sent = self.to_host.send_copy(message, [len(message)])
            except RemoteFault as exc:
                raise RemoteProtocolError(f"vring 0: {exc}") from exc
            except LocalError:
                sent = -1  # the host's buffer is too small: the slow path below names the limit
            if sent == 1:
                return True
            if sent == 0:
                return False
        try:
            chain = self._take_rx_buffer()
        except WouldBlock:
            return False
        buf = chain.descs[0]
        try:
            check_payload(len(payload), buf.len - HEADER_SIZE, f"the host's {buf.len}-byte buffer")
        except MessageTooLong:
            self._spare = chain
            raise
        self.memory.write(buf.addr, pack_header(src, dst, len(payload)))
        self.memory.write(buf.addr + HEADER_SIZE, payload)
        self.to_host.push(chain.head, HEADER_SIZE + len(payload))
        return True

    def poll(self, *, zero_copy: Callable[[int], bool] | None = None, limit: int | None = None) -> list[Event]:
        events: list[Event] = []
        if zero_copy is None:
            # Batches until the ring is empty: the batch buffer (64 KiB) may fill before it is, as big buffers
            # make it, and the C library's rpmsg_poll delivers every waiting message in one call.
            want, taken = limit or len(self._rx_lens), 0
            while taken < want:
                try:
                    n = self.from_host.recv_copy_into(self._rx_out, self._rx_lens, want - taken)
                except RemoteFault as exc:
                    if events:
                        return events  # what was taken is delivered; the next poll reports the fault
                    raise RemoteProtocolError(f"vring 1: {exc}") from exc
                except LocalError:
                    n = 0  # a single message larger than the batch buffer: take it the slow way below
                    zero_copy = _never
                if not n:
                    break
                # Kick after returning buffers: a Linux sender blocked on a full TX ring waits for exactly this.
                self._publish_taken(self.from_host)
                events += self._parse_batch(self._rx_out, self._rx_lens, n, "vring 1")
                taken += n
                if not self._more_waiting():
                    break
            if zero_copy is None:
                return events
            limit = None if limit is None else limit - taken
        try:
            chains = self.from_host.pop_many(limit)
        except RemoteFault as exc:
            if events:
                return events  # what was taken is delivered; the next poll reports the fault
            raise RemoteProtocolError(f"vring 1: {exc}") from exc
        returned = False
        for chain in chains:
            first = chain.descs[0]
            if len(chain.descs) > 1:
                # A message over several descriptors cannot be lent in place: gathered, as the batch copy does
                # (rpmsg.protocol, "Chained buffers").
                event = self._gather(chain)
                returned = True
                if event is not None:
                    events.append(event)
                continue
            if first.writable and not self.read_write_flagged:  # a host TX buffer is device-readable
                self._drop(f"vring 1 buffer {chain.head}: {_flagged_writable(first.len)}")
                self.from_host.push(chain.head, first.len)
                returned = True
                continue
            capacity = first.len
            try:
                hdr = unpack_header(self.memory.read(first.addr, min(first.len, HEADER_SIZE)), capacity)
            except RemoteProtocolError as exc:
                self._drop(f"vring 1 buffer {chain.head}: {exc}")
                self.from_host.push(chain.head, first.len)
                returned = True
                continue
            if zero_copy(hdr.dst) and hdr.dst != NS_ADDR:
                view = self.memory.view(first.addr + HEADER_SIZE, hdr.len).toreadonly()
                give_back = functools.partial(self._give_back, chain.head, first.len)
                events.append(Message(hdr.src, hdr.dst, view, give_back))
            else:
                payload = self.memory.read(first.addr + HEADER_SIZE, hdr.len)
                self.from_host.push(chain.head, first.len)
                returned = True
                event = self._dispatch(hdr.src, hdr.dst, payload, None)
                if event is not None:
                    events.append(event)
        if returned:
            # Kick after returning buffers: a Linux sender blocked on a full TX ring waits for exactly this.
            self._note(self.from_host.publish())
        return events

    def _gather(self, chain: Chain) -> Event | None:
        """A chain of several descriptors: its device-readable bytes joined (device-writable ones too with
        ``read_write_flagged``) make the message, and it goes back at once with used.len = the bytes read: the
        rule of the batch copy (the vring engine's recv_copy) and of the C remote (firmware/lib/rpmsg_remote.c)."""
        parts = [d for d in chain.descs if self.read_write_flagged or not d.writable]
        data = b"".join(self.memory.read(d.addr, d.len) for d in parts)
        self.from_host.push(chain.head, len(data))
        if not parts:
            self._drop(f"vring 1 buffer {chain.head}: {_flagged_writable(sum(d.len for d in chain.descs))}")
            return None
        try:
            hdr = unpack_header(data, len(data))
        except RemoteProtocolError as exc:
            self._drop(f"vring 1 buffer {chain.head}: {exc}")
            return None
        return self._dispatch(hdr.src, hdr.dst, data[HEADER_SIZE : HEADER_SIZE + hdr.len], None)

    def _short_message(self, where: str, size: int, i: int, n: int) -> str:
        """A host send buffer flagged device-writable reads as 0 bytes: say so (it is the descriptor, not the
        message). The batch's chains were just returned: their heads are the last ``n`` used entries."""
        if where == "vring 1" and size == 0:
            lay = self.from_host.layout
            used = int.from_bytes(self.memory.read(lay.used + 2, 2), "little")
            pos = (used - n + i) & (lay.num - 1)
            head = int.from_bytes(self.memory.read(lay.used + 4 + 8 * pos, 4), "little") % lay.num
            length, flags = struct.unpack("<IH", self.memory.read(lay.desc + 16 * head + 8, 6))
            if flags & DESC_F_WRITE:
                return f"{where} buffer {head}: {_flagged_writable(length)}"
        return super()._short_message(where, size, i, n)

    def _more_waiting(self) -> bool:
        try:
            return self.from_host.has_avail()
        except VirtioError:
            return False  # a broken ring: the next poll reports it

    def _give_back(self, head: int, length: int) -> None:
        # used.len = the buffer's length, not 0: OpenAMP's host takes it as the buffer's capacity when it
        # reuses the buffer (open-amp lib/rpmsg/rpmsg_virtio.c); Linux ignores it.
        self.from_host.push(head, length)
        self._note(self.from_host.publish())

    def close(self) -> None:
        self.to_host.close()
        self.from_host.close()
