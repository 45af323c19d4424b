"""Placing firmware segments in the remote's memory, as Linux's ``rproc_elf_load_segments`` does.

Every PT_LOAD with a non-zero memsz goes to its physical address (``p_paddr``: the device address) through the
platform's memory window; ``memsz - filesz`` bytes are zeroed. Before anything is written, the segments are
checked (:func:`segment_problems`: something to load, filesz within memsz, no wrap past the address space, no
overlap) and each to lie inside one region, so a bad firmware changes nothing. Bytes
are streamed from the file in chunks straight into device memory: a large image is never held in memory twice.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Protocol

from remoteproc.elf import ElfImage, Segment, open_elf
from remoteproc.errors import FirmwareError
from transports.memory import RegionMemory

Progress = Callable[[int, int], None]
"""``progress(done, total)`` in bytes, called as the load advances."""

CHUNK = 1 << 20


@dataclass(frozen=True)
class LoadedSegment:
    index: int
    da: int
    filesz: int
    memsz: int


class RegionLike(Protocol):
    """Anything with a name and a device-address range: a mapped region, or a board region the host cannot
    reach (QEMU loads those itself)."""

    @property
    def name(self) -> str: ...

    @property
    def da(self) -> int: ...

    @property
    def end(self) -> int: ...


def _regions_text(regions: Sequence[RegionLike]) -> str:
    return ", ".join(f"{r.name} {r.da:#x}..{r.end:#x}" for r in regions) or "none"


def segment_problems(image: ElfImage) -> list[str]:
    """What is wrong with ``image``'s loadable segments whatever memory they go to; empty when nothing is.

    The one rule: the loader refuses an image with any of these (:func:`check_segments`), and ``rproc info``
    and ``rproc rsc check`` show each as an error (:func:`remoteproc.firmware.firmware_info`).

    - no PT_LOAD with a memsz: nothing to load (Linux's ``rproc_elf_sanity_check`` refuses ``e_phnum == 0``);
    - filesz above memsz (Linux's ``rproc_elf_load_segments`` refuses it: "bad phdr filesz");
    - a segment that ends past the top of the ELF class's address space (4 GiB for ELF32): its device
      addresses would wrap around to 0;
    - two segments that overlap: one would overwrite the other.
    """
    loads = [s for s in image.segments if s.loadable and s.memsz]
    if not loads:
        return ["no loadable segment (no PT_LOAD with a memsz): nothing to load (Linux refuses it too)"]
    problems = []
    top = 1 << image.elf_class
    for seg in loads:
        if seg.filesz > seg.memsz:
            problems.append(f"segment {seg.index}: filesz {seg.filesz:#x} is larger than memsz {seg.memsz:#x}")
        if seg.paddr + seg.memsz > top:
            problems.append(
                f"segment {seg.index} ({seg.paddr:#x} + memsz {seg.memsz:#x}) ends at {seg.paddr + seg.memsz:#x}, "
                f"past the top of the {image.elf_class}-bit address space ({top:#x}): its addresses would wrap to 0"
            )
    for a, b in pairwise(sorted(loads, key=lambda s: s.paddr)):
        if a.paddr + a.memsz > b.paddr:
            problems.append(
                f"segments {a.index} ({a.paddr:#x}..{a.paddr + a.memsz:#x}) and {b.index} "
                f"({b.paddr:#x}..{b.paddr + b.memsz:#x}) overlap"
            )
    return problems


def check_segments(image: ElfImage, regions: Sequence[RegionLike]) -> list[Segment]:
    """The segments to load, after refusing what :func:`segment_problems` finds and any segment outside
    every region."""
    problems = segment_problems(image)
    if problems:
        raise FirmwareError("; ".join(problems), path=image.path)
    loads = [s for s in image.segments if s.loadable and s.memsz]
    for seg in loads:
        if not any(r.da <= seg.paddr and seg.paddr + seg.memsz <= r.end for r in regions):
            raise FirmwareError(
                f"segment {seg.index} ({seg.paddr:#x}..{seg.paddr + seg.memsz:#x}, {seg.memsz:#x} bytes) is not "
                f"inside any memory region of the remote (regions: {_regions_text(regions)})",
                path=image.path,
            )
    return loads


def load_segments(
    path: str | os.PathLike[str],
    image: ElfImage,
    memory: RegionMemory,
    *,
    progress: Progress | None = None,
) -> list[LoadedSegment]:
    """Copy every loadable segment of ``path`` into ``memory``; returns what was placed where."""
    loads = check_segments(image, memory.regions)
    total = sum(s.memsz for s in loads)
    done = 0
    placed = []
    with open_elf(path) as stream:
        for seg in loads:
            stream.seek(seg.offset)
            left = seg.filesz
            da = seg.paddr
            while left:
                chunk = stream.read(min(CHUNK, left))
                if not chunk:
                    raise FirmwareError(
                        f"segment {seg.index}: the file ends {left:#x} bytes early",
                        path=image.path,
                        offset=seg.offset + seg.filesz - left,
                    )
                memory.write(da, chunk)
                da += len(chunk)
                left -= len(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total)
            zeros = seg.memsz - seg.filesz
            while zeros:
                n = min(CHUNK, zeros)
                memory.view(da, n)[:] = bytes(n)
                da += n
                zeros -= n
                done += n
                if progress:
                    progress(done, total)
            placed.append(LoadedSegment(seg.index, seg.paddr, seg.filesz, seg.memsz))
    return placed
