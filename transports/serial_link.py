"""A reliable, ordered message link over a lossy byte stream (a UART), without I/O: the core of ``uart:``.

Theory of operation (the specification is docs/uart-link.md)
------------------------------------------------------------
Frames (:mod:`transports.serial_frames`: COBS, 0x00 delimiter, CRC-32) carry a 5-byte header {type, seq, ack}.
Go-back-N ARQ with 32-bit sequence numbers of which the wire carries the low 16 bits: a sender keeps at most
``window`` DATA frames unacknowledged, retransmits all of them when the oldest has waited ``rto`` seconds, and
frees them as cumulative ACKs arrive (the ``ack`` field of every frame is the next sequence number its sender
expects). A receiver delivers only the next expected frame, so delivery is in order and exactly once; a duplicate
or a frame after a gap is dropped and answered with an ACK that says where the receiver stands. An ACK is sent
only for what was delivered to the caller: nothing acknowledged is lost.

Sessions: each side draws a random 32-bit nonce when it starts. The CRC of every DATA and ACK frame covers, before
the frame's bytes, a pseudo-header the wire does not carry: the sender's nonce, the receiver's nonce and the full
32-bit seq and ack. A frame of another session, of the other direction, or from 2**16 frames ago fails the CRC
check and is dropped like noise. The handshake cannot be restarted by a replay: HELLO {nonce} is answered by
HELLO_ACK {nonce, echo}, and a side joins a session only on a frame that proves its peer saw its own fresh nonce
(a HELLO_ACK echoing it, or a frame whose CRC binds it). A side that is up and receives a HELLO with a nonce it
does not know answers it with a fresh nonce of its own, as a candidate, and goes on with the current session: a
replayed HELLO can never complete that handshake, a restarted peer does, and only then is the old session
dropped (:class:`PeerReset` says how many of our messages were in flight or queued).

The caller feeds received bytes to :meth:`LinkCore.receive`, sends with :meth:`LinkCore.send`, writes what
:meth:`LinkCore.transmit` returns, and calls it again by :meth:`LinkCore.deadline`.
"""

from __future__ import annotations

import random
import struct
from collections import deque
from dataclasses import dataclass

from transports.errors import TransportError
from transports.serial_frames import FrameDecoder, crc_matches, encode_frame

VERSION = 2
HEADER = struct.Struct("<BHH")  # type, seq, ack (the low 16 bits of each)
HELLO = struct.Struct("<BBHI")  # version, window, max payload, nonce
HELLO_ACK = struct.Struct("<BBHII")  # version, window, max payload, nonce, echo (the HELLO's nonce)
BOUND = struct.Struct("<IIII")  # sender nonce, receiver nonce, seq, ack: covered by the CRC, not sent
T_HELLO, T_HELLO_ACK, T_DATA, T_ACK = 1, 2, 3, 4
MAX_WINDOW = 127  # far below half the 16-bit wire sequence space: the full number is always recovered


class LinkError(TransportError):
    """Misuse of the link (a message larger than the negotiated payload, sending before the handshake...)."""


@dataclass(frozen=True)
class Connected:
    window: int
    max_payload: int
    peer_nonce: int


@dataclass(frozen=True)
class Message:
    data: bytes


@dataclass(frozen=True)
class PeerReset:
    """The peer restarted (a new session): ``lost`` of our messages were in flight or queued and are dropped."""

    lost: int
    peer_nonce: int


Event = Connected | Message | PeerReset


@dataclass
class _Candidate:
    """A session offered but not yet proven: the peer's nonce, ours for it, its parameters; ``proven`` when the peer
    echoed our fresh nonce (a HELLO_ACK), so that we confirm it."""

    peer: int
    mine: int
    window: int
    max_payload: int
    proven: bool


def _near(ref: int, low: int) -> int:
    """The 32-bit number with these low 16 bits nearest to ``ref`` (within -32768..+32767)."""
    return (ref + ((low - ref + 0x8000) & 0xFFFF) - 0x8000) & 0xFFFFFFFF


class LinkCore:
    """``seed`` makes the nonces reproducible (tests); without it they come from the OS (random.SystemRandom)."""

    def __init__(self, *, seed: int | None = None, window: int = 8, max_payload: int = 256, rto: float = 0.1) -> None:
        if not 1 <= window <= MAX_WINDOW:
            raise LinkError(f"window {window} is not 1..{MAX_WINDOW}")
        if not 1 <= max_payload <= 0xFFFF:
            raise LinkError(f"max payload {max_payload} is not 1..65535")
        self._rng: random.Random = random.Random(seed) if seed is not None else random.SystemRandom()
        self.window = window
        self.max_payload = max_payload
        self.rto = rto
        self.decoder = FrameDecoder(max_frame=HEADER.size + max(max_payload, HELLO_ACK.size))
        self.up = False
        self.nonce = self._fresh()  # ours: of the session in use, or of our HELLOs while not up
        self.peer_nonce: int | None = None
        self._cand: _Candidate | None = None
        self._hello_due: float | None = None
        self._reply: tuple[int, int] | None = None  # a HELLO_ACK to send: (our nonce, the echo)
        self._reset_sequences()
        self._eff_window = self.window
        self._eff_payload = self.max_payload
        self.retransmissions = 0
        self.frames_sent = 0
        self.unbound = 0  # DATA/ACK frames whose CRC matches neither the session nor the candidate: noise or stale
        self.stale_hellos = 0  # HELLO_ACKs that echo no nonce of ours now
        self.refused_full = 0  # in-order DATA frames not taken: the caller had no room (receive's ``room``)
        self._room: int | None = None

    def _fresh(self) -> int:
        return self._rng.getrandbits(32)

    def _reset_sequences(self) -> None:
        self._next_seq = 0  # of our next new DATA frame (32 bits)
        self._expected = 0  # the peer's next DATA frame we will deliver (32 bits)
        self._in_flight: deque[tuple[int, bytes]] = deque()
        self._oldest_sent = 0.0
        self._queue: deque[bytes] = deque()
        self._ack_due = False

    # --- the caller's side -------------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Begin the handshake with a fresh nonce (called again: a session in use ends, its queue is dropped)."""
        if self.up:
            self._reset_sequences()
        self.up = False
        self.nonce = self._fresh()
        self.peer_nonce = None
        self._cand = None
        self._reply = None
        self._hello_due = now

    def send(self, data: bytes) -> None:
        limit = self._eff_payload
        if len(data) > limit:
            raise LinkError(f"a {len(data)}-byte message exceeds the link's {limit}-byte payload")
        self._queue.append(bytes(data))

    @property
    def pending(self) -> int:
        """Messages not yet acknowledged by the peer (queued or in flight)."""
        return len(self._queue) + len(self._in_flight)

    def deadline(self) -> float | None:
        """When :meth:`transmit` has something to do without new input (retransmission, HELLO)."""
        times = []
        if self._hello_due is not None:
            times.append(self._hello_due)
        if self._in_flight:
            times.append(self._oldest_sent + self.rto)
        return min(times) if times else None

    def has_output(self, now: float) -> bool:
        """Whether :meth:`transmit` would return bytes now (a reply, an ACK, a due HELLO or retransmission, a
        queued message with room in the window)."""
        if self._reply is not None or (self._hello_due is not None and now >= self._hello_due):
            return True
        if not self.up:
            return self._ack_due and self._cand is not None and self._cand.proven
        if self._in_flight and now >= self._oldest_sent + self.rto:
            return True
        return self._ack_due or (bool(self._queue) and len(self._in_flight) < self._eff_window)

    def transmit(self, now: float) -> bytes:
        """Bytes to write now: HELLO_ACK, HELLOs, new DATA within the window, retransmissions, ACKs."""
        out = bytearray()
        if self._reply is not None:
            mine, echo = self._reply
            self._reply = None
            out += self._hello_frame(T_HELLO_ACK, HELLO_ACK.pack(VERSION, self.window, self.max_payload, mine, echo))
        if self._hello_due is not None and now >= self._hello_due:
            out += self._hello_frame(T_HELLO, HELLO.pack(VERSION, self.window, self.max_payload, self.nonce))
            self._hello_due = now + self.rto
        if not self.up:
            if self._ack_due and self._cand is not None and self._cand.proven:
                # confirm the candidate: a frame bound to the nonce the peer just gave us
                self._ack_due = False
                out += self._frame(T_ACK, 0, 0, b"", self._cand.mine, self._cand.peer)
            return bytes(out)
        if self._in_flight and now >= self._oldest_sent + self.rto:
            for seq, data in self._in_flight:  # go-back-N: everything from the oldest on
                out += self._data(seq, data)
                self.retransmissions += 1
            self._oldest_sent = now
        while self._queue and len(self._in_flight) < self._eff_window:
            data = self._queue.popleft()
            seq = self._next_seq
            self._next_seq = (seq + 1) & 0xFFFFFFFF
            if not self._in_flight:
                self._oldest_sent = now
            self._in_flight.append((seq, data))
            out += self._data(seq, data)
        if self._ack_due:
            out += self._data(None, b"")
        return bytes(out)

    def _data(self, seq: int | None, payload: bytes) -> bytes:
        """A DATA frame (or with ``seq`` None an ACK) of the session in use; every one carries the cumulative ack."""
        assert self.peer_nonce is not None
        self._ack_due = False
        kind = T_ACK if seq is None else T_DATA
        return self._frame(kind, seq or 0, self._expected, payload, self.nonce, self.peer_nonce)

    def _frame(self, kind: int, seq: int, ack: int, payload: bytes, mine: int, peer: int) -> bytes:
        self.frames_sent += 1
        bound = BOUND.pack(mine, peer, seq, ack)
        return encode_frame(HEADER.pack(kind, seq & 0xFFFF, ack & 0xFFFF) + payload, bound)

    def _hello_frame(self, kind: int, payload: bytes) -> bytes:
        self.frames_sent += 1
        return encode_frame(HEADER.pack(kind, 0, 0) + payload)

    # --- what arrives ------------------------------------------------------------------------------------------
    @property
    def bad_frames(self) -> int:
        """Frames dropped as damaged: bad COBS, too long, a CRC that matches nothing (noise, or another session)."""
        return self.decoder.bad + self.unbound

    def receive(self, data: bytes, now: float, room: int | None = None) -> list[Event]:
        """The events in ``data``. ``room``: how many more messages the caller can hold (None: no limit); a DATA
        frame beyond it is not delivered, so not acknowledged (the ACK says where we stand): the sender keeps it
        and sends it again after its timeout. A receiver that does not keep up holds at most ``room`` messages,
        and nothing acknowledged is lost."""
        events: list[Event] = []
        self._room = room
        for body, crc in self.decoder.feed_unchecked(data):
            if len(body) < HEADER.size:
                self.decoder.bad += 1
                continue
            kind, seq16, ack16 = HEADER.unpack_from(body)
            if kind in (T_HELLO, T_HELLO_ACK):
                if not crc_matches(body, crc):
                    self.decoder.bad += 1
                elif kind == T_HELLO:
                    self._on_hello(body[HEADER.size :])
                else:
                    self._on_hello_ack(body[HEADER.size :])
                continue
            if kind not in (T_DATA, T_ACK):
                self.decoder.bad += 1
                continue
            events += self._on_bound(kind, seq16, ack16, body, crc, now)
        return events

    def _on_bound(self, kind: int, seq16: int, ack16: int, body: bytes, crc: int, now: float) -> list[Event]:
        """A DATA or ACK frame: of the session in use, of the candidate (which it then proves), or dropped."""
        events: list[Event] = []

        def matches(peer: int, mine: int, expected: int, next_seq: int) -> tuple[int, int] | None:
            seq = _near(expected, seq16) if kind == T_DATA else seq16
            ack = _near(next_seq, ack16)
            return (seq, ack) if crc_matches(body, crc, BOUND.pack(peer, mine, seq, ack)) else None

        found = None
        if self.up:
            assert self.peer_nonce is not None
            found = matches(self.peer_nonce, self.nonce, self._expected, self._next_seq)
        if found is None and self._cand is not None and (found := matches(self._cand.peer, self._cand.mine, 0, 0)):
            events += self._commit()
        if found is None:
            self.unbound += 1
            return events
        seq, ack = found
        self._on_ack(ack, now)
        if kind == T_DATA:
            if seq == self._expected and self._room is not None and self._room <= 0:
                self.refused_full += 1  # the caller holds all it can: not taken, not acknowledged
            elif seq == self._expected:
                self._expected = (seq + 1) & 0xFFFFFFFF
                events.append(Message(body[HEADER.size :]))
                if self._room is not None:
                    self._room -= 1
            self._ack_due = True  # in order, duplicate or after a gap: say where we stand
        return events

    def _on_ack(self, ack: int, now: float) -> None:
        if not self._in_flight:
            return
        freed = (ack - self._in_flight[0][0]) & 0xFFFFFFFF
        if 0 < freed <= len(self._in_flight):
            for _ in range(freed):
                self._in_flight.popleft()
            self._oldest_sent = now  # the remaining frames get a fresh timeout

    def _commit(self) -> list[Event]:
        """The candidate proved itself: it becomes the session (a session in use ends: the peer restarted)."""
        cand = self._cand
        assert cand is not None
        events: list[Event] = []
        if self.up:
            events.append(PeerReset(self.pending, cand.peer))
            self._reset_sequences()
        self.nonce, self.peer_nonce = cand.mine, cand.peer
        self._eff_window = min(self.window, cand.window)
        self._eff_payload = min(self.max_payload, cand.max_payload)
        self._cand = None
        self.up = True
        self._hello_due = None
        self._ack_due = True  # tell the peer, which may still wait for proof of us
        events.append(Connected(self._eff_window, self._eff_payload, cand.peer))
        return events

    def _params(self, payload: bytes, layout: struct.Struct) -> tuple[int, ...] | None:
        """The fields of a HELLO or HELLO_ACK payload, or None if it is short or out of range."""
        if len(payload) < layout.size:
            return None
        fields: tuple[int, ...] = layout.unpack_from(payload)
        version, window, max_payload = fields[:3]
        if version != VERSION or not 1 <= window <= MAX_WINDOW or max_payload < 1:
            return None
        return fields

    def _on_hello(self, payload: bytes) -> None:
        fields = self._params(payload, HELLO)
        if fields is None:
            self.decoder.bad += 1
            return
        _, window, max_payload, nonce = fields
        if self.up and nonce == self.peer_nonce:
            self._reply = (self.nonce, nonce)  # the peer has not seen our answer yet
            self._ack_due = True  # ... nor a frame of the session: this one proves it
            return
        cand = self._cand
        if cand is None or (cand.peer != nonce and not cand.proven):
            # Unproven: this HELLO may be a replay. Up, we answer with a fresh nonce and go on with the session in
            # use; only a peer that receives the answer now can prove the candidate.
            mine = self._fresh() if self.up else self.nonce
            cand = self._cand = _Candidate(nonce, mine, window, max_payload, proven=False)
        self._reply = (cand.mine if cand.peer == nonce else self.nonce, nonce)

    def _on_hello_ack(self, payload: bytes) -> None:
        fields = self._params(payload, HELLO_ACK)
        if fields is None:
            self.decoder.bad += 1
            return
        _, window, max_payload, nonce, echo = fields
        if self.up or echo != self.nonce:
            self.stale_hellos += 1  # an answer to a HELLO we did not send now (a repeat, or a replay)
            return
        self._cand = _Candidate(nonce, self.nonce, window, max_payload, proven=True)
        self._ack_due = True  # confirm: the peer joins on this frame, we on its answer
