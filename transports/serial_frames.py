"""Frames on a byte stream (a UART), without I/O: COBS encoding, a 0x00 delimiter, CRC-32 per frame.

Wire format (docs/uart-link.md): ``COBS(body || crc32(body) as u32 little-endian) || 0x00``. COBS (Cheshire and
Baker, "Consistent Overhead Byte Stuffing", 1999) removes every 0x00 from the frame, so 0x00 only ever ends a
frame: after noise, a break or a reset the decoder throws away what it has and starts again at the next 0x00 —
resynchronisation costs at most one frame. The CRC is the IEEE 802.3 one (``zlib.crc32``); a frame whose CRC
does not match is dropped and counted, never delivered.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

CRC = struct.Struct("<I")
DELIMITER = 0


def cobs_encode(data: bytes) -> bytes:
    """COBS: every run of up to 254 non-zero bytes is prefixed by its length + 1; the zeros disappear."""
    out = bytearray(b"\0")
    code_at, code = 0, 1
    for byte in data:
        if byte:
            out.append(byte)
            code += 1
        if not byte or code == 255:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
    if code == 1 and data and data[-1]:
        del out[code_at]  # the data ended with a full 254-byte block: no empty block after it (as Wikipedia's)
    else:
        out[code_at] = code
    return bytes(out)


class FrameError(ValueError):
    """A frame that cannot be decoded (bad COBS, short, CRC mismatch): dropped by the decoder."""


def cobs_decode(data: bytes) -> bytes:
    out = bytearray()
    pos = 0
    while pos < len(data):
        code = data[pos]
        if code == 0:
            raise FrameError(f"COBS: a zero byte at offset {pos} inside a frame")
        end = pos + code
        if end > len(data):
            raise FrameError(f"COBS: block at offset {pos} runs {end - len(data)} bytes past the frame")
        out += data[pos + 1 : end]
        pos = end
        if code < 255 and pos < len(data):
            out.append(0)
    return bytes(out)


def encode_frame(body: bytes, bound: bytes = b"") -> bytes:
    """One frame on the wire, delimiter included. ``bound``: bytes the CRC covers before the body but the wire does
    not carry (the serial link's session and sequence numbers: the receiver checks the CRC with its own)."""
    return cobs_encode(body + CRC.pack(zlib.crc32(body, zlib.crc32(bound)))) + b"\0"


def crc_matches(body: bytes, crc: int, bound: bytes = b"") -> bool:
    """Whether ``crc`` is the CRC-32 of ``bound || body``."""
    return zlib.crc32(body, zlib.crc32(bound)) == crc


def split_frame(wire: bytes) -> tuple[bytes, int]:
    """The body and the CRC field of one frame (without its delimiter), the CRC not checked; FrameError if the
    frame is not COBS or too short."""
    raw = cobs_decode(wire)
    if len(raw) < CRC.size:
        raise FrameError(f"frame of {len(raw)} bytes is shorter than its CRC")
    return raw[: -CRC.size], CRC.unpack_from(raw, len(raw) - CRC.size)[0]


def decode_frame(wire: bytes) -> bytes:
    """The body of one frame (without its delimiter) whose CRC covers the body alone, or FrameError."""
    body, crc = split_frame(wire)
    if zlib.crc32(body) != crc:
        raise FrameError(f"CRC mismatch on a {len(body)}-byte frame")
    return body


@dataclass
class FrameDecoder:
    """Feed it bytes as they come; it returns the bodies of the good frames and counts the bad ones.

    ``max_frame`` bounds the bytes kept while waiting for a delimiter: a stream of garbage without zeros cannot
    grow memory, it is dropped as one bad frame. :meth:`feed_unchecked` leaves the CRC to the caller (the
    serial link binds its session into it)."""

    max_frame: int = 1024
    bad: int = 0
    _buf: bytearray | None = None
    _overflow: bool = False

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._wire_limit = self.max_frame + self.max_frame // 254 + CRC.size + 2

    def feed(self, data: bytes) -> list[bytes]:
        return [body for body, _ in self._feed(data, check_crc=True)]

    def feed_unchecked(self, data: bytes) -> list[tuple[bytes, int]]:
        """As :meth:`feed`, the CRC not checked: (body, CRC field) of each well-formed frame."""
        return self._feed(data, check_crc=False)

    def _feed(self, data: bytes, check_crc: bool) -> list[tuple[bytes, int]]:
        assert self._buf is not None
        frames: list[tuple[bytes, int]] = []
        start = 0
        while True:
            end = data.find(b"\0", start)
            chunk = data[start:] if end < 0 else data[start:end]
            if not self._overflow:
                if len(self._buf) + len(chunk) > self._wire_limit:
                    self._overflow = True
                    self._buf.clear()
                else:
                    self._buf += chunk
            if end < 0:
                return frames
            if self._overflow:
                self.bad += 1
                self._overflow = False
            elif self._buf:
                try:
                    body, crc = split_frame(bytes(self._buf))
                    if check_crc and zlib.crc32(body) != crc:
                        raise FrameError(f"CRC mismatch on a {len(body)}-byte frame")
                    frames.append((body, crc))
                except FrameError:
                    self.bad += 1
            self._buf.clear()
            start = end + 1
