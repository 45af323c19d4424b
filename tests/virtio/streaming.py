"""What the two-process stream test sends: each message is its sequence number repeated (u64, little-endian)."""

from __future__ import annotations

import struct

NUM = 256
RING_DA = 0
POOL_DA = 0x10000
BUF_SIZE = 512


def expected_payloads(first: int, count: int, length: int) -> bytes:
    """Messages first .. first+count-1, each ``length`` bytes: its sequence number repeated (truncated)."""
    reps = (length + 7) // 8
    return b"".join((struct.pack("<Q", seq) * reps)[:length] for seq in range(first, first + count))
