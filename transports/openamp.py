"""``openamp://``: the layout and kick mechanism of OpenAMP's Linux-userspace machine ("generic" in
openamp-system-reference examples/legacy_apps/system/linux/machine), so rproc can take either demo process's place.

- One shared file, /dev/shm/openamp.shm, 0x80000 bytes; every address in the resource table and in descriptors
  is a byte offset into it (device address 0 = file offset 0).
- Kicks: one byte per kick on the AF_UNIX stream socket /tmp/openamp.event.0. The remote (virtio device, the demo
  started with argument 0) is the server; the host (virtio driver, argument 1) connects.

Both paths can be changed (``?shm=...&event=...``) so that tests and several pairs do not collide; OpenAMP's own
demos hard-code them (one pair per machine, or one per mount namespace). What goes where inside the file (table at
0, vrings at 0x4000 and 0x8000, buffers from 0x10000) is :mod:`remoteproc.openamp`'s business.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from transports.doorbell import Doorbell, SocketDoorbell
from transports.errors import TransportError
from transports.link import Link
from transports.shmfile import SharedFile

SHM_PATH = "/dev/shm/openamp.shm"
EVENT_PATH = "/tmp/openamp.event.0"
SHM_SIZE = 0x80000


class OpenAmpLink(Link):
    """One side: ``role`` "remote" creates the file and listens; "host" opens the file and connects."""

    def __init__(self, role: str, *, shm: str = SHM_PATH, event: str = EVENT_PATH, timeout: float = 10.0) -> None:
        self.shm_path = Path(shm)
        self.event_path = Path(event)
        self._server: socket.socket | None = None
        bell: SocketDoorbell | None = None
        if role == "remote":
            self.shm_path.unlink(missing_ok=True)
            self._file = SharedFile(self.shm_path, SHM_SIZE, create=True)
            self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.event_path.unlink(missing_ok=True)
            old = os.umask(0o077)
            try:
                self._server.bind(str(self.event_path))
            finally:
                os.umask(old)
            self._server.listen(1)
        elif role == "host":
            deadline = time.monotonic() + timeout
            while True:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(str(self.event_path))
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    sock.close()
                    if time.monotonic() > deadline:
                        raise TransportError(f"no OpenAMP remote listening on {self.event_path}") from None
                    time.sleep(0.01)
            self._file = SharedFile(self.shm_path, SHM_SIZE, create=False)
            bell = SocketDoorbell(sock)
        else:
            raise TransportError(f"role {role!r} is neither host nor remote")
        super().__init__(self._file.memory, role)
        self._doorbell = bell

    def _connect(self, timeout: float) -> Doorbell:
        """Remote: wait for the host to connect. Host: already connected."""
        if self._server is None:
            raise TransportError("the host side connects when it opens")
        self._server.settimeout(timeout)
        try:
            conn, _ = self._server.accept()
        except TimeoutError:
            raise TransportError(f"no OpenAMP host connected to {self.event_path} within {timeout} s") from None
        return SocketDoorbell(conn)

    def close(self) -> None:
        if self._doorbell is not None:
            self._doorbell.close()
        if self._server is not None:
            self._server.close()
            self.event_path.unlink(missing_ok=True)
        self._file.close(unlink=self.role == "remote")
