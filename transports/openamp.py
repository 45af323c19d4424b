"""``openamp://``: the layout and kick mechanism of OpenAMP's Linux-userspace machine ("generic" in
openamp-system-reference examples/legacy_apps/system/linux/machine), so rproc can take either demo process's place.

- One shared file, /dev/shm/openamp.shm, 0x80000 bytes; every address in the resource table and in descriptors
  is a byte offset into it (device address 0 = file offset 0).
- Kicks: one byte per kick on the AF_UNIX stream socket /tmp/openamp.event.0. The remote (virtio device, the demo
  started with argument 0) is the server; the host (virtio driver, argument 1) connects.

Both paths can be changed (``?shm=...&event=...``) so that tests and several pairs do not collide; OpenAMP's own
demos hard-code them (one pair per machine, or one per mount namespace). What goes where inside the file (table at
0, vrings at 0x4000 and 0x8000, buffers from 0x10000) is :mod:`remoteproc.platforms.openamp`'s business: its
``host_device(link)`` and ``remote_device(link)`` are the way in (``rpmsg.wiring.host_on``/``remote_on`` refuse
this link: their Profile layout is not OpenAMP's).

Start order. Either side may start first, as with OpenAMP's own pair. OpenAMP's host maps the file before it
connects (creating it, 0600, if it is not there: libmetal's ``metal_open``) and reads the table as soon as
``connect()`` returns. So the remote

- reuses a file that is there when it is *ours to reuse*: a regular file (not a symlink), owned by our uid,
  without any group or other permission bits, of at most 0x80000 bytes (grown to it under an flock, as
  libmetal's ``metal_map`` grows it). Only our uid can have made such a file in /dev/shm or /tmp (sticky
  directories), and nobody else can have it open. Replacing it instead would leave the host with a mapping of
  the old file: "Failed to set resource table", exit 255, every time. A file of another uid is refused (never
  removed); one of ours that fails the rule (a symlink, group/other bits, too large) is replaced; a new file is
  created 0600 with O_EXCL, as before.
- writes its table, and only then listens (:meth:`OpenAmpLink.listen`, called by ``connect``).
"""

from __future__ import annotations

import fcntl
import os
import socket
import stat
import time
from collections.abc import Callable
from pathlib import Path

from transports.doorbell import Doorbell, SocketDoorbell
from transports.errors import TransportError
from transports.link import Link, ParsedUrl
from transports.shm import listen_owner_only
from transports.shmfile import SharedFile

SHM_PATH = "/dev/shm/openamp.shm"
EVENT_PATH = "/tmp/openamp.event.0"
SHM_SIZE = 0x80000
LAYOUT = (
    "openamp:// carries OpenAMP's layout (its resource table at offset 0, vrings at 0x4000 and 0x8000, buffers "
    "from 0x10000): use remoteproc.platforms.openamp.host_device(link) or remote_device(link)"
)


def reusable_problem(path: Path, size: int = SHM_SIZE) -> str | None:
    """Why the existing ``path`` is not ours to reuse as the shared file (see the module's docstring), or None
    if it is."""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_uid != os.getuid():
        return f"owned by uid {info.st_uid}, not by us (uid {os.getuid()})"
    if info.st_mode & 0o077:
        return f"mode {stat.S_IMODE(info.st_mode):04o} lets others in"
    if info.st_size > size:
        return f"{info.st_size} bytes, more than {size}"
    return None


def _open_shared(path: Path) -> SharedFile:
    """The remote's shared file: an existing one reused when the rule allows, else a new one (0600, O_EXCL)."""
    try:
        problem = reusable_problem(path)
    except FileNotFoundError:
        return SharedFile(path, SHM_SIZE, create=True)
    if problem is None:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # libmetal grows the file under this lock too
            if os.fstat(fd).st_size < SHM_SIZE:
                os.ftruncate(fd, SHM_SIZE)
        finally:
            os.close(fd)
        return SharedFile(path, SHM_SIZE, create=False)
    if path.lstat().st_uid != os.getuid():
        raise TransportError(
            f"{path} is {problem}: another user's OpenAMP pair uses it; remove it as that user (or root), or "
            f"choose another path (openamp://?shm=...)"
        )
    path.unlink()  # ours, but not fit to share: replaced by a new owner-only file
    return SharedFile(path, SHM_SIZE, create=True)


class OpenAmpLink(Link):
    """One side: ``role`` "remote" opens (or reuses, see above) the file, and listens on the socket when it
    connects, after writing its table; "host" waits for the socket, connects and maps the file."""

    layout = LAYOUT
    POLL = 0.01  # seconds between two looks while waiting for the peer

    def __init__(
        self,
        role: str,
        *,
        shm: str = SHM_PATH,
        event: str = EVENT_PATH,
        timeout: float = 10.0,
        check: Callable[[], None] | None = None,
    ) -> None:
        """``check``: called while waiting for the peer (every :attr:`POLL` s); it raises to stop waiting (the
        peer's process has ended, say). It may also be set later, as :attr:`check`."""
        self.shm_path = Path(shm)
        self.event_path = Path(event)
        self.check = check
        self._server: socket.socket | None = None
        bell: SocketDoorbell | None = None
        if role == "remote":
            self._file = _open_shared(self.shm_path)
        elif role == "host":
            deadline = time.monotonic() + timeout
            while True:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    sock.connect(str(self.event_path))
                    break
                except (FileNotFoundError, ConnectionRefusedError):
                    sock.close()
                    if self.check is not None:
                        self.check()
                    if time.monotonic() > deadline:
                        raise TransportError(f"no OpenAMP remote listening on {self.event_path}") from None
                    time.sleep(self.POLL)
            self._file = SharedFile(self.shm_path, SHM_SIZE, create=False)
            bell = SocketDoorbell(sock)
        else:
            raise TransportError(f"role {role!r} is neither host nor remote")
        super().__init__(self._file.memory, role)
        self._doorbell = bell

    def listen(self) -> None:
        """Remote: bind and listen on the event socket. A host connects as soon as it can and then reads the
        table: call this once the table is written (``connect`` does, if it was not called)."""
        if self.role != "remote":
            raise TransportError("only the remote listens (the host connects when it opens)")
        if self._server is not None:
            return
        try:
            owner = self.event_path.lstat().st_uid
        except FileNotFoundError:
            owner = os.getuid()
        if owner != os.getuid():
            raise TransportError(
                f"{self.event_path} belongs to uid {owner}, not to us: another user's OpenAMP pair; remove it as "
                f"that user (or root), or choose another path (openamp://?event=...)"
            )
        self._server = listen_owner_only(self.event_path)

    def _connect(self, timeout: float) -> Doorbell:
        """Remote: listen (if not yet) and wait for the host to connect. Host: already connected."""
        if self.role != "remote":
            raise TransportError("the host side connects when it opens")
        self.listen()
        assert self._server is not None
        deadline = time.monotonic() + timeout
        while True:
            if self.check is not None:
                self.check()
            left = deadline - time.monotonic()
            if left <= 0:
                raise TransportError(f"no OpenAMP host connected to {self.event_path} within {timeout} s")
            self._server.settimeout(min(left, self.POLL) if self.check is not None else left)
            try:
                conn, _ = self._server.accept()
                return SocketDoorbell(conn)
            except TimeoutError:
                continue

    def close(self) -> None:
        if self._doorbell is not None:
            self._doorbell.close()
        if self._server is not None:
            self._server.close()
            self.event_path.unlink(missing_ok=True)
        self._file.close(unlink=self.role == "remote")


def open_url(url: ParsedUrl, role: str, *, timeout: float = 10.0, **options: object) -> OpenAmpLink:
    """``openamp://[?shm=PATH&event=PATH]``."""
    return OpenAmpLink(
        role, shm=url.params.get("shm", SHM_PATH), event=url.params.get("event", EVENT_PATH), timeout=timeout
    )
