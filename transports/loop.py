"""``loop://``: both sides in one process, one bytearray as shared memory, an eventfd doorbell each way."""

from __future__ import annotations

from dataclasses import dataclass

from transports.doorbell import EventfdDoorbell
from transports.memory import MappedRegion, RegionMemory


@dataclass
class LoopSide:
    memory: RegionMemory
    doorbell: EventfdDoorbell

    def close(self) -> None:
        self.doorbell.close()


def loop_pair(size: int, *, da: int = 0) -> tuple[LoopSide, LoopSide]:
    """Two sides sharing ``size`` bytes at device address ``da``."""
    backing = bytearray(size)
    a_bell, b_bell = EventfdDoorbell.pair()
    a = LoopSide(RegionMemory([MappedRegion("loop", da, size, backing)]), a_bell)
    b = LoopSide(RegionMemory([MappedRegion("loop", da, size, backing)]), b_bell)
    return a, b
