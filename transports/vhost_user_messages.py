"""vhost-user messages: the wire format, without I/O.

Source: QEMU's docs/interop/vhost-user.rst (the specification) and Linux ``arch/um/drivers/vhost_user.h``
(what User-Mode Linux's ``virtio_uml`` front-end sends). Every message is a 12-byte little-endian header
{request u32, flags u32, size u32} followed by ``size`` bytes of payload; file descriptors ride along as
SCM_RIGHTS ancillary data of the header. Flags: bits 0-1 the version (1), bit 2 REPLY, bit 3 NEED_REPLY.

Here a front-end's bytes become typed requests, and a malformed one becomes :class:`VhostUserProtocolError`
naming the request and the field, never a ``struct.error``.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

from transports.errors import TransportError

VERSION = 1
FLAG_VERSION_MASK = 0x3
FLAG_REPLY = 1 << 2
FLAG_NEED_REPLY = 1 << 3

F_PROTOCOL_FEATURES = 30  # a device feature bit that says "ask me for protocol features"

# Protocol feature bits (GET/SET_PROTOCOL_FEATURES).
PROTOCOL_F_MQ = 0
PROTOCOL_F_REPLY_ACK = 3
PROTOCOL_F_SLAVE_REQ = 5  # a.k.a. BACKEND_REQ: a socket for requests from the back-end to the front-end
PROTOCOL_F_CONFIG = 9
PROTOCOL_F_INBAND_NOTIFICATIONS = 14

VRING_INDEX_MASK = 0xFF
VRING_NOFD_MASK = 1 << 8  # SET_VRING_KICK/CALL/ERR payload: no descriptor attached (polling)

HEADER = struct.Struct("<III")
U64 = struct.Struct("<Q")
VRING_STATE = struct.Struct("<II")
VRING_ADDR = struct.Struct("<IIQQQQ")  # index, flags, desc, used, avail, log (that order on the wire)
MEM_REGIONS_HEAD = struct.Struct("<II")  # num, padding
MEM_REGION = struct.Struct("<QQQQ")  # guest_addr, size, user_addr, mmap_offset
CONFIG_HEAD = struct.Struct("<III")  # offset, size, flags
MAX_CONFIG_SIZE = 256  # VHOST_USER_MAX_CONFIG_SIZE: QEMU's and DPDK's/SPDK's limit on a config access

MAX_MEM_REGIONS = 8  # QEMU's VHOST_MEMORY_BASELINE_NREGIONS
MAX_PAYLOAD = 4096  # far above any request here; a larger size means a broken or hostile front-end
MAX_FDS = 8


class Request(enum.IntEnum):
    GET_FEATURES = 1
    SET_FEATURES = 2
    SET_OWNER = 3
    RESET_OWNER = 4
    SET_MEM_TABLE = 5
    SET_LOG_BASE = 6
    SET_LOG_FD = 7
    SET_VRING_NUM = 8
    SET_VRING_ADDR = 9
    SET_VRING_BASE = 10
    GET_VRING_BASE = 11
    SET_VRING_KICK = 12
    SET_VRING_CALL = 13
    SET_VRING_ERR = 14
    GET_PROTOCOL_FEATURES = 15
    SET_PROTOCOL_FEATURES = 16
    GET_QUEUE_NUM = 17
    SET_VRING_ENABLE = 18
    SEND_RARP = 19
    NET_SET_MTU = 20
    SET_SLAVE_REQ_FD = 21
    IOTLB_MSG = 22
    SET_VRING_ENDIAN = 23
    GET_CONFIG = 24
    SET_CONFIG = 25
    VRING_KICK = 35


# Requests whose reply carries a value: they are answered whatever NEED_REPLY says, and never get a second,
# REPLY_ACK status reply (the spec: "the reply is the response").
VALUE_REPLIES = frozenset(
    {
        Request.GET_FEATURES,
        Request.GET_PROTOCOL_FEATURES,
        Request.GET_QUEUE_NUM,
        Request.GET_VRING_BASE,
        Request.GET_CONFIG,
    }
)


class VhostUserProtocolError(TransportError):
    """The front-end sent something that is not a valid vhost-user message. ``request`` names it when known."""

    def __init__(self, message: str, *, request: int | None = None) -> None:
        self.request = request
        super().__init__(message)


def request_name(request: int) -> str:
    try:
        return Request(request).name
    except ValueError:
        return f"request {request}"


@dataclass(frozen=True)
class Header:
    request: int
    flags: int
    size: int

    @property
    def need_reply(self) -> bool:
        return bool(self.flags & FLAG_NEED_REPLY)


@dataclass(frozen=True)
class VringAddr:
    index: int
    flags: int
    desc: int
    used: int
    avail: int
    log: int


@dataclass(frozen=True)
class MemRegion:
    guest_addr: int
    size: int
    user_addr: int
    mmap_offset: int

    def __repr__(self) -> str:
        return (
            f"guest {self.guest_addr:#x}+{self.size:#x} (user {self.user_addr:#x}, file offset {self.mmap_offset:#x})"
        )


def parse_header(data: bytes) -> Header:
    if len(data) != HEADER.size:
        raise VhostUserProtocolError(f"short header: {len(data)} of {HEADER.size} bytes")
    request, flags, size = HEADER.unpack(data)
    name = request_name(request)
    if flags & FLAG_VERSION_MASK != VERSION:
        raise VhostUserProtocolError(
            f"{name}: flags {flags:#x} carry version {flags & FLAG_VERSION_MASK}, not {VERSION}", request=request
        )
    if flags & FLAG_REPLY:
        raise VhostUserProtocolError(f"{name}: a front-end request with the REPLY flag ({flags:#x})", request=request)
    if size > MAX_PAYLOAD:
        raise VhostUserProtocolError(f"{name}: payload size {size} exceeds {MAX_PAYLOAD}", request=request)
    return Header(request, flags, size)


def _need(header: Header, payload: bytes, size: int, what: str) -> None:
    if len(payload) < size:
        raise VhostUserProtocolError(
            f"{request_name(header.request)}: payload of {len(payload)} bytes is too short for {what} ({size} bytes)",
            request=header.request,
        )


def parse_u64(header: Header, payload: bytes) -> int:
    _need(header, payload, U64.size, "a u64")
    return int(U64.unpack_from(payload)[0])


def parse_vring_state(header: Header, payload: bytes) -> tuple[int, int]:
    _need(header, payload, VRING_STATE.size, "a vring state {index, num}")
    index, num = VRING_STATE.unpack_from(payload)
    return int(index), int(num)


def parse_vring_addr(header: Header, payload: bytes) -> VringAddr:
    _need(header, payload, VRING_ADDR.size, "a vring address")
    index, flags, desc, used, avail, log = VRING_ADDR.unpack_from(payload)
    return VringAddr(index, flags, desc, used, avail, log)


def parse_mem_table(header: Header, payload: bytes) -> list[MemRegion]:
    _need(header, payload, MEM_REGIONS_HEAD.size, "the region count")
    num, _padding = MEM_REGIONS_HEAD.unpack_from(payload)
    if not 1 <= num <= MAX_MEM_REGIONS:
        raise VhostUserProtocolError(
            f"SET_MEM_TABLE: {num} regions (1..{MAX_MEM_REGIONS} supported)", request=header.request
        )
    _need(header, payload, MEM_REGIONS_HEAD.size + num * MEM_REGION.size, f"{num} regions")
    regions = []
    for i in range(num):
        guest, size, user, offset = MEM_REGION.unpack_from(payload, MEM_REGIONS_HEAD.size + i * MEM_REGION.size)
        if size == 0 or guest + size > 1 << 64 or user + size > 1 << 64:
            raise VhostUserProtocolError(
                f"SET_MEM_TABLE: region {i} (guest {guest:#x}, size {size:#x}) is empty or wraps",
                request=header.request,
            )
        regions.append(MemRegion(guest, size, user, offset))
    return regions


def parse_config(header: Header, payload: bytes) -> tuple[int, int, bytes]:
    _need(header, payload, CONFIG_HEAD.size, "a config header {offset, size, flags}")
    offset, size, _flags = CONFIG_HEAD.unpack_from(payload)
    if size > MAX_CONFIG_SIZE:
        # A GET_CONFIG reply carries `size` bytes: an unchecked size from the front-end made us build gigabytes.
        raise VhostUserProtocolError(
            f"{request_name(header.request)}: config size {size} is above the protocol's {MAX_CONFIG_SIZE}-byte "
            "maximum (VHOST_USER_MAX_CONFIG_SIZE)",
            request=header.request,
        )
    return int(offset), int(size), payload[CONFIG_HEAD.size : CONFIG_HEAD.size + size]


def reply(header: Header, payload: bytes) -> bytes:
    """A reply to ``header``: same request, flags version | REPLY."""
    return HEADER.pack(header.request, VERSION | FLAG_REPLY, len(payload)) + payload


def reply_u64(header: Header, value: int) -> bytes:
    return reply(header, U64.pack(value & (1 << 64) - 1))


def config_reply(header: Header, offset: int, data: bytes) -> bytes:
    return reply(header, CONFIG_HEAD.pack(offset, len(data), 0) + data)
