"""Where the three parts of a split vring live (virtio 1.2 section 2.7; Linux vring_init()).

Legacy rings (the only kind remoteproc uses) are contiguous: desc at ``da``, avail right after, used at the
next ``align`` boundary. VERSION_1 rings may place each part anywhere with alignments 16 / 2 / 4.
"""

from __future__ import annotations

from dataclasses import dataclass

from virtio.errors import LocalError


def desc_size(num: int) -> int:
    return 16 * num


def avail_size(num: int) -> int:
    return 6 + 2 * num


def used_size(num: int) -> int:
    return 6 + 8 * num


@dataclass(frozen=True)
class VringLayout:
    num: int
    desc: int
    avail: int
    used: int

    def __post_init__(self) -> None:
        if self.num <= 0 or self.num & (self.num - 1) or self.num > 32768:
            raise LocalError(f"vring num {self.num} is not a power of two up to 32768", queue=-1, code="ARG")
        for name, addr, align in (("desc", self.desc, 16), ("avail", self.avail, 2), ("used", self.used, 4)):
            if addr % align:
                raise LocalError(f"vring {name} at {addr:#x} is not {align}-byte aligned", queue=-1, code="ARG")

    @classmethod
    def legacy(cls, da: int, num: int, align: int = 0x1000) -> VringLayout:
        """The contiguous layout of a remoteproc vring at ``da`` (Linux ``vring_init``)."""
        if align <= 0 or align & (align - 1):
            raise LocalError(f"vring align {align} is not a power of two", queue=-1, code="ARG")
        avail = da + desc_size(num)
        used = (avail + avail_size(num) + align - 1) & ~(align - 1)
        return cls(num=num, desc=da, avail=avail, used=used)

    @property
    def end(self) -> int:
        return max(self.desc + desc_size(self.num), self.avail + avail_size(self.num), self.used + used_size(self.num))
