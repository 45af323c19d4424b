"""rproc's own sessions, seen from outside: ``rproc status`` lists them.

Each ``rproc`` command that starts a remote (load, ping, send, listen, trace, attach, demo, bench) answers on a
unix socket ``<runtime dir>/<pid>.sock`` while it runs: a client connects and reads one JSON document (the
command line, the pid, and for each remote it started: platform, firmware, state and the rpmsg device's
``state()``), then the socket closes. The runtime directory is ``$RPROC_RUNTIME_DIR``, else
``$XDG_RUNTIME_DIR/rproc``, else ``/tmp/rproc-<uid>``: created 0700, used only if it is a directory this user
owns that nobody else can write. :func:`serving` turns it on (the CLI does, library users never get a socket
unasked); :func:`note` is how :class:`remoteproc.rproc.RemoteProc` says it started a remote; :func:`list_sessions`
is the client. A socket nobody answers on (a session killed with SIGKILL) is removed when listed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import stat
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from remoteproc.rproc import RemoteProc

log = logging.getLogger(__name__)

_server: _Server | None = None


def runtime_dir() -> Path:
    explicit = os.environ.get("RPROC_RUNTIME_DIR")
    if explicit:
        return Path(explicit)
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "rproc"
    return Path(f"/tmp/rproc-{os.getuid()}")


def _usable_dir(path: Path, create: bool) -> bool:
    """A directory this user owns that no one else can write (the sockets in it are trusted)."""
    if create:
        with contextlib.suppress(FileExistsError, OSError):
            path.mkdir(mode=0o700, parents=True)
    try:
        st = path.lstat()
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == os.getuid() and not st.st_mode & 0o022


class _Server:
    def __init__(self, command: Sequence[str], path: Path) -> None:
        self.command = list(command)
        self.path = path
        self.started = time.time()
        self.remotes: weakref.WeakSet[RemoteProc] = weakref.WeakSet()
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()  # a socket left by an earlier process with our pid
        self.sock.bind(str(path))
        os.chmod(path, 0o600)
        self.sock.listen(4)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="rproc-status", daemon=True)
        self.thread.start()

    def snapshot(self) -> dict[str, Any]:
        remotes = []
        for rp in list(self.remotes):
            device = rp.rpmsg
            entry: dict[str, Any] = {
                "platform": getattr(rp.platform, "name", type(rp.platform).__name__),
                "firmware": None if rp.firmware is None else str(rp.firmware),
                "state": rp.lifecycle.state.value,  # not rp.state: that may change the lifecycle
            }
            try:
                entry["rpmsg"] = None if device is None else device.state()
            except Exception as exc:  # a device closing meanwhile: say so, keep answering
                entry["rpmsg"] = {"error": str(exc)}
            remotes.append(entry)
        return {
            "pid": os.getpid(),
            "command": self.command,
            "started": self.started,
            "socket": str(self.path),
            "remotes": remotes,
        }

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            with conn:
                conn.settimeout(2)
                with contextlib.suppress(OSError):
                    conn.sendall(json.dumps(self.snapshot()).encode())

    def close(self) -> None:
        self.stop.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(timeout=2)
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()


@contextlib.contextmanager
def serving(command: Sequence[str]) -> Iterator[Path | None]:
    """Answer status requests for the remotes this process starts, until the end (yields the socket's path, or
    None when the runtime directory is not usable: then nothing is served, and nothing fails)."""
    global _server
    directory = runtime_dir()
    if not _usable_dir(directory, create=True):
        log.info("rproc status: %s is not a private directory of this user: this session is not listed", directory)
        yield None
        return
    try:
        server = _Server(command, directory / f"{os.getpid()}.sock")
    except OSError as exc:
        log.info("rproc status: cannot listen in %s: %s", directory, exc)
        yield None
        return
    _server = server
    try:
        yield server.path
    finally:
        _server = None
        server.close()


def note(rp: RemoteProc) -> None:
    """A remote was started (or attached): list it while :func:`serving` is on."""
    if _server is not None:
        _server.remotes.add(rp)


def list_sessions(timeout: float = 2.0) -> list[dict[str, Any]]:
    """Every session's answer, by pid; sockets nobody answers on are removed."""
    directory = runtime_dir()
    if not _usable_dir(directory, create=False):
        return []
    out = []
    for path in sorted(directory.glob("*.sock")):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC) as s:
            s.settimeout(timeout)
            try:
                s.connect(str(path))
                chunks = []
                while chunk := s.recv(65536):
                    chunks.append(chunk)
            except (ConnectionRefusedError, FileNotFoundError):
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()  # its process is gone
                continue
            except OSError as exc:
                out.append({"socket": str(path), "error": f"no answer: {exc}"})
                continue
        try:
            out.append(json.loads(b"".join(chunks)))
        except ValueError:
            out.append({"socket": str(path), "error": "not a status answer"})
    return sorted(out, key=lambda s: int(s.get("pid", 0)))
