"""Shared memory between two processes: a /dev/shm file plus a doorbell socket.

rproc's shm profile: the host creates ``/dev/shm/NAME`` (owner-only), lays out its rings, then listens on the
AF_UNIX stream socket ``/dev/shm/NAME.sock``; the remote maps the file and connects. The connection is the
remote's "DRIVER_OK": the host only listens once its rings are ready. Either side may start first: the remote
waits for the socket to appear, up to its timeout. Kicks are one byte (the queue number) each way; end of file
on the socket is the peer's death. By default (``doorbell=eventfd`` in a URL) the kicks are eventfds the host
passes over that socket with SCM_RIGHTS; the socket stays the liveness signal.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import time
from pathlib import Path

from transports.doorbell import DatagramSocketDoorbell, Doorbell, EventfdSocketDoorbell, SocketDoorbell
from transports.errors import TransportError
from transports.link import Link, ParsedUrl
from transports.shmfile import SharedFile

log = logging.getLogger(__name__)

HELLO = b"rproc-shm1"
FLAG_MEMFD = 1
FLAG_EVENTFD = 2
FLAG_DGRAM = 4


def peer_credentials(sock: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end of a connected AF_UNIX socket (SO_PEERCRED)."""
    pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
    return pid, uid


REFUSAL_LOG_INTERVAL = 10.0
"""Seconds between two warnings about refused connections (the first is logged at once, then one line per
interval with the count): a process of another uid connecting in a loop made 77,000 warnings in 3 s."""


def listen_owner_only(path: Path) -> socket.socket:
    """A listening AF_UNIX stream socket at ``path`` (a leftover file there replaced) whose file is owner-only,
    like the memory files: bound under umask 077, so no other user can connect even where the directory lets
    them."""
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    path.unlink(missing_ok=True)
    old = os.umask(0o077)
    try:
        server.bind(str(path))
    finally:
        os.umask(old)
    server.listen(1)
    return server


def _foreign_owner(path: Path) -> int | None:
    """The uid owning ``path`` if it exists and is not ours."""
    try:
        uid = path.lstat().st_uid
    except FileNotFoundError:
        return None
    return uid if uid != os.getuid() else None


def _clear_stale(path: Path, sock_path: Path) -> None:
    """A host that died (kill -9) leaves its file and socket behind. If nobody answers on the socket, they are
    stale and go; if a host does answer, the name is in use. Files of another uid are never touched (only
    their owner or root could remove them, and root should not remove another user's session)."""
    for p in (path, sock_path):
        if (uid := _foreign_owner(p)) is not None:
            raise TransportError(
                f"{p} belongs to uid {uid}, not to us (uid {os.getuid()}): another user's host, or its "
                f"leftover; choose another name, or have that user (or root) remove it"
            )
    if not path.exists() and not sock_path.exists():
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(str(sock_path))
    except (FileNotFoundError, ConnectionRefusedError):
        log.info("removing the leftovers of a host that is gone: %s, %s", path, sock_path)
        try:
            path.unlink(missing_ok=True)
            sock_path.unlink(missing_ok=True)
        except OSError as exc:
            raise TransportError(f"cannot remove the leftover {exc.filename}: {exc.strerror}") from None
        return
    except OSError as exc:
        raise TransportError(f"cannot probe {sock_path} for a running host: {exc.strerror}") from None
    finally:
        probe.close()
    raise TransportError(f"{path} is in use: a host is listening on {sock_path}")


class _Refusals:
    """Connections refused for their uid, logged without flooding: the first at once, then at most one line
    per :data:`REFUSAL_LOG_INTERVAL` with how many since, and the rest when the wait ends."""

    def __init__(self, sock_path: Path) -> None:
        self.sock_path = sock_path
        self.unreported = 0
        self.last: tuple[int, int] = (0, 0)
        self.logged_at: float | None = None

    def refused(self, pid: int, uid: int) -> None:
        now = time.monotonic()
        self.last = (pid, uid)
        if self.logged_at is None:
            self.logged_at = now
            log.warning(
                "refused a connection to %s from pid %d of uid %d (allow it with allow_uid=%d)",
                self.sock_path, pid, uid, uid,
            )  # fmt: skip
            return
        self.unreported += 1
        if now - self.logged_at >= REFUSAL_LOG_INTERVAL:
            self.flush()
            self.logged_at = now

    def flush(self) -> None:
        if self.unreported:
            pid, uid = self.last
            log.warning(
                "refused %d more connections to %s from other uids (the last from pid %d of uid %d)",
                self.unreported, self.sock_path, pid, uid,
            )  # fmt: skip
            self.unreported = 0


def _paths(name: str) -> tuple[Path, Path]:
    if "/" in name or not name:
        raise TransportError(f"shm name {name!r} must be a plain file name (it lives in /dev/shm)")
    base = Path("/dev/shm") / name
    return base, base.with_name(name + ".sock")


DOORBELLS = ("eventfd", "socket", "dgram")
"""The kinds of kick a host offers (``doorbell=`` in a URL, :meth:`ShmLink.create_host`); eventfd the default."""


class ShmLink(Link):
    """``shm://NAME?size=N[&allow_uid=U][&memfd=1][&doorbell=eventfd|socket|dgram]``: one side's view,
    :attr:`memory` (the mapped file) at once. The host (:meth:`create_host`) lays out its rings, then
    :meth:`connect` listens and waits for the remote; the remote (:meth:`connect_remote`) is connected when it
    returns. A peer of another uid is refused (SO_PEERCRED) unless its uid is in ``allow_uids``: the file modes
    keep others out already, this holds even where a directory or umask is more permissive than it should be."""

    def __init__(
        self,
        shm: SharedFile,
        role: str,
        sock_path: Path,
        *,
        doorbell: Doorbell | None = None,
        eventfd: bool = False,
        dgram: bool = False,
        allow_uids: frozenset[int] = frozenset(),
    ) -> None:
        super().__init__(shm.memory, role)
        self.shm = shm
        self.sock_path = sock_path
        self.eventfd = eventfd
        self.dgram = dgram
        self.allow_uids = allow_uids
        self._doorbell = doorbell
        self._closed = False

    @classmethod
    def create_host(
        cls,
        name: str,
        size: int,
        *,
        memfd: bool = False,
        doorbell: str = "eventfd",
        allow_uids: frozenset[int] = frozenset(),
    ) -> ShmLink:
        """Create the shared memory (a /dev/shm file, or with ``memfd`` an anonymous one handed to the remote over
        the socket); call :meth:`connect` once the rings are laid out. ``doorbell`` (one of :data:`DOORBELLS`):
        "eventfd", kicks as eventfd writes, the descriptors passed with SCM_RIGHTS (the rpmsg C paths write and
        read them without Python); "dgram", datagrams on a socket pair passed the same way; "socket", bytes on
        the stream socket itself."""
        if doorbell not in DOORBELLS:
            raise TransportError(f"doorbell={doorbell!r}: socket (bytes on the socket), eventfd or dgram")
        path, sock_path = _paths(name)
        _clear_stale(path, sock_path)
        shm = SharedFile.memfd(name, size) if memfd else SharedFile(path, size, create=True)
        return cls(
            shm, "host", sock_path, eventfd=doorbell == "eventfd", dgram=doorbell == "dgram", allow_uids=allow_uids
        )

    @classmethod
    def connect_remote(
        cls, name: str, size: int | None, timeout: float = 10.0, *, allow_uids: frozenset[int] = frozenset()
    ) -> ShmLink:
        """Wait for the host's socket, map its file (``size`` None: all of it), connect."""
        path, sock_path = _paths(name)
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                try:
                    sock.connect(str(sock_path))
                except PermissionError:
                    sock.close()
                    owner = _foreign_owner(sock_path)
                    raise TransportError(
                        f"{sock_path}: permission denied"
                        + (f" (it belongs to uid {owner}, not to us: another user's host)" if owner is not None else "")
                    ) from None
                _, uid = peer_credentials(sock)
                if uid != os.getuid() and uid not in allow_uids:
                    sock.close()
                    raise TransportError(
                        f"{sock_path} belongs to a process of uid {uid}, not ours: refused "
                        f"(allow it with allow_uid={uid})"
                    )
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise TransportError(f"no host listening on {sock_path} after {timeout} s") from None
                time.sleep(0.01)
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            hello, fds, _, _ = socket.recv_fds(sock, len(HELLO) + 1, 3)
        except TimeoutError:
            sock.close()
            raise TransportError(f"the host at {sock_path} did not send its greeting") from None
        if not hello.startswith(HELLO) or len(hello) != len(HELLO) + 1:
            for fd in fds:
                os.close(fd)
            sock.close()
            raise TransportError(f"{sock_path}: not an rproc shm host (greeting {hello!r})")
        flags = hello[-1]
        fds = list(fds)
        try:
            if flags & FLAG_MEMFD:
                shm = SharedFile.from_fd(fds.pop(0), name)
            else:
                if size is None:
                    size = path.stat().st_size
                shm = SharedFile(path, size, create=False)
        except BaseException:  # e.g. the file is smaller than asked: nothing of this connection stays open
            for fd in fds:
                os.close(fd)
            sock.close()
            raise
        sock.settimeout(None)
        bell: Doorbell
        if flags & FLAG_EVENTFD:
            host_to_remote, remote_to_host = fds
            bell = EventfdSocketDoorbell(host_to_remote, remote_to_host, sock)
        elif flags & FLAG_DGRAM:
            bell = DatagramSocketDoorbell(socket.socket(fileno=fds[0]), sock)
        else:
            bell = SocketDoorbell(sock)
        return cls(shm, "remote", sock_path, doorbell=bell, allow_uids=allow_uids)

    def _connect(self, timeout: float) -> Doorbell:
        """The host: listen (the rings are ready now) and wait for the remote to connect."""
        if self.role != "host" or self._closed:
            raise TransportError(f"{self.sock_path}: {'closed' if self._closed else 'the remote connects as it opens'}")
        server = listen_owner_only(self.sock_path)
        deadline = time.monotonic() + timeout
        refusals = _Refusals(self.sock_path)
        try:
            while True:
                left = deadline - time.monotonic()
                try:
                    if left <= 0:  # settimeout(0) would make accept non-blocking: BlockingIOError, not a timeout
                        raise TimeoutError
                    server.settimeout(left)
                    conn, _ = server.accept()
                except TimeoutError:
                    raise TransportError(f"no remote connected to {self.sock_path} within {timeout} s") from None
                pid, uid = peer_credentials(conn)
                if uid == os.getuid() or uid in self.allow_uids:
                    break
                conn.close()
                refusals.refused(pid, uid)
        finally:
            refusals.flush()
            server.close()
        # The greeting says what comes with it: the memfd, then the two eventfds, as SCM_RIGHTS.
        flags = (FLAG_MEMFD if self.shm.fd is not None else 0) | (FLAG_EVENTFD if self.eventfd else 0)
        flags |= FLAG_DGRAM if self.dgram and not self.eventfd else 0
        fds = [self.shm.fd] if self.shm.fd is not None else []
        if flags & FLAG_DGRAM:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            socket.send_fds(conn, [HELLO + bytes((flags,))], [*fds, theirs.fileno()])
            theirs.close()
            return DatagramSocketDoorbell(ours, conn)
        if self.eventfd:
            to_remote = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            to_host = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            fds += [to_remote, to_host]
            socket.send_fds(conn, [HELLO + bytes((flags,))], fds)
            return EventfdSocketDoorbell(to_host, to_remote, conn)
        socket.send_fds(conn, [HELLO + bytes((flags,))], fds)
        return SocketDoorbell(conn)

    def close(self) -> None:
        """Either side: the doorbell and the mapping go. The host removes its file and socket name too (connected
        or not: a host that never saw its remote leaves nothing behind)."""
        if self._closed:
            return
        self._closed = True
        super().close()
        self.shm.close(unlink=self.role == "host")
        if self.role == "host":
            self.sock_path.unlink(missing_ok=True)


def open_url(url: ParsedUrl, role: str, *, timeout: float = 10.0, **options: object) -> ShmLink:
    allow = frozenset(int(u) for u in url.params.get("allow_uid", "").split(",") if u.strip())
    if role == "remote":
        return ShmLink.connect_remote(url.target, url.int_param("size", 0) or None, timeout, allow_uids=allow)
    return ShmLink.create_host(
        url.target,
        url.int_param("size"),
        memfd=url.params.get("memfd") == "1",
        doorbell=url.params.get("doorbell", "eventfd"),
        allow_uids=allow,
    )
