"""Memory maps of the remote processors rproc knows: where each device address range lives, and which part
the host may allocate carveouts and vrings from."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BoardRegion:
    name: str
    da: int
    size: int
    pool: bool = False  # the host allocates carveouts and vrings here

    @property
    def end(self) -> int:
        return self.da + self.size


@dataclass(frozen=True)
class Board:
    name: str
    regions: tuple[BoardRegion, ...]

    @property
    def size(self) -> int:
        return sum(r.size for r in self.regions)


# QEMU's mps2-an505 (Cortex-M33), as firmware/boards/mps2-an505/link.ld uses it: code where the secure vector
# table is read, data/stack, and the 16 MiB of RAM that is shared with the host.
MPS2_AN505 = Board(
    "mps2-an505",
    (
        BoardRegion("ssram-0", 0x10000000, 4 << 20),
        BoardRegion("ssram-1", 0x38000000, 2 << 20),
        BoardRegion("mps.ram", 0x80000000, 16 << 20, pool=True),
    ),
)

BOARDS = {b.name: b for b in (MPS2_AN505,)}
