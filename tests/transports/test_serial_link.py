"""The UART link core (transports.serial_frames, transports.serial_link) without I/O: COBS vectors, frames and
resynchronisation, then two link cores over a simulated line that flips, drops, duplicates and inserts bytes —
every message must arrive once, in order, intact."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports.serial_frames import FrameDecoder, FrameError, cobs_decode, cobs_encode, decode_frame, encode_frame
from transports.serial_link import Connected, LinkCore, LinkError, Message, PeerReset

# Wikipedia's COBS examples (the encoding the C side must produce too).
COBS_VECTORS = [
    (b"", b"\x01"),
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x00\x11\x00", b"\x01\x02\x11\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
    (bytes(range(2, 256)) + b"\x00", b"\xff" + bytes(range(2, 256)) + b"\x01\x01"),
    (bytes(range(3, 256)) + b"\x00\x01", b"\xfe" + bytes(range(3, 256)) + b"\x02\x01"),
]


@pytest.mark.parametrize(("data", "encoded"), COBS_VECTORS)
def test_cobs_vectors(data: bytes, encoded: bytes) -> None:
    assert cobs_encode(data) == encoded
    assert cobs_decode(encoded) == data


@given(st.binary(max_size=1200))
def test_cobs_round_trip_has_no_zero(data: bytes) -> None:
    encoded = cobs_encode(data)
    assert b"\0" not in encoded
    assert cobs_decode(encoded) == data
    assert len(encoded) <= len(data) + len(data) // 254 + 1


def test_frame_crc_and_vector() -> None:
    # body "hi" + crc32("hi") = 0xd8932aac little-endian, COBS-encoded, delimiter
    assert encode_frame(b"hi") == b"\x07hi\xac\x2a\x93\xd8\x00"
    with pytest.raises(FrameError, match="CRC mismatch"):
        decode_frame(b"\x07hi\xac\x2a\x93\xd9")


def test_decoder_resynchronises_after_garbage_and_bounds_memory() -> None:
    dec = FrameDecoder(max_frame=64)
    good = [encode_frame(b"one"), encode_frame(b""), encode_frame(b"x" * 64)]
    stream = b"\x05garbage" + b"\x00" + good[0] + b"\xff" * 5000 + b"\x00" + good[1] + good[2][:10]
    assert dec.feed(stream) == [b"one", b""]
    assert dec.feed(good[2][10:]) == [b"x" * 64]
    assert dec.bad == 2  # the garbage before the first delimiter, and 5000 bytes without one (not kept)


@given(st.binary(max_size=600))
def test_decoder_takes_any_bytes(data: bytes) -> None:
    dec = FrameDecoder(max_frame=128)
    for body in dec.feed(data):
        assert len(body) <= 128 + 8


@dataclass
class Line:
    """One direction of a noisy UART: bytes written now arrive after ``delay``, some damaged."""

    rng: random.Random
    flip: float = 0.0
    drop: float = 0.0
    dup: float = 0.0
    garbage: float = 0.0
    delay: float = 0.002
    queue: list[tuple[float, bytes]] = field(default_factory=list)

    def write(self, data: bytes, now: float) -> None:
        out = bytearray()
        for b in data:
            r = self.rng.random()
            if r < self.drop:
                continue
            if r < self.drop + self.flip:
                b ^= 1 << self.rng.randrange(8)
            out.append(b)
            if self.rng.random() < self.dup:
                out.append(b)
            if self.rng.random() < self.garbage:
                out += bytes(self.rng.randrange(256) for _ in range(self.rng.randrange(1, 8)))
        if out:
            self.queue.append((now + self.delay, bytes(out)))

    def read(self, now: float) -> bytes:
        ready = [d for t, d in self.queue if t <= now]
        self.queue = [(t, d) for t, d in self.queue if t > now]
        return b"".join(ready)


def run_pair(
    a: LinkCore, b: LinkCore, ab: Line, ba: Line, to_b: list[bytes], to_a: list[bytes], limit: float = 120.0
) -> tuple[list[bytes], list[bytes], list[object]]:
    now = 0.0
    a.start(now)
    b.start(now)
    got_a: list[bytes] = []
    got_b: list[bytes] = []
    events: list[object] = []
    out_b, out_a = list(to_b), list(to_a)
    while now < limit and (len(got_b) < len(to_b) or len(got_a) < len(to_a)):
        for core, line_in, got, outbox, line_out in ((a, ba, got_a, out_b, ab), (b, ab, got_b, out_a, ba)):
            for ev in core.receive(line_in.read(now), now):
                events.append(ev)
                if isinstance(ev, Message):
                    got.append(ev.data)
            while outbox and core.up and core.pending < 32:
                core.send(outbox.pop(0))
            line_out.write(core.transmit(now), now)
        now += 0.001
    return got_a, got_b, events


def messages(rng: random.Random, n: int, top: int) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, top + 1)) for _ in range(n)]


def test_clean_line_both_ways() -> None:
    rng = random.Random(1)
    a, b = LinkCore(session=1), LinkCore(session=2, window=4)
    to_b, to_a = messages(rng, 300, 256), messages(rng, 300, 256)
    got_a, got_b, events = run_pair(a, b, Line(rng), Line(rng), to_b, to_a)
    assert got_b == to_b and got_a == to_a
    assert Connected(4, 256, 2) in events and Connected(4, 256, 1) in events
    assert a.retransmissions == 0 and a.bad_frames == 0


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    flip=st.sampled_from([0.0, 0.0005, 0.002]),
    drop=st.sampled_from([0.0, 0.0005, 0.002]),
    dup=st.sampled_from([0.0, 0.001]),
    garbage=st.sampled_from([0.0, 0.001]),
)
def test_noisy_line_delivers_everything_once_in_order(
    seed: int, flip: float, drop: float, dup: float, garbage: float
) -> None:
    rng = random.Random(seed)
    a, b = LinkCore(session=10, rto=0.02), LinkCore(session=20, rto=0.02)
    to_b, to_a = messages(rng, 150, 200), messages(rng, 150, 200)
    ab = Line(rng, flip, drop, dup, garbage)
    ba = Line(rng, flip, drop, dup, garbage)
    got_a, got_b, _ = run_pair(a, b, ab, ba, to_b, to_a)
    assert got_b == to_b  # nothing lost, duplicated, reordered or corrupted
    assert got_a == to_a


def test_peer_restart_is_reported_and_the_link_goes_on() -> None:
    rng = random.Random(7)
    a, b = LinkCore(session=1), LinkCore(session=2)
    got_a, got_b, _ = run_pair(a, b, Line(rng), Line(rng), [b"before"], [])
    assert got_b == [b"before"]
    b2 = LinkCore(session=3)  # the other side rebooted: new session, sequence numbers from 0
    a.send(b"unanswered")
    b2.start(0.0)
    events = a.receive(b2.transmit(0.0), 0.0)  # its HELLO
    # lost: "unanswered" (queued) and "before" (delivered, but its ACK had not come back when the peer went)
    assert events == [PeerReset(lost=2, peer_session=3), Connected(8, 256, 3)]
    got_a, got_b, events = run_pair(a, b2, Line(rng), Line(rng), [b"after"], [b"hello again"])
    assert got_b == [b"after"] and got_a == [b"hello again"]
    assert not [e for e in events if isinstance(e, PeerReset)]


def test_window_bounds_what_is_in_flight() -> None:
    a, b = LinkCore(session=1, window=3), LinkCore(session=2)
    a.start(0.0)
    b.receive(a.transmit(0.0), 0.0)
    a.receive(b.transmit(0.0), 0.0)
    assert a.up and b.up
    for i in range(10):
        a.send(bytes([i]))
    wire = a.transmit(0.0)
    assert len(FrameDecoder().feed(wire)) == 3  # the window, nothing more until acknowledged
    delivered = [e for e in b.receive(wire, 0.0) if isinstance(e, Message)]
    assert [m.data for m in delivered] == [b"\x00", b"\x01", b"\x02"]
    a.receive(b.transmit(0.0), 0.0)  # the ACK frees the window
    assert len(FrameDecoder().feed(a.transmit(0.0))) == 3


def test_oversize_message_refused() -> None:
    a = LinkCore(session=1, max_payload=32)
    with pytest.raises(LinkError, match="33-byte message exceeds the link's 32-byte payload"):
        a.send(bytes(33))
