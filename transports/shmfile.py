"""A file in /dev/shm mapped into this process: the memory two processes share.

The minimal piece of the shm transport the virtio tests need (the full ``shm://`` transport with doorbells,
start-order handling and peer-loss detection comes with the transports issue). Files are created owner-only.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

from transports.errors import TransportError
from transports.memory import MappedRegion, RegionMemory


class SharedFile:
    """``size`` bytes of ``path`` mapped shared, exposed as one region at device address ``da``."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        size: int,
        *,
        create: bool,
        da: int = 0,
        layout: list[tuple[str, int, int]] | None = None,
    ) -> None:
        """``layout``: (name, device address, size) regions placed back to back in the file, instead of one
        region of ``size`` bytes at ``da``."""
        self.path = Path(path)
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise TransportError(f"{self.path}: {exc.strerror}") from None
        try:
            if create:
                os.ftruncate(fd, size)
            elif os.fstat(fd).st_size < size:
                raise TransportError(f"{self.path} is {os.fstat(fd).st_size} bytes, {size} needed")
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        if layout is None:
            self.memory = RegionMemory([MappedRegion(self.path.name, da, size, self._map)])
        else:
            regions = []
            offset = 0
            for name, rda, rsize in layout:
                regions.append(MappedRegion(name, rda, rsize, self._map, offset))
                offset += rsize
            self.memory = RegionMemory(regions)

    @classmethod
    def from_fd(cls, fd: int, name: str) -> SharedFile:
        """Map all of an open descriptor (a memfd received over a socket); takes ownership of ``fd``."""
        self = cls.__new__(cls)
        self.path = Path(f"memfd:{name}")
        size = os.fstat(fd).st_size
        try:
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        except OSError as exc:
            os.close(fd)
            raise TransportError(f"{self.path}: {exc.strerror}") from None
        self.fd = fd
        self.memory = RegionMemory([MappedRegion(name, 0, size, self._map)])
        return self

    @classmethod
    def memfd(cls, name: str, size: int) -> SharedFile:
        """Anonymous shared memory (memfd_create): no name in /dev/shm that anyone could open; share it by
        passing :attr:`fd` over a unix socket."""
        fd = os.memfd_create(f"rproc-{name}", os.MFD_CLOEXEC)
        os.ftruncate(fd, size)
        return cls.from_fd(fd, name)

    fd: int | None = None

    def close(self, *, unlink: bool = False) -> None:
        try:
            self.memory.release()
            self._map.close()  # BufferError while someone still holds a view: the name goes all the same
        finally:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            if unlink and not str(self.path).startswith("memfd:"):
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> SharedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
