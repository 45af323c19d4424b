"""A file in /dev/shm mapped into this process: the memory two processes share.

The minimal piece of the shm transport the virtio tests need (the full ``shm://`` transport with doorbells,
start-order handling and peer-loss detection comes with the transports issue). Files are created owner-only.
"""

from __future__ import annotations

import contextlib
import fcntl
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
        lock: bool = False,
    ) -> None:
        """``layout``: (name, device address, size) regions placed back to back in the file, instead of one
        region of ``size`` bytes at ``da``. ``lock``: hold an exclusive flock on the file while it is open, the
        sign :func:`sweep_leftovers` reads as "its owner is alive"."""
        self.path = Path(path)
        flags = os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError as exc:
            raise TransportError(f"{self.path}: {exc.strerror}") from None
        try:
            if lock:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    raise TransportError(f"{self.path} is locked: another process owns it") from None
            if create:
                os.ftruncate(fd, size)
            elif os.fstat(fd).st_size < size:
                raise TransportError(f"{self.path} is {os.fstat(fd).st_size} bytes, {size} needed")
            self._map = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
            if lock:
                self._lock_fd = os.dup(fd)  # the lock lives while this descriptor is open
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
    _lock_fd: int | None = None

    def close(self, *, unlink: bool = False) -> None:
        try:
            self.memory.release()
            self._map.close()  # BufferError while someone still holds a view: the name goes all the same
        finally:
            if self.fd is not None:
                os.close(self.fd)
                self.fd = None
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
            if unlink and not str(self.path).startswith("memfd:"):
                self.path.unlink(missing_ok=True)

    def __enter__(self) -> SharedFile:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sweep_leftovers(prefix: str, directory: str | os.PathLike[str] = "/dev/shm") -> list[Path]:
    """Remove what an earlier process killed with SIGKILL left in ``directory``: files named
    ``PREFIX<pid>-<tag>`` (the memory file, created with ``lock=True``) and ``PREFIX<pid>-<tag>.<ext>`` (its
    sockets and logs), of our uid, where no process ``pid`` runs and nobody holds the memory file's lock.
    Both tests are needed: a live owner in another pid namespace still holds its lock, and a file of a live
    process of ours is never touched, even before it took the lock. Returns the paths removed."""
    uid = os.getuid()
    groups: dict[str, list[Path]] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not entry.name.startswith(prefix):
                continue
            digits, dash, _ = entry.name[len(prefix) :].partition("-")
            if not digits.isdigit() or not dash:
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_uid == uid:
                    groups.setdefault(entry.name.split(".")[0], []).append(Path(entry.path))
    removed: list[Path] = []
    for base, paths in groups.items():
        pid = int(base[len(prefix) :].partition("-")[0])
        if _running(pid):
            continue
        main = Path(directory) / base
        try:
            fd = os.open(main, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            fd = None
        except OSError:
            continue
        try:
            if fd is not None:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except OSError:
                    continue  # its owner is alive (in another pid namespace)
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    removed.append(path)
        finally:
            if fd is not None:
                os.close(fd)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
