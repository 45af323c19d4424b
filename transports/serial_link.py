"""A reliable, ordered message link over a lossy byte stream (a UART), without I/O: the core of ``uart:``.

Theory of operation (the specification is docs/uart-link.md)
------------------------------------------------------------
Frames (:mod:`transports.serial_frames`: COBS, 0x00 delimiter, CRC-32) carry a 3-byte header {type, seq, ack}.
Go-back-N ARQ with 8-bit sequence numbers: a sender keeps at most ``window`` DATA frames unacknowledged,
retransmits all of them when the oldest has waited ``rto`` seconds, and frees them as cumulative ACKs arrive (the
``ack`` field of every frame is the next sequence number its sender expects). A receiver delivers only the next
expected frame, so delivery is in order and exactly once; a duplicate or a frame after a gap is dropped and
answered with an ACK that says where the receiver stands. An ACK is sent only for what was delivered to the
caller: nothing acknowledged is lost.

The handshake is symmetric: each side sends HELLO {version, window, max payload, session} until it gets a
HELLO_ACK; the link runs with the smaller window and payload. A HELLO with a new session number means the peer
restarted: sequence state starts over and :class:`PeerReset` says how many of our messages were in flight (the
layer above must resynchronise whatever they described). Flow control: the window bounds what is in flight, so a
slow receiver holds at most ``window`` frames at any time.

The caller feeds received bytes to :meth:`LinkCore.receive`, sends with :meth:`LinkCore.send`, writes what
:meth:`LinkCore.transmit` returns, and calls it again by :meth:`LinkCore.deadline`.
"""

from __future__ import annotations

import struct
from collections import deque
from dataclasses import dataclass

from transports.errors import TransportError
from transports.serial_frames import FrameDecoder, encode_frame

VERSION = 1
HEADER = struct.Struct("<BBB")  # type, seq, ack
HELLO = struct.Struct("<BBHI")  # version, window, max payload, session
T_HELLO, T_HELLO_ACK, T_DATA, T_ACK = 1, 2, 3, 4
MAX_WINDOW = 127  # half the 8-bit sequence space: old and new frames stay distinguishable


class LinkError(TransportError):
    """Misuse of the link (a message larger than the negotiated payload, sending before the handshake...)."""


@dataclass(frozen=True)
class Connected:
    window: int
    max_payload: int
    peer_session: int


@dataclass(frozen=True)
class Message:
    data: bytes


@dataclass(frozen=True)
class PeerReset:
    """The peer restarted (a new session): ``lost`` of our messages were in flight or queued and are dropped."""

    lost: int
    peer_session: int


Event = Connected | Message | PeerReset


def _dist(a: int, b: int) -> int:
    """How far b is ahead of a, modulo 256."""
    return (b - a) & 0xFF


class LinkCore:
    def __init__(self, *, session: int, window: int = 8, max_payload: int = 256, rto: float = 0.1) -> None:
        if not 1 <= window <= MAX_WINDOW:
            raise LinkError(f"window {window} is not 1..{MAX_WINDOW}")
        if not 1 <= max_payload <= 0xFFFF:
            raise LinkError(f"max payload {max_payload} is not 1..65535")
        self.session = session & 0xFFFFFFFF
        self.window = window
        self.max_payload = max_payload
        self.rto = rto
        self.decoder = FrameDecoder(max_frame=HEADER.size + max(max_payload, HELLO.size))
        self.up = False
        self.peer_session: int | None = None
        self._hello_due: float | None = None
        self._reply_hello = False
        self._reset_sequences()
        self.retransmissions = 0
        self.frames_sent = 0

    def _reset_sequences(self) -> None:
        self._next_seq = 0  # of our next new DATA frame
        self._expected = 0  # the peer's next DATA frame we will deliver
        self._in_flight: deque[tuple[int, bytes]] = deque()
        self._oldest_sent = 0.0
        self._queue: deque[bytes] = deque()
        self._ack_due = False
        self._eff_window = self.window
        self._eff_payload = self.max_payload

    # --- the caller's side -------------------------------------------------------------------------------------
    def start(self, now: float) -> None:
        """Begin (or begin again) the handshake."""
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

    def transmit(self, now: float) -> bytes:
        """Bytes to write now: HELLOs, new DATA within the window, retransmissions, ACKs."""
        out = bytearray()
        if self._reply_hello:
            out += self._frame(T_HELLO_ACK, 0, self._hello_payload())
            self._reply_hello = False
        if self._hello_due is not None and now >= self._hello_due:
            out += self._frame(T_HELLO, 0, self._hello_payload())
            self._hello_due = now + self.rto
        if self.up:
            if self._in_flight and now >= self._oldest_sent + self.rto:
                for seq, data in self._in_flight:  # go-back-N: everything from the oldest on
                    out += self._frame(T_DATA, seq, data)
                    self.retransmissions += 1
                self._oldest_sent = now
            while self._queue and len(self._in_flight) < self._eff_window:
                data = self._queue.popleft()
                seq = self._next_seq
                self._next_seq = (seq + 1) & 0xFF
                if not self._in_flight:
                    self._oldest_sent = now
                self._in_flight.append((seq, data))
                out += self._frame(T_DATA, seq, data)
            if self._ack_due:
                out += self._frame(T_ACK, 0, b"")
        return bytes(out)

    def _frame(self, kind: int, seq: int, payload: bytes) -> bytes:
        self.frames_sent += 1
        if kind != T_HELLO:
            self._ack_due = False  # every frame carries the cumulative ack
        return encode_frame(HEADER.pack(kind, seq, self._expected) + payload)

    def _hello_payload(self) -> bytes:
        return HELLO.pack(VERSION, self.window, self.max_payload, self.session)

    # --- what arrives ------------------------------------------------------------------------------------------
    @property
    def bad_frames(self) -> int:
        return self.decoder.bad

    def receive(self, data: bytes, now: float) -> list[Event]:
        events: list[Event] = []
        for body in self.decoder.feed(data):
            if len(body) < HEADER.size:
                self.decoder.bad += 1
                continue
            kind, seq, ack = HEADER.unpack_from(body)
            payload = body[HEADER.size :]
            if kind in (T_HELLO, T_HELLO_ACK):
                events += self._on_hello(kind, payload, now)
                continue
            if not self.up:
                continue  # data of a session we have not agreed on yet
            self._on_ack(ack, now)
            if kind == T_DATA:
                if seq == self._expected:
                    self._expected = (seq + 1) & 0xFF
                    events.append(Message(payload))
                self._ack_due = True  # in order, duplicate or after a gap: say where we stand
            elif kind != T_ACK:
                self.decoder.bad += 1
        return events

    def _on_ack(self, ack: int, now: float) -> None:
        if not self._in_flight:
            return
        oldest = self._in_flight[0][0]
        freed = _dist(oldest, ack)
        if 0 < freed <= len(self._in_flight):
            for _ in range(freed):
                self._in_flight.popleft()
            self._oldest_sent = now  # the remaining frames get a fresh timeout

    def _on_hello(self, kind: int, payload: bytes, now: float) -> list[Event]:
        if len(payload) < HELLO.size:
            self.decoder.bad += 1
            return []
        version, window, max_payload, session = HELLO.unpack_from(payload)
        if version != VERSION or not 1 <= window <= MAX_WINDOW or max_payload < 1:
            self.decoder.bad += 1
            return []
        events: list[Event] = []
        if kind == T_HELLO:
            self._reply_hello = True
        if self.up and session == self.peer_session:
            return events  # a repeated HELLO or HELLO_ACK of the session we have
        if self.up or self.peer_session is not None:
            lost = self.pending
            self._reset_sequences()
            events.append(PeerReset(lost, session))
        self.peer_session = session
        self._eff_window = min(self.window, window)
        self._eff_payload = min(self.max_payload, max_payload)
        self.up = True
        # Their HELLO or HELLO_ACK is enough to run. If they have not seen ours, they keep sending HELLO until our
        # HELLO_ACK (queued above) reaches them: both sides must call start().
        self._hello_due = None
        events.append(Connected(self._eff_window, self._eff_payload, session))
        return events
