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


def encode_frame(body: bytes) -> bytes:
    """One frame on the wire, delimiter included."""
    return cobs_encode(body + CRC.pack(zlib.crc32(body))) + b"\0"


def decode_frame(wire: bytes) -> bytes:
    """The body of one frame (without its delimiter), or FrameError."""
    raw = cobs_decode(wire)
    if len(raw) < CRC.size:
        raise FrameError(f"frame of {len(raw)} bytes is shorter than its CRC")
    body, crc = raw[: -CRC.size], CRC.unpack_from(raw, len(raw) - CRC.size)[0]
    if zlib.crc32(body) != crc:
        raise FrameError(f"CRC mismatch on a {len(body)}-byte frame")
    return body


@dataclass
class FrameDecoder:
    """Feed it bytes as they come; it returns the bodies of the good frames and counts the bad ones.

    ``max_frame`` bounds the bytes kept while waiting for a delimiter: a stream of garbage without zeros cannot
    grow memory, it is dropped as one bad frame."""

    max_frame: int = 1024
    bad: int = 0
    _buf: bytearray | None = None
    _overflow: bool = False

    def __post_init__(self) -> None:
        self._buf = bytearray()
        self._wire_limit = self.max_frame + self.max_frame // 254 + CRC.size + 2

    def feed(self, data: bytes) -> list[bytes]:
        assert self._buf is not None
        frames: list[bytes] = []
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
                    frames.append(decode_frame(bytes(self._buf)))
                except FrameError:
                    self.bad += 1
            self._buf.clear()
            start = end + 1
