"""Queue pairs over one memory, for both engines."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from transports import MappedRegion, RegionMemory
from virtio import DeviceQueue, DriverQueue, VringLayout

BACKENDS = ("c", "python")
RING_DA = 0x1000
BUF_DA = 0x8000
GUARD = 256  # canary bytes on each side of the mapped region


@dataclass
class Pair:
    memory: RegionMemory
    backing: bytearray
    layout: VringLayout
    drv: DriverQueue
    dev: DeviceQueue

    def canaries_intact(self) -> bool:
        return self.backing[:GUARD] == b"\xa5" * GUARD and self.backing[-GUARD:] == b"\xa5" * GUARD


def make_pair(backend: str, num: int = 8, *, event_idx: bool = False, size: int = 0x10000, index: int = 0) -> Pair:
    backing = bytearray(b"\xa5" * GUARD + bytes(size) + b"\xa5" * GUARD)
    memory = RegionMemory([MappedRegion("ram", 0, size, backing, offset=GUARD)])
    layout = VringLayout.legacy(RING_DA, num, 64)
    drv = DriverQueue(memory, layout, index=index, event_idx=event_idx, backend=backend)
    dev = DeviceQueue(memory, layout, index=index, event_idx=event_idx, backend=backend)
    drv.reset()
    return Pair(memory, backing, layout, drv, dev)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Iterator[str]:
    yield request.param
