"""The UART link core (transports.serial_frames, transports.serial_link) without I/O: COBS vectors, frames and
resynchronisation, then two link cores over a simulated line that flips, drops, duplicates and inserts bytes —
every message must arrive once, in order, intact."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transports.serial_frames import (
    FrameDecoder,
    FrameError,
    cobs_decode,
    cobs_encode,
    crc_matches,
    decode_frame,
    encode_frame,
    split_frame,
)
from transports.serial_link import BOUND, HEADER, T_DATA, Connected, Event, LinkCore, LinkError, Message, PeerReset

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
            due = core.has_output(now)  # what the uart runner's writer waits for: exactly when transmit has bytes
            out = core.transmit(now)
            assert due == bool(out), (due, out)
            line_out.write(out, now)
        now += 0.001
    return got_a, got_b, events


def messages(rng: random.Random, n: int, top: int) -> list[bytes]:
    return [rng.randbytes(rng.randrange(0, top + 1)) for _ in range(n)]


def test_clean_line_both_ways() -> None:
    rng = random.Random(1)
    a, b = LinkCore(seed=1), LinkCore(seed=2, window=4)
    to_b, to_a = messages(rng, 300, 256), messages(rng, 300, 256)
    got_a, got_b, events = run_pair(a, b, Line(rng), Line(rng), to_b, to_a)
    assert got_b == to_b and got_a == to_a
    assert Connected(4, 256, b.nonce) in events and Connected(4, 256, a.nonce) in events
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
    a, b = LinkCore(seed=10, rto=0.02), LinkCore(seed=20, rto=0.02)
    to_b, to_a = messages(rng, 150, 200), messages(rng, 150, 200)
    ab = Line(rng, flip, drop, dup, garbage)
    ba = Line(rng, flip, drop, dup, garbage)
    got_a, got_b, _ = run_pair(a, b, ab, ba, to_b, to_a)
    assert got_b == to_b  # nothing lost, duplicated, reordered or corrupted
    assert got_a == to_a


def handshake(a: LinkCore, b: LinkCore, now: float = 0.0) -> list[Event]:
    """Frames back and forth on a clean line (a first) until both sides are up; b's events."""
    events: list[Event] = []
    for _ in range(4):
        events += b.receive(a.transmit(now), now)
        a.receive(b.transmit(now), now)
    assert a.up and b.up
    return events


def test_handshake_is_three_frames_and_needs_proof_of_both_nonces() -> None:
    a, b = LinkCore(seed=1), LinkCore(seed=2)
    a.start(0.0)
    hello = a.transmit(0.0)
    assert b.receive(hello, 0.0) == [] and not b.up  # a HELLO proves nothing (it may be a replay)
    hello_ack = b.transmit(0.0)
    assert a.receive(hello_ack, 0.0) == [] and not a.up  # b echoed a's nonce: a confirms ...
    confirm = a.transmit(0.0)
    assert b.receive(confirm, 0.0) == [Connected(8, 256, a.nonce)]  # ... b joins on the confirmation
    assert a.receive(b.transmit(0.0), 0.0) == [Connected(8, 256, b.nonce)]  # and a on b's answer
    assert [len(FrameDecoder().feed_unchecked(w)) for w in (hello, hello_ack, confirm)] == [1, 1, 1]


def test_peer_restart_is_reported_and_the_link_goes_on() -> None:
    rng = random.Random(7)
    a, b = LinkCore(seed=1), LinkCore(seed=2)
    got_a, got_b, _ = run_pair(a, b, Line(rng), Line(rng), [b"before"], [])
    assert got_b == [b"before"]
    b2 = LinkCore(seed=3)  # the other side rebooted: a new nonce, sequence numbers from 0
    a.send(b"unanswered")
    b2.start(0.0)
    events = handshake(b2, a)
    # lost: "unanswered" (queued) and "before" (delivered, but its ACK had not come back when the peer went)
    assert events == [PeerReset(lost=2, peer_nonce=b2.nonce), Connected(8, 256, b2.nonce)]
    got_a, got_b, events = run_pair(a, b2, Line(rng), Line(rng), [b"after"], [b"hello again"])
    assert got_b == [b"after"] and got_a == [b"hello again"]
    assert not [e for e in events if isinstance(e, PeerReset)]


# DATA "hi", seq 0x12345, ack 0x10002, from nonce 0x11223344 to nonce 0x55667788 (docs/uart-link.md): the wire has
# the low 16 bits of seq and ack; the CRC (0x450b3bd2) covers the 16-byte pseudo-header, then the body.
FRAME_VECTOR = bytes.fromhex("05 03 45 23 02 07 68 69 d2 3b 0b 45 00")
FRAME_BOUND = BOUND.pack(0x11223344, 0x55667788, 0x12345, 0x10002)
FRAME_BODY = bytes.fromhex("03 45 23 02 00 68 69")


def test_frame_vector_binds_what_the_wire_does_not_carry() -> None:
    assert encode_frame(FRAME_BODY, FRAME_BOUND) == FRAME_VECTOR
    assert split_frame(FRAME_VECTOR[:-1]) == (FRAME_BODY, 0x450B3BD2)
    assert crc_matches(FRAME_BODY, 0x450B3BD2, FRAME_BOUND)
    for k in range(4):  # another session, direction or high half of seq or ack: the CRC does not match
        other = bytearray(FRAME_BOUND)
        other[4 * k + 2] ^= 1
        assert not crc_matches(FRAME_BODY, 0x450B3BD2, bytes(other))


def bound_data(a: LinkCore, b: LinkCore, seq: int, payload: bytes) -> bytes:
    """A DATA frame from a to b with this full sequence number, as a would have sent it then."""
    assert a.peer_nonce == b.nonce
    return encode_frame(
        HEADER.pack(T_DATA, seq & 0xFFFF, 0) + payload, BOUND.pack(a.nonce, b.nonce, seq, 0)
    )  # fmt: skip


def test_a_frame_from_65536_frames_ago_cannot_pass_for_the_expected_one() -> None:
    """The wire carries 16 bits of the sequence: a DATA frame replayed from 2**16 frames earlier has the same
    ones as the frame expected now, but its CRC binds the old high half."""
    a, b = LinkCore(seed=1), LinkCore(seed=2)
    a.start(0.0)
    handshake(a, b)
    b._expected = 70_000  # as if 70,000 messages had come
    old = bound_data(a, b, 70_000 - 65_536, b"stale")
    assert b.receive(old, 0.0) == [] and b.unbound == 1
    assert b.receive(bound_data(a, b, 70_000, b"fresh"), 0.0) == [Message(b"fresh")]


def test_window_bounds_what_is_in_flight() -> None:
    a, b = LinkCore(seed=1, window=3), LinkCore(seed=2)
    a.start(0.0)
    handshake(a, b)
    for i in range(10):
        a.send(bytes([i]))
    wire = a.transmit(0.0)
    assert len(FrameDecoder().feed_unchecked(wire)) == 3  # the window, nothing more until acknowledged
    delivered = [e for e in b.receive(wire, 0.0) if isinstance(e, Message)]
    assert [m.data for m in delivered] == [b"\x00", b"\x01", b"\x02"]
    a.receive(b.transmit(0.0), 0.0)  # the ACK frees the window
    assert len(FrameDecoder().feed_unchecked(a.transmit(0.0))) == 3


def test_oversize_message_refused() -> None:
    a = LinkCore(seed=1, max_payload=32)
    with pytest.raises(LinkError, match="33-byte message exceeds the link's 32-byte payload"):
        a.send(bytes(33))


# --- a line that replays ------------------------------------------------------------------------------------------
@dataclass
class ReplayLine(Line):
    """A line that, after some of the frames it carries, puts on the wire again a whole frame it or another line
    sharing ``history`` carried before — of this session, of an earlier session, or of the other direction."""

    history: list[bytes] = field(default_factory=list)
    replay: float = 0.0
    replayed: int = 0

    def write(self, data: bytes, now: float) -> None:
        *frames, rest = data.split(b"\0")
        out = bytearray()
        for body in frames:
            out += body + b"\0"
            if self.history and self.rng.random() < self.replay:
                out += self.rng.choice(self.history)
                self.replayed += 1
        self.history.extend(body + b"\0" for body in frames)
        super().write(bytes(out + rest), now)


class PySide:
    """A Python link core driven by :func:`run_sides` (the C twin has the same face in test_serial_link_c.py)."""

    def __init__(self, core: LinkCore) -> None:
        self.core = core
        self.delivered: list[bytes] = []
        self.events: list[object] = []
        self.sent = 0
        self.lost = 0  # dropped at a peer restart: neither acknowledged nor delivered

    def start(self, ms: int) -> None:
        self.core.start(ms / 1000)

    def step(self, incoming: bytes, ms: int) -> bytes:
        for ev in self.core.receive(incoming, ms / 1000):
            self.events.append(ev)
            if isinstance(ev, Message):
                self.delivered.append(ev.data)
            elif isinstance(ev, PeerReset):
                self.lost += ev.lost
        return self.core.transmit(ms / 1000)

    def try_send(self, data: bytes, ms: int) -> bool:
        if not self.core.up or self.core.pending >= 16:
            return False
        self.core.send(data)
        self.sent += 1
        return True

    @property
    def up(self) -> bool:
        return self.core.up

    @property
    def acknowledged(self) -> int:
        """Of the messages sent through this side, how many the peer acknowledged."""
        return self.sent - self.core.pending - self.lost

    @property
    def resets(self) -> int:
        return sum(isinstance(e, PeerReset) for e in self.events)


def run_sides(
    a: Any, b: Any, ab: Line, ba: Line, to_b: list[bytes], to_a: list[bytes], t0: int = 0, limit_ms: int = 30_000
) -> int:
    """From millisecond ``t0``, both sides send their lists; returns the millisecond at which both arrived (or
    the limit). At every step no side counts more of its messages acknowledged than the other delivered:
    nothing acknowledged is lost."""
    out_b, out_a = list(to_b), list(to_a)
    base_a, base_b = len(a.delivered), len(b.delivered)
    ack_base_a, ack_base_b = a.acknowledged, b.acknowledged
    for ms in range(t0, t0 + limit_ms):
        ba.write(b.step(ab.read(ms / 1000), ms), ms / 1000)
        ab.write(a.step(ba.read(ms / 1000), ms), ms / 1000)
        while out_b and a.try_send(out_b[0], ms):
            out_b.pop(0)
        while out_a and b.try_send(out_a[0], ms):
            out_a.pop(0)
        assert a.acknowledged - ack_base_a <= len(b.delivered) - base_b, "acknowledged but never delivered"
        assert b.acknowledged - ack_base_b <= len(a.delivered) - base_a, "acknowledged but never delivered"
        if len(b.delivered) - base_b >= len(to_b) and len(a.delivered) - base_a >= len(to_a):
            return ms + 1
    return t0 + limit_ms


def settle(a: Any, b: Any, ab: Line, ba: Line, t0: int, ms: int = 500) -> int:
    """Let the last ACKs cross (nothing new is sent)."""
    for t in range(t0, t0 + ms):
        ba.write(b.step(ab.read(t / 1000), t), t / 1000)
        ab.write(a.step(ba.read(t / 1000), t), t / 1000)
    return t0 + ms


def handshake_frames(frames: list[bytes]) -> list[bytes]:
    """The HELLO and HELLO_ACK frames among ``frames`` (whole frames, delimiter included)."""
    out = []
    for wire in frames:
        try:
            body = decode_frame(wire[:-1])
        except FrameError:
            continue  # a frame whose CRC covers more than its bytes (a session's)
        if body and body[0] in (1, 2):
            out.append(wire)
    return out


def replay_after_restart(make_a: Any, make_b: Any, seed: int, replay: float, count: int = 150) -> None:
    """Session 1 between a and b; b restarts (a new instance: session 2) and from then on both lines replay, after
    ``replay`` of the frames they carry, a frame picked from everything carried so far — session 1's handshake,
    DATA and ACKs, session 2's own, either direction. Every message of session 2 arrives once, in order; no
    acknowledged message is lost; a sees exactly one peer restart, the real one."""
    rng = random.Random(seed)
    history: list[bytes] = []
    ab, ba = ReplayLine(rng, history=history), ReplayLine(rng, history=history)
    a, b = make_a(1), make_b(2)
    a.start(0)
    b.start(0)
    to_b, to_a = messages(rng, 40, 200), messages(rng, 40, 200)
    t = run_sides(a, b, ab, ba, to_b, to_a)
    t = settle(a, b, ab, ba, t)
    assert b.delivered == to_b and a.delivered == to_a
    b2 = make_b(3)  # b restarts; the replays begin
    b2.start(t)
    ab.replay = ba.replay = replay
    t = settle(a, b2, ab, ba, t)
    assert a.resets == 1 and b2.up  # the real restart is recognised, replays or not
    base = len(a.delivered)
    to_b, to_a = messages(rng, count, 200), messages(rng, count, 200)
    run_sides(a, b2, ab, ba, to_b, to_a, t)
    assert b2.delivered == to_b  # no stale duplicate, nothing lost, in order
    assert a.delivered[base:] == to_a
    assert ab.replayed + ba.replayed > 30  # the replays happened
    assert a.resets == 1 and b2.resets == 0


def old_hello_after_restart(make_a: Any, make_b: Any, seed: int) -> None:
    """Session 1 between a and b, b restarts; in session 2 each side receives the handshake frames of session 1
    (b's HELLO, a's HELLO_ACK...) once more: session 2 goes on, 20 messages each way arrive, no reset."""
    rng = random.Random(seed)
    ab, ba = ReplayLine(rng), ReplayLine(rng)
    a, b = make_a(1), make_b(2)
    a.start(0)
    b.start(0)
    t = settle(a, b, ab, ba, run_sides(a, b, ab, ba, [b"one"], [b"two"]))
    old_to_a, old_to_b = handshake_frames(ba.history), handshake_frames(ab.history)
    assert old_to_a and old_to_b
    b2 = make_b(3)
    b2.start(t)
    t = settle(a, b2, ab, ba, t)
    assert a.resets == 1 and b2.up
    t = settle(a, b2, ab, ba, run_sides(a, b2, ab, ba, [b"three"], [b"four"], t))
    for wire in old_to_a:
        ba.write(wire, t / 1000)
    for wire in old_to_b:
        ab.write(wire, t / 1000)
    to_b, to_a = messages(rng, 20, 100), messages(rng, 20, 100)
    run_sides(a, b2, ab, ba, to_b, to_a, t, limit_ms=10_000)
    assert b2.delivered[-20:] == to_b and len(b2.delivered) == 21
    assert a.delivered[-20:] == to_a and len(a.delivered) == 22
    assert a.resets == 1 and b2.resets == 0


def py_side(seed: int) -> PySide:
    return PySide(LinkCore(seed=seed, rto=0.02))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replayed_frames_never_deliver_twice_nor_lose_an_acknowledged_message(seed: int) -> None:
    replay_after_restart(py_side, py_side, seed, replay=0.2, count=300)


def test_a_replayed_hello_of_an_earlier_session_cannot_restart_the_link() -> None:
    old_hello_after_restart(py_side, py_side, 4)


def test_no_room_takes_nothing_and_acknowledges_nothing() -> None:
    """receive(..., room): in-order DATA beyond the caller's room is neither delivered nor acknowledged (the
    sender keeps it and retransmits); with room again the retransmission is taken, in order, once."""
    a, b = LinkCore(seed=1, rto=0.01), LinkCore(seed=2, rto=0.01)
    a.start(0.0)
    b.start(0.0)
    handshake(a, b)
    for m in (b"one", b"two", b"three"):
        a.send(m)
    frames = a.transmit(1.0)
    got = b.receive(frames, 1.0, room=1)
    assert got == [Message(b"one")] and b.refused_full == 1  # "two" refused; "three" then follows a gap
    a.receive(b.transmit(1.0), 1.0)  # b's ACK: only the first frame
    assert a.pending == 2
    assert b.receive(a.transmit(1.02), 1.02, room=0) == [] and b.refused_full == 2  # resent, still no room
    a.receive(b.transmit(1.02), 1.02)
    assert a.pending == 2
    assert b.receive(a.transmit(1.04), 1.04, room=None) == [Message(b"two"), Message(b"three")]
    a.receive(b.transmit(1.04), 1.04)
    assert a.pending == 0
