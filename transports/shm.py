"""Shared memory between two processes: a /dev/shm file plus a doorbell socket.

rproc's shm profile: the host creates ``/dev/shm/NAME`` (owner-only), lays out its rings, then listens on the
AF_UNIX stream socket ``/dev/shm/NAME.sock``; the remote maps the file and connects. The connection is the
remote's "DRIVER_OK": the host only listens once its rings are ready. Either side may start first: the remote
waits for the socket to appear, up to its timeout. Kicks are one byte (the queue number) each way; end of file
on the socket is the peer's death.

The full ``shm://`` transport of the transports issue (URLs, eventfds over SCM_RIGHTS, the OpenAMP profile) builds
on this.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from transports.doorbell import SocketDoorbell
from transports.errors import TransportError
from transports.memory import RegionMemory
from transports.shmfile import SharedFile


def _paths(name: str) -> tuple[Path, Path]:
    if "/" in name or not name:
        raise TransportError(f"shm name {name!r} must be a plain file name (it lives in /dev/shm)")
    base = Path("/dev/shm") / name
    return base, base.with_name(name + ".sock")


class ShmLink:
    """One side's view: :attr:`memory` (the mapped file) and :attr:`doorbell`."""

    def __init__(self, shm: SharedFile, doorbell: SocketDoorbell, cleanup: list[Path]) -> None:
        self.shm = shm
        self.doorbell = doorbell
        self._cleanup = cleanup

    @property
    def memory(self) -> RegionMemory:
        return self.shm.memory

    @classmethod
    def create_host(cls, name: str, size: int) -> HostListener:
        """Create the shared file; call :meth:`HostListener.accept` once the rings are laid out."""
        path, sock_path = _paths(name)
        return HostListener(SharedFile(path, size, create=True), sock_path)

    @classmethod
    def connect_remote(cls, name: str, size: int | None, timeout: float = 10.0) -> ShmLink:
        """Wait for the host's socket, map its file (``size`` None: all of it), connect."""
        path, sock_path = _paths(name)
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(sock_path))
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise TransportError(f"no host listening on {sock_path} after {timeout} s") from None
                time.sleep(0.01)
        if size is None:
            size = path.stat().st_size
        shm = SharedFile(path, size, create=False)
        return cls(shm, SocketDoorbell(sock), [])

    def close(self) -> None:
        self.doorbell.close()
        self.shm.close()
        for p in self._cleanup:
            p.unlink(missing_ok=True)


class HostListener:
    def __init__(self, shm: SharedFile, sock_path: Path) -> None:
        self.shm = shm
        self.sock_path = sock_path

    @property
    def memory(self) -> RegionMemory:
        return self.shm.memory

    def accept(self, timeout: float = 10.0) -> ShmLink:
        """Listen (the rings are ready now) and wait for the remote to connect."""
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock_path.unlink(missing_ok=True)
        old = os.umask(0o077)  # the socket file is owner-only, like the memory file
        try:
            server.bind(str(self.sock_path))
        finally:
            os.umask(old)
        server.listen(1)
        server.settimeout(timeout)
        try:
            conn, _ = server.accept()
        except TimeoutError:
            raise TransportError(f"no remote connected to {self.sock_path} within {timeout} s") from None
        finally:
            server.close()
        return ShmLink(self.shm, SocketDoorbell(conn), [self.shm.path, self.sock_path])

    def abandon(self) -> None:
        self.shm.close(unlink=True)
        self.sock_path.unlink(missing_ok=True)
