"""The rpmsg wire format and rules, without I/O.

Sources: Linux ``drivers/rpmsg/virtio_rpmsg_bus.c`` (``struct rpmsg_hdr``, ``struct rpmsg_ns_msg``,
``RPMSG_NS_ADDR``, ``RPMSG_RESERVED_ADDRESSES``), OpenAMP ``lib/include/openamp/rpmsg.h`` and
``rpmsg_virtio.c``, NXP RPMsg-Lite ``rpmsg_lite.c``.

- Header, 16 bytes little-endian: ``{u32 src; u32 dst; u32 reserved; u16 len; u16 flags}``, then ``len`` bytes.
  Receivers take the payload length from ``len`` and treat the used/descriptor length only as an upper bound:
  OpenAMP and RPMsg-Lite report the whole buffer as used. ``reserved`` is never validated (OpenAMP's receiver
  writes into it).
- Name service at address 53: ``{char name[32]; u32 addr; u32 flags}`` (flags 0 create, 1 destroy), sent only
  when both sides have ``VIRTIO_RPMSG_F_NS`` (feature bit 0). Names compare up to the first NUL (OpenAMP leaves
  garbage after it) and are untrusted text.
- Addresses below 1024 are reserved in Linux and OpenAMP; rproc allocates dynamic addresses from 1024 but accepts
  any peer address (RPMsg-Lite allocates from 1).
- A name-service announcement must name an address a message can be sent to: not 53 (the name service itself)
  and not 0xffffffff (``RPMSG_ADDR_ANY``, "no address"). Linux and OpenAMP check neither (Linux's
  ``rpmsg_ns_cb`` takes ``msg->addr`` as the channel's destination as it is, OpenAMP's
  ``rpmsg_virtio_ns_callback`` stores it in the endpoint's ``dest_addr``); rproc refuses both
  (:func:`ns_address_problem`). The rest of the range below 1024 is reserved only for *dynamic* allocation:
  OpenAMP's ``rpmsg_create_ept`` binds a fixed address below 1024 unchecked, and RPMsg-Lite allocates from 1,
  so a peer's channel may legitimately live there.
- vring 0 carries remote -> host, vring 1 host -> remote; the host owns every buffer.
- Chained buffers: a message in a chain of several descriptors is the concatenation of its device-readable
  bytes, returned with used.len = the bytes read, on every receive path; a send fills a chain's device-writable
  descriptors in order, its room their sum (virtio 1.2 2.7.4; docs/rpmsg.md).
- One well-formed message: the bytes its buffer holds for it (used.len, bounded by the buffer) hold the header
  and the ``len`` bytes it announces (:func:`parse_message`); anything else is dropped and counted, its buffer
  kept in circulation.
- One message carries at most min(buffer - 16, 65535) bytes (:func:`payload_room`, :func:`check_payload`,
  :func:`check_fits`; every path of both roles and the C firmware library): the buffer after its header, and
  ``hdr.len``'s u16. Linux's buffers are a fixed 512 bytes (``MAX_RPMSG_BUF_SIZE``: 496 of payload), rproc's
  default; a host's Profile or session may choose any size per direction, and a remote takes each buffer's size
  from its descriptor. A buffer must hold more than the
  header (:func:`check_buffer_size`); a remote's send that does not fit the host's buffer raises MessageTooLong
  and keeps that buffer for the next, smaller send (never returned with a used.len below the header).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from rpmsg.errors import LocalProtocolError, MessageTooLong, RemoteProtocolError
from virtio.features import STATUS_DRIVER_OK, STATUS_FAILED

HEADER = struct.Struct("<IIIHH")
HEADER_SIZE = HEADER.size  # 16
NS_MSG = struct.Struct("<32sII")
NS_MSG_SIZE = NS_MSG.size  # 40
NAME_SIZE = 32

MAX_PAYLOAD = 0xFFFF  # hdr.len is a u16: the largest payload one message carries, whatever the buffer size
MAX_MESSAGE = HEADER_SIZE + MAX_PAYLOAD  # the largest message a buffer can carry (C: RPF_MSG_MAX)

NS_ADDR = 53
ADDR_ANY = 0xFFFF_FFFF
RESERVED_ADDRESSES = 1024
NS_CREATE = 0
NS_DESTROY = 1
VIRTIO_RPMSG_F_NS = 0

RX_VRING = 0  # remote -> host
TX_VRING = 1  # host -> remote
LINUX_BUFFER_SIZE = 512  # Linux's fixed buffer (virtio_rpmsg_bus.c MAX_RPMSG_BUF_SIZE); rproc's default, any size > 16
LINUX_MAX_BUFFERS = 512

VIRTIO_ID_RPMSG = 7
VIRTIO_CONFIG_S_DRIVER_OK = STATUS_DRIVER_OK  # the virtio status bits live once, in virtio/features.py
VIRTIO_CONFIG_S_FAILED = STATUS_FAILED


def driver_ok(status: int) -> bool:
    """May the remote read the vring addresses? Test the DRIVER_OK bit, never compare the byte: Linux writes
    0x07 (ACKNOWLEDGE|DRIVER|DRIVER_OK), OpenAMP as host only 0x04, a VERSION_1 driver 0x0f. FAILED vetoes it."""
    return bool(status & VIRTIO_CONFIG_S_DRIVER_OK) and not status & VIRTIO_CONFIG_S_FAILED


@dataclass(frozen=True)
class Header:
    src: int
    dst: int
    len: int
    flags: int = 0
    reserved: int = 0


def check_payload(size: int, limit: int = MAX_PAYLOAD, room: str = "the rpmsg header's 16-bit len") -> None:
    """MessageTooLong unless a payload of ``size`` bytes fits ``limit`` (what ``room`` holds: a buffer after its
    header) and the header's 16-bit len (:data:`MAX_PAYLOAD`, whatever the buffer size)."""
    if limit > MAX_PAYLOAD:
        limit, room = MAX_PAYLOAD, "the rpmsg header's 16-bit len"
    if size > limit:
        raise MessageTooLong(f"{size} bytes do not fit {room} ({limit} bytes of payload)", size=size, limit=limit)


def payload_room(buffer_size: int) -> int:
    """The largest payload a buffer of ``buffer_size`` bytes carries: what follows its header, at most
    :data:`MAX_PAYLOAD` (the header's u16 len)."""
    return min(buffer_size - HEADER_SIZE, MAX_PAYLOAD)


def check_fits(size: int, buffer_size: int, buffer: str = "a") -> None:
    """MessageTooLong unless a payload of ``size`` bytes fits a buffer of ``buffer_size`` bytes (``buffer``
    names whose, e.g. "the host's") after its header, and the header's len (:func:`check_payload`)."""
    check_payload(size, buffer_size - HEADER_SIZE, f"{buffer} {buffer_size}-byte buffer")


def check_buffer_size(name: str, size: int) -> None:
    """LocalProtocolError unless a buffer of ``size`` bytes holds the header and at least one payload byte."""
    if size <= HEADER_SIZE:
        raise LocalProtocolError(f"{name} {size} leaves no room after the {HEADER_SIZE}-byte header")


def parse_message(buf: bytes | bytearray | memoryview, pos: int, size: int) -> tuple[int, int, int, int, int]:
    """The header ``(src, dst, reserved, len, flags)`` of one well-formed message: ``size`` bytes of ``buf`` from
    ``pos`` (the bytes the buffer holds for it: used.len, or the readable chain, bounded by the buffer) hold the
    16-byte header and the ``len`` bytes it announces. RemoteProtocolError otherwise: the receiver drops it
    (counted, logged) and keeps the buffer in circulation. Every Python receive path of both roles calls this."""
    if size < HEADER_SIZE or len(buf) - pos < HEADER_SIZE:
        raise RemoteProtocolError(f"a {size}-byte message cannot hold the rpmsg header ({HEADER_SIZE} bytes)")
    fields: tuple[int, int, int, int, int] = HEADER.unpack_from(buf, pos)
    length = fields[3]
    if length > size - HEADER_SIZE:
        raise RemoteProtocolError(
            f"header len {length} from {fields[0]:#x} to {fields[1]:#x} runs past its buffer "
            f"({size - HEADER_SIZE} bytes of payload room)"
        )
    return fields


def payload_bytes(data: object) -> bytes | bytearray | memoryview:
    """The bytes a message carries, as one flat run whose len() is its size in bytes: bytes and bytearray as they
    are; any other bytes-like object (a memoryview, an array.array, ...) as a byte view of its memory, copied when
    it is not contiguous, as bytes(memoryview(data)) holds them. A view of 4-byte items has len() of a quarter of
    its bytes: sized by len() it went truncated (the header said len(), the rest was dropped). The endpoints' C
    methods take the same bytes through the buffer protocol (PyBUF_SIMPLE) and hand what it refuses over to the
    Python methods, which call this."""
    kind = type(data)
    if kind is bytes or kind is bytearray:
        return data  # type: ignore[return-value]
    try:
        view = memoryview(data)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"a message is bytes-like (bytes, bytearray, memoryview, ...), not {kind.__name__}") from None
    if view.ndim == 1 and view.format == "B":
        return view if view.c_contiguous else view.tobytes()
    return view.cast("B") if view.c_contiguous else view.tobytes()


def receive_target(buffer: object, nbytes: int, call: str = "recv_into") -> tuple[memoryview, int]:
    """Where a received payload goes, checked before anything is received (a message taken and then refused by its
    buffer is lost): a writable bytes-like object as a flat byte view, and how many bytes of it to fill, as
    socket.recv_into counts them (``nbytes`` 0: all of it, and never more than it holds; the caller refused a
    negative one)."""
    try:
        view = memoryview(buffer)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{call} needs a writable bytes-like buffer, not {type(buffer).__name__}") from None
    if view.readonly:
        raise TypeError(f"{call} needs a writable buffer: this {type(buffer).__name__} is read-only")
    if view.ndim != 1 or view.format != "B":
        if not view.c_contiguous:
            raise TypeError(f"{call} needs a contiguous buffer or a view of bytes, not this {view.format!r} view")
        view = view.cast("B")
    if nbytes > view.nbytes:
        raise ValueError(f"{call}: nbytes {nbytes} is greater than the buffer's {view.nbytes} bytes")
    return view, nbytes or view.nbytes


def receive_slots(
    buffer: object, sizes: object, slot: int, call: str = "recv_many_into"
) -> tuple[memoryview, memoryview, int, int]:
    """Where a batch of received payloads goes, checked before anything is received (as :func:`receive_target`):
    message i in ``buffer`` at i * ``slot``, cut to ``slot`` bytes as ``recv(slot)`` cuts it, its size into
    ``sizes[i]`` (a writable array of unsigned 32-bit items: ``array('I')``). ``slot`` 0: the buffer shared
    evenly by the items of ``sizes``. (byte view, sizes view, slot, how many messages at most)."""
    target, total = receive_target(buffer, 0, call)
    try:
        lens = memoryview(sizes)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{call} needs sizes as a writable array('I'), not {type(sizes).__name__}") from None
    if lens.readonly or lens.ndim != 1 or lens.format != "I":
        raise TypeError(f"{call} needs sizes as a writable array('I') (format 'I'), not format {lens.format!r}")
    if type(slot) is not int or slot < 0:
        raise ValueError(f"{call}: slot must be an int >= 0 (0: the buffer shared by the sizes), not {slot!r}")
    if len(lens) == 0:
        raise ValueError(f"{call}: sizes has no item, so no message can be taken")
    slot = slot or total // len(lens)
    if slot < 1 or total < slot:
        raise ValueError(f"{call}: the buffer's {total} bytes hold no slot of {max(slot, 1)} bytes")
    return target, lens, slot, min(len(lens), total // slot)


def pack_header(src: int, dst: int, length: int, flags: int = 0, reserved: int = 0) -> bytes:
    check_payload(length)
    return HEADER.pack(src, dst, reserved, length, flags)


def unpack_header(buf: bytes | bytearray | memoryview, capacity: int) -> Header:
    """The header at the start of ``buf``; ``capacity`` bounds the payload (used.len and the buffer size):
    :func:`parse_message`."""
    src, dst, reserved, length, flags = parse_message(buf, 0, capacity)
    return Header(src=src, dst=dst, len=length, flags=flags, reserved=reserved)


@dataclass(frozen=True)
class NameServiceMessage:
    name: str
    addr: int
    destroy: bool

    @property
    def flags(self) -> int:
        return NS_DESTROY if self.destroy else NS_CREATE


def pack_ns(name: str, addr: int, destroy: bool = False) -> bytes:
    raw = name.encode("utf-8")
    if len(raw) >= NAME_SIZE:
        raise LocalProtocolError(f"channel name {name!r} is {len(raw)} bytes; rpmsg names hold {NAME_SIZE - 1}")
    return NS_MSG.pack(raw, addr, NS_DESTROY if destroy else NS_CREATE)


def unpack_ns(payload: bytes | bytearray | memoryview) -> NameServiceMessage:
    """A name-service message. The name is untrusted: cut at the first NUL, control characters replaced."""
    if len(payload) < NS_MSG_SIZE:
        raise RemoteProtocolError(f"name-service message is {len(payload)} bytes, {NS_MSG_SIZE} expected")
    raw, addr, flags = NS_MSG.unpack_from(payload, 0)
    if flags not in (NS_CREATE, NS_DESTROY):
        raise RemoteProtocolError(f"name-service flags {flags:#x} are neither create (0) nor destroy (1)")
    return NameServiceMessage(name=safe_name(raw), addr=addr, destroy=flags == NS_DESTROY)


def ns_address_problem(addr: int) -> str | None:
    """Why ``addr`` from a name-service message cannot be a channel's address, or None if it can (see the rules
    above: 53 is the name service, 0xffffffff means "any address")."""
    if addr == NS_ADDR:
        return f"address {NS_ADDR:#x} is the name service itself"
    if addr == ADDR_ANY:
        return f"address {ADDR_ANY:#x} is RPMSG_ADDR_ANY (no address)"
    return None


def safe_name(raw: bytes) -> str:
    """A peer-supplied name as printable text: up to the NUL, undecodable bytes and control characters shown as
    escapes, so nothing the peer sends reaches a terminal as an escape sequence."""
    text = raw.split(b"\0", 1)[0].decode("utf-8", errors="backslashreplace")
    return "".join(ch if ch.isprintable() else f"\\x{ord(ch):02x}" for ch in text)


class AddressAllocator:
    """Dynamic endpoint addresses from 1024 up (Linux idr_alloc(..., RPMSG_RESERVED_ADDRESSES, 0))."""

    def __init__(self, first: int = RESERVED_ADDRESSES) -> None:
        self._first = first
        self._next = first
        self._used: set[int] = set()

    def allocate(self) -> int:
        for _ in range(1 << 20):
            addr = self._next
            self._next = addr + 1 if addr + 1 < ADDR_ANY else self._first
            if addr not in self._used:
                self._used.add(addr)
                return addr
        raise LocalProtocolError("no free endpoint address")

    def claim(self, addr: int) -> None:
        if addr in self._used:
            raise LocalProtocolError(f"address {addr} is already bound")
        if addr == ADDR_ANY:
            raise LocalProtocolError("address 0xffffffff means 'any' and cannot be bound")
        self._used.add(addr)

    def release(self, addr: int) -> None:
        self._used.discard(addr)
