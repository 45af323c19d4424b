"""The remote role's rpmsg protocol core (virtio device), without I/O: :class:`RemoteCore` (theory of
operation: :mod:`rpmsg.core`)."""

from __future__ import annotations

import functools
import struct
from array import array
from collections.abc import Callable, Sequence

from rpmsg.core_common import CoreBase, Event, Message, Payload, TxBuffer
from rpmsg.errors import LocalProtocolError, MessageTooLong, RemoteProtocolError, WouldBlock
from rpmsg.protocol import (
    HEADER_SIZE,
    MAX_MESSAGE,
    NS_ADDR,
    RX_VRING,
    TX_VRING,
    check_fits,
    check_payload,
    driver_ok,
    pack_header,
    pack_ns,
    payload_room,
    unpack_header,
)
from transports.errors import TransportError
from transports.memory import RegionMemory
from virtio import Chain, Desc, DeviceQueue, VringLayout
from virtio.errors import LocalError, RemoteFault, VirtioError
from virtio.status import DESC_F_WRITE


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


class RemoteCore(CoreBase):
    """The remote (virtio device) side of one rpmsg device. Construct it only once the host has set DRIVER_OK
    (test the bit: Linux writes 0x07, OpenAMP 0x04) — before that the vring addresses are not valid."""

    queue_class: type[DeviceQueue] = DeviceQueue  # a host's quirk may need another (rpmsg.quirks)
    read_write_flagged = False  # read host send buffers flagged VRING_DESC_F_WRITE (rpmsg.quirks), else drop them

    def __init__(
        self,
        memory: RegionMemory,
        rx_layout: VringLayout,
        tx_layout: VringLayout,
        *,
        event_idx: bool = False,
        status: Callable[[], int] | None = None,
    ) -> None:
        super().__init__()
        self.memory = memory
        # The vdev's status byte, read before each poll (as the C library's rpmsg_poll reads it): a host that
        # resets the device (DRIVER_OK cleared, or FAILED set) ends the polling. None: not watched.
        self._status = status
        # Named from the host's point of view, like the vrings: host RX (vring 0) is where we send.
        self.to_host = self.queue_class(memory, rx_layout, index=RX_VRING, event_idx=event_idx)
        self.from_host = self.queue_class(memory, tx_layout, index=TX_VRING, event_idx=event_idx)
        # Host buffers popped and not yet used, the next send's first: one too small for the last send, or
        # zero-copy buffers given back unsent (kept, as OpenAMP's reclaimer list keeps them: a buffer returned to
        # the host empty would reach it as a message). `_spare` is the first (the C path's guard: None), then
        # `_spares`.
        self._spare: Chain | None = None
        self._spares: list[Chain] = []
        self._held: dict[int, Chain] = {}  # zero-copy send buffers lent (get_tx_buffer), by chain head
        # The batch buffer holds a whole ring of Linux's 512-byte buffers (at least 64 KiB) and one largest message
        # more: a receive takes every waiting message, and what does not fit goes through the general path (the C
        # path's RPF_MORE, set when less than a largest message was left), which a stream of 512-byte messages
        # never needs.
        num = from_host_num(tx_layout)
        self._rx_out = bytearray(max(1 << 16, num * 512) + MAX_MESSAGE)
        self._rx_lens = array("I", bytes(4 * num))
        # The host re-posts a receive buffer after every message; we only need to hear about it while a send
        # waits for one (the same trick as Linux's suppressed TX-complete interrupts, mirrored).
        self.to_host.disable_notifications()

    @property
    def watches_status(self) -> bool:
        """Whether this core reads the vdev's status byte before each poll (``status`` given)."""
        return self._status is not None

    def want_buffer_wakeup(self, on: bool) -> bool:
        """Ask the host to kick when it posts receive buffers (a send is waiting); True if some are there."""
        if on:
            return self.to_host.enable_notifications()
        self.to_host.disable_notifications()
        return False

    def _take_rx_buffer(self) -> Chain:
        if self._spare is not None:
            chain, self._spare = self._spare, (self._spares.pop(0) if self._spares else None)
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
        twin of rpmsg/csrc/fastpath_remote.c's rpf_dev_send_many."""
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
        room = sum(d.len for d in chain.descs if d.writable)
        try:
            check_fits(len(payload), room, "the host's")
        except MessageTooLong:
            self._keep(chain, first=True)
            raise
        # The chain's device-writable descriptors in order, as the engine's send_copy fills them (rpmsg.protocol,
        # "Chained buffers"); a single descriptor (the only kind Linux and OpenAMP post) takes it all.
        message = pack_header(src, dst, len(payload)) + bytes(payload)
        pos = 0
        for d in chain.descs:
            if d.writable and pos < len(message):
                part = message[pos : pos + d.len]
                self.memory.write(d.addr, part)
                pos += len(part)
        self.to_host.push(chain.head, len(message))
        return True

    def _keep(self, chain: Chain, *, first: bool = False) -> None:
        """Keep a popped host buffer for the next send (``first``: before the others kept)."""
        if self._spare is None:
            self._spare = chain
        elif first:
            self._spares.insert(0, self._spare)
            self._spare = chain
        else:
            self._spares.append(chain)

    # --- zero-copy sending: the host's posted receive buffer lent (OpenAMP's rpmsg_get_tx_payload_buffer) -----
    def get_tx_buffer(self) -> TxBuffer:
        """The next host receive buffer, held out of vring 0: a TxBuffer over its first descriptor (Linux and
        OpenAMP post one descriptor a buffer), its payload after the header, :func:`rpmsg.protocol.payload_room`
        bytes. :meth:`send_buffer` sends it; :meth:`give_back` keeps it for the next send."""
        chain = self._take_rx_buffer()
        d = chain.descs[0]
        if d.len < HEADER_SIZE:
            self._keep(chain, first=True)  # as a send too large for it: kept, each later send says so
            raise MessageTooLong(
                f"the host's {d.len}-byte buffer {chain.head} has no room for the {HEADER_SIZE}-byte header",
                size=0,
                limit=0,
            )
        capacity = payload_room(d.len)
        try:
            view = self.memory.view(d.addr + HEADER_SIZE, capacity)
        except TransportError as exc:  # a descriptor the engine let through but no region maps
            self._keep(chain, first=True)
            raise RemoteProtocolError(f"vring 0: host buffer {chain.head} at {d.addr:#x}: {exc}") from exc
        self._held[chain.head] = chain
        return TxBuffer(d.addr, view, capacity, self, chain.head)

    def send_buffer(self, buf: TxBuffer, src: int, dst: int, length: int, *, reserved: int = 0) -> None:
        """Send a filled buffer: its header written, given to the host (used.len the message's length),
        published."""
        self.check_tx_buffer(buf, length)
        buf._finish()
        self._push_held(buf, src, dst, length, reserved)
        self._note(self.to_host.publish())

    def send_buffers(self, bufs: Sequence[TxBuffer], src: int, dst: int, lengths: Sequence[int]) -> None:
        """Send filled buffers with one publish: all checked first (none sent when one is refused), then each
        marked sent; a buffer whose view cannot be released (still exported) ends the batch there: the ones
        before it are sent, and its error raised (as HostCore.send_buffers)."""
        self.check_tx_buffers(bufs, lengths)
        self._post_batch(bufs, lengths, lambda buf, length: self._push_held(buf, src, dst, length, 0), self.to_host)

    def _push_held(self, buf: TxBuffer, src: int, dst: int, length: int, reserved: int) -> None:
        """Header at the buffer's address, then its chain (``slot``) to the host, used.len the message's length
        (lent here or by the C path's get_buffer, rpf_dev_lend)."""
        self._held.pop(buf.slot, None)
        self.memory.write(buf.addr, pack_header(src, dst, length, reserved=reserved))
        self.to_host.push(buf.slot, HEADER_SIZE + length)

    def give_back(self, buf: TxBuffer) -> None:
        """An unsent buffer back: kept for the next send (never returned to the host empty)."""
        if buf.token is not self:
            raise LocalProtocolError("this TX buffer belongs to another device: give it back there")
        if not buf.done:
            buf._finish()
            chain = self._held.pop(buf.slot, None)
            if chain is None:  # lent by the C path: one device-writable descriptor (rpf_dev_lend)
                desc = Desc(buf.addr, HEADER_SIZE + buf.capacity, DESC_F_WRITE, buf.slot)
                chain = Chain(buf.slot, (desc,))
            self._keep(chain)

    def poll(self, *, zero_copy: Callable[[int], bool] | None = None, limit: int | None = None) -> list[Event]:
        if self._status is not None and not driver_ok(status := self._status()):
            raise RemoteProtocolError(f"the host reset the device: status {status:#04x} (rpmsg.protocol.driver_ok)")
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
                self.from_host.push(chain.head, 0)  # the bytes read, as the batch copy and the C remote return it
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

    def _malformed(self, where: str, exc: RemoteProtocolError, size: int, i: int, n: int) -> str:
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
        return super()._malformed(where, exc, size, i, n)

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
