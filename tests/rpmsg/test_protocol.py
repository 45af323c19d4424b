"""Wire format: headers, name service, addresses, and untrusted names."""

from __future__ import annotations

import struct

import pytest

from rpmsg import LocalProtocolError, RemoteProtocolError
from rpmsg.protocol import (
    HEADER_SIZE,
    NS_MSG_SIZE,
    AddressAllocator,
    driver_ok,
    pack_header,
    pack_ns,
    safe_name,
    unpack_header,
    unpack_ns,
)


def test_header_layout_matches_struct_rpmsg_hdr() -> None:
    assert HEADER_SIZE == 16 and NS_MSG_SIZE == 40
    raw = pack_header(0x400, 0x35, 40, 0)
    assert raw == struct.pack("<IIIHH", 0x400, 0x35, 0, 40, 0)
    hdr = unpack_header(raw, 56)
    assert (hdr.src, hdr.dst, hdr.len, hdr.flags) == (0x400, 0x35, 40, 0)


def test_reserved_is_never_validated() -> None:
    """OpenAMP's receiver writes into hdr.reserved in shared memory."""
    hdr = unpack_header(struct.pack("<IIIHH", 1, 2, 0xDEADBEEF, 3, 0), 512)
    assert hdr.reserved == 0xDEADBEEF and hdr.len == 3


def test_header_len_is_bounded_by_the_buffer() -> None:
    with pytest.raises(RemoteProtocolError, match="runs past its buffer"):
        unpack_header(pack_header(1, 2, 497), 512)
    assert unpack_header(pack_header(1, 2, 496), 512).len == 496
    with pytest.raises(RemoteProtocolError):
        unpack_header(b"\x00" * 8, 8)


def test_name_service_message() -> None:
    raw = pack_ns("rpmsg-openamp-demo-channel", 0x400)
    assert len(raw) == 40
    assert raw[32:] == struct.pack("<II", 0x400, 0)
    ns = unpack_ns(raw)
    assert (ns.name, ns.addr, ns.destroy) == ("rpmsg-openamp-demo-channel", 0x400, False)
    assert unpack_ns(pack_ns("x", 5, destroy=True)).destroy
    with pytest.raises(LocalProtocolError):
        pack_ns("n" * 32, 1)
    with pytest.raises(RemoteProtocolError):
        unpack_ns(raw[:39])
    with pytest.raises(RemoteProtocolError):
        unpack_ns(raw[:36] + struct.pack("<I", 7))


def test_names_compare_up_to_nul_and_are_made_printable() -> None:
    """OpenAMP leaves garbage after the NUL; a hostile peer may send escape codes."""
    assert unpack_ns(b"svc\0garbage!".ljust(32, b"\xff") + struct.pack("<II", 9, 0)).name == "svc"
    assert safe_name(b"\x1b[2Jevil\x07") == "\\x1b[2Jevil\\x07"
    assert safe_name(b"caf\xc3\xa9\xff") == "caf\u00e9\\xff"


def test_address_allocation() -> None:
    alloc = AddressAllocator()
    assert [alloc.allocate() for _ in range(3)] == [1024, 1025, 1026]
    alloc.claim(1)  # low addresses may be bound explicitly (RPMsg-Lite peers use them)
    with pytest.raises(LocalProtocolError):
        alloc.claim(1)
    alloc.release(1025)
    alloc.claim(1025)


@pytest.mark.parametrize(
    ("status", "ok"), [(0x04, True), (0x07, True), (0x0F, True), (0x03, False), (0x00, False), (0x84, False)]
)
def test_driver_ok_tests_the_bit(status: int, ok: bool) -> None:
    """Linux writes 0x07, OpenAMP as host writes 0x04 only: a remote comparing the byte hangs on one of them."""
    assert driver_ok(status) is ok
