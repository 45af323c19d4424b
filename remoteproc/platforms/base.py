"""What remoteproc asks of a platform: a handful of hooks, the way a bare-metal runtime asks a board."""

from __future__ import annotations

import os
from typing import Protocol

from remoteproc.elf import ElfImage
from remoteproc.loader import LoadedSegment, Progress
from remoteproc.resources import Pool
from transports.doorbell import Doorbell
from transports.memory import RegionMemory


class Platform(Protocol):
    name: str
    memory: RegionMemory
    """The remote's memory as the host can reach it (device addresses)."""

    def pool(self) -> Pool:
        """Free memory for carveouts and vrings."""
        ...

    def load(self, path: str | os.PathLike[str], image: ElfImage, progress: Progress | None) -> list[LoadedSegment]:
        """Check the segments against the memory map and place them (or leave that to :meth:`prepare`)."""
        ...

    def prepare(self) -> None:
        """Get the remote ready to run, not running: after this the host writes the negotiated table."""
        ...

    def start(self, table_da: int, table_size: int) -> None:
        """Let the remote run."""
        ...

    def connect(self, timeout: float = 10.0) -> Doorbell:
        """After DRIVER_OK: the doorbell to the running remote."""
        ...

    def crashed(self) -> bool: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...
