"""Shared pieces of the soak test: layout, payloads (u64 sequence number, u64 its complement) and checks."""

from __future__ import annotations

import os
from array import array

from virtio import VringLayout

NUM = 256
BATCH = 64
LAYOUT0 = VringLayout.legacy(0x0, NUM, 0x1000)  # device -> driver (like rpmsg's vring 0)
LAYOUT1 = VringLayout.legacy(0x4000, NUM, 0x1000)  # driver -> device
POOL_TX = 0x10000  # driver send buffers
POOL_RX = 0x20000  # driver receive buffers (posted writable)
BUF = 64
SIZE = 0x30000
MASK = 0xFFFF_FFFF_FFFF_FFFF


def payload(first: int, n: int) -> bytes:
    words = array("Q", bytes(16 * n))
    words[0::2] = array("Q", range(first, first + n))
    words[1::2] = array("Q", (MASK ^ s for s in range(first, first + n)))
    return words.tobytes()


def seqs_ok(out: bytearray, n: int, first: int) -> bool:
    words = memoryview(out)[: 16 * n].cast("Q")
    try:
        return words[0::2].tolist() == list(range(first, first + n)) and all(
            a ^ b == MASK for a, b in zip(words[0::2], words[1::2], strict=True)
        )
    finally:
        words.release()


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") // 1024
