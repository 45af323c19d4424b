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


class Window:
    """The memory both processes stream through: a /dev/shm file at device address 0 ("shm:PATH"), or a regular
    file standing in for /dev/mem mapped at a physical address ("devmem:PATH:ADDR", the devmem:// code path)."""

    def __init__(self, spec: str, size: int, *, create: bool) -> None:
        from transports.devmem import DevmemWindow
        from transports.shmfile import SharedFile

        kind, path, *rest = spec.split(":")
        if kind == "shm":
            self._shm = SharedFile(path, size, create=create)
            self.memory = self._shm.memory
            self.base = 0
            self._close = self._shm.close
        else:
            self.base = int(rest[0], 0)
            if create:
                with open(path, "wb") as f:
                    f.truncate(self.base + size)  # sparse: only the window is ever touched
            self._dev = DevmemWindow(self.base, size, path=path)
            self.memory = self._dev.memory
            self._close = self._dev.close

    def close(self) -> None:
        self._close()
