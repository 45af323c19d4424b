"""The firmware's C mirror (firmware/lib/mirror.c) against its Python twin (transports/mirror.py): the same writes
into two windows give the same WRITE messages in the same order, whatever the number of index fields. The C side
used to keep a flag for eight index fields only and silently never sent the ninth and later ones (issue 17)."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.firmware.mirror_lib import MIRROR_ERR_CHUNK, MIRROR_ERR_MALFORMED, MIRROR_ERR_RANGE, CMirror
from transports import bytearray_memory
from transports.mirror import WRITE, WRITE_HEAD, Mirror, MirrorError

EXAMPLES = int(os.environ.get("RPROC_FUZZ_EXAMPLES", "300"))
WINDOW = 0x800
RANGES = [(0x100, 0x200), (0x400, 0x100), (0x600, 0x1F0)]
# Sixteen rings' worth of index fields (avail.idx / used.idx sit at offset 2 of their ring part).
INDEX = [da + off for da, size in RANGES for off in range(2, size, 0x40)][:20]


def pair(max_payload: int = 64) -> tuple[bytearray, Mirror, CMirror, bytearray]:
    py_window = bytearray_memory(WINDOW)
    c_window = bytearray(WINDOW)
    return py_window, Mirror(py_window, RANGES, index_fields=INDEX, max_payload=max_payload), \
        CMirror(c_window, 0, RANGES, INDEX, max_payload), c_window  # fmt: skip


def test_every_index_field_is_sent_last() -> None:
    mem, py, c, window = pair()
    assert len(INDEX) > 8
    for field in INDEX:
        value = (field & 0xFF).to_bytes(1, "little") + b"\x01"
        mem.write(field, value)
        window[field : field + 2] = value
    c_out, py_out = c.changes(), py.changes()
    assert isinstance(c_out, list)
    assert {WRITE_HEAD.unpack_from(msg)[1] for msg in c_out} >= set(INDEX)  # the ninth and later too
    assert c_out == py_out


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.lists(st.tuples(st.integers(0, WINDOW - 1), st.binary(min_size=1, max_size=80)), max_size=6),
             min_size=1, max_size=5),
    st.integers(7, 300),
)  # fmt: skip
def test_c_and_python_mirror_send_the_same(batches: list[list[tuple[int, bytes]]], max_payload: int) -> None:
    mem, py, c, window = pair(min(max_payload, 261))
    peer_py, peer_c_window = bytearray_memory(WINDOW), bytearray(WINDOW)
    peer = Mirror(peer_py, [(0, 0x40)])
    peer_c = CMirror(peer_c_window, 0, [(0, 0x40)], [])
    for batch in batches:
        for at, data in batch:
            data = data[: WINDOW - at]
            mem.write(at, data)
            window[at : at + len(data)] = data
        c_out = c.changes()
        assert c_out == py.changes()
        # and the peer's side: both apply what was sent the same way, and see what this side wrote in its ranges
        assert isinstance(c_out, list)
        for msg in c_out:
            assert peer.apply(msg) is None and peer_c.apply(msg) == -1
        assert peer_py.read(0, WINDOW) == bytes(peer_c_window)
        for da, size in RANGES:
            assert bytes(peer_c_window[da : da + size]) == bytes(window[da : da + size])


def test_bad_chunk_and_bad_messages_are_refused_alike() -> None:
    for max_payload in (6, 262):  # a 1-byte chunk (Python: MirrorError), more than C's message buffer
        c = CMirror(bytearray(WINDOW), 0, RANGES, INDEX, max_payload)
        assert c.changes() == MIRROR_ERR_CHUNK
    with pytest.raises(MirrorError):
        Mirror(bytearray_memory(WINDOW), RANGES, max_payload=6)
    c = CMirror(bytearray(WINDOW), 0, RANGES, INDEX)
    assert c.apply(b"") == MIRROR_ERR_MALFORMED
    assert c.apply(b"\x09junk") == MIRROR_ERR_MALFORMED
    assert c.apply(WRITE_HEAD.pack(WRITE, WINDOW) + b"x") == MIRROR_ERR_RANGE
