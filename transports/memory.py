"""The memory window every layer above sees: device addresses in, bytes out, nothing outside the mapped regions.

Descriptors carry device addresses (``desc.addr``: what OpenAMP and Linux put there, never host pointers). A
:class:`RegionMemory` translates them through a region table — each region a device-address range backed by a
writable buffer (a ``bytearray``, an ``mmap`` of a shared file, ``/dev/mem``) — and refuses any access that is not
entirely inside one region, naming the address and the regions that exist.
"""

from __future__ import annotations

import mmap
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from transports.errors import AddressError

Buffer = bytearray | memoryview | mmap.mmap


@dataclass(frozen=True)
class MappedRegion:
    """Device addresses ``da .. da + size`` live in ``buffer[offset : offset + size]``."""

    name: str
    da: int
    size: int
    buffer: Buffer
    offset: int = 0

    @property
    def end(self) -> int:
        return self.da + self.size

    def __repr__(self) -> str:
        return f"{self.name}@{self.da:#x}..{self.end:#x}"


@runtime_checkable
class Memory(Protocol):
    """Read, write and view memory by device address."""

    @property
    def regions(self) -> Sequence[MappedRegion]: ...

    def view(self, da: int, size: int) -> memoryview:
        """A writable view of ``size`` bytes at ``da``; raises :class:`AddressError` outside every region."""
        ...

    def read(self, da: int, size: int) -> bytes: ...

    def write(self, da: int, data: bytes | bytearray | memoryview) -> None: ...


class RegionMemory:
    """A :class:`Memory` over a table of non-overlapping regions."""

    def __init__(self, regions: Iterable[MappedRegion]) -> None:
        self._regions = tuple(sorted(regions, key=lambda r: r.da))
        for r in self._regions:
            if r.size < 0 or r.offset < 0 or r.offset + r.size > len(r.buffer):
                raise AddressError(
                    f"region {r.name}: {r.size:#x} bytes at buffer offset {r.offset:#x} do not fit "
                    f"its {len(r.buffer):#x}-byte buffer"
                )
        for a, b in zip(self._regions, self._regions[1:], strict=False):
            if a.end > b.da:
                raise AddressError(f"regions {a!r} and {b!r} overlap")
        self._views = [memoryview(r.buffer).cast("B")[r.offset : r.offset + r.size] for r in self._regions]

    @property
    def regions(self) -> Sequence[MappedRegion]:
        return self._regions

    def locate(self, da: int, size: int) -> tuple[int, int]:
        """(region index, offset in that region) of ``da``, or :class:`AddressError`."""
        if size < 0:
            raise AddressError(f"negative size {size} at {da:#x}")
        for i, r in enumerate(self._regions):
            if r.da <= da and da + size <= r.end:
                return i, da - r.da
        known = ", ".join(repr(r) for r in self._regions) or "none"
        raise AddressError(
            f"{size:#x} bytes at device address {da:#x} are not inside one mapped region (regions: {known})",
            address=da,
            size=size,
        )

    def view(self, da: int, size: int) -> memoryview:
        i, off = self.locate(da, size)
        return self._views[i][off : off + size]

    def read(self, da: int, size: int) -> bytes:
        return bytes(self.view(da, size))

    def write(self, da: int, data: bytes | bytearray | memoryview) -> None:
        self.view(da, len(data))[:] = data

    def release(self) -> None:
        """Drop the views so the buffers (an mmap) can be closed."""
        for v in self._views:
            v.release()
        self._views = []


def bytearray_memory(size: int, *, da: int = 0, name: str = "ram") -> RegionMemory:
    """One zeroed region of ``size`` bytes at ``da``: the test memory."""
    return RegionMemory([MappedRegion(name, da, size, bytearray(size))])
