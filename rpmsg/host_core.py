"""The host role's rpmsg protocol core (virtio driver), without I/O: :class:`HostCore` (theory of operation:
:mod:`rpmsg.core`)."""

from __future__ import annotations

import contextlib
import functools
from array import array
from collections.abc import Callable, Sequence

from rpmsg.core_common import CoreBase, Event, Message, Payload, TxBuffer
from rpmsg.errors import LocalProtocolError, RemoteProtocolError, WouldBlock
from rpmsg.protocol import (
    HEADER_SIZE,
    LINUX_BUFFER_SIZE,
    NS_ADDR,
    RX_VRING,
    TX_VRING,
    check_buffer_size,
    check_fits,
    pack_header,
    payload_room,
    unpack_header,
)
from transports.memory import RegionMemory
from virtio import Buf, DriverQueue, VringLayout
from virtio.errors import RemoteFault


class HostCore(CoreBase):
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
        check_buffer_size("rx_size", rx_size)
        check_buffer_size("tx_size", tx_size)
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
        return payload_room(self.tx_size)

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
        check_fits(len(payload), self.tx_size)
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
            check_fits(len(payload), self.tx_size)
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
        return TxBuffer(addr, self.memory.view(addr + HEADER_SIZE, self.max_payload), self.max_payload, self)

    def send_buffer(self, buf: TxBuffer, src: int, dst: int, length: int, *, reserved: int = 0) -> None:
        """Send a filled buffer. ``reserved`` is 0 for every real sender; conformance checks that a peer
        ignores it."""
        self.check_tx_buffer(buf, length)
        self.memory.write(buf.addr, pack_header(src, dst, length, reserved=reserved))
        buf._finish()
        self.tx.add([Buf(buf.addr, HEADER_SIZE + length)], token=buf.addr)
        self._note(self.tx.publish())

    def check_tx_buffers(self, bufs: Sequence[TxBuffer], lengths: Sequence[int]) -> None:
        """:meth:`check_tx_buffer` for each of a batch, in order, and none twice; and the ring has a descriptor
        free for each, once what the remote gave back is reclaimed (more buffers than vring 1 holds at once
        cannot go in one publish)."""
        super().check_tx_buffers(bufs, lengths)
        if len(bufs) > self.tx.num_free:
            self._reclaim()  # (only a pool larger than the ring can be short of descriptors)
        if len(bufs) > self.tx.num_free:
            raise LocalProtocolError(
                f"{len(bufs)} buffers in one batch, vring 1 has {self.tx.num_free} descriptors free: send fewer at once"
            )

    def send_buffers(self, bufs: Sequence[TxBuffer], src: int, dst: int, lengths: Sequence[int]) -> None:
        """Send filled buffers with one publish (the twin of rpmsg/csrc/fastpath.c's rpf_send_buffers): all
        checked first (:meth:`check_tx_buffers`: none sent when one is refused), then each marked sent, then
        headers and adds. A buffer whose view cannot be released (still exported) ends the batch there: the
        ones before it are sent, and its error raised."""
        self.check_tx_buffers(bufs, lengths)

        def post(buf: TxBuffer, length: int) -> None:
            self.memory.write(buf.addr, pack_header(src, dst, length))
            self.tx.add([Buf(buf.addr, HEADER_SIZE + length)], token=buf.addr)

        self._post_batch(bufs, lengths, post, self.tx)

    def give_back(self, buf: TxBuffer) -> None:
        if buf.token is not self:
            raise LocalProtocolError("this TX buffer belongs to another device: give it back there")
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
