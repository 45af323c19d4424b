"""Which peer ``rproc conformance --peer NAME`` runs against, and so which role rproc plays (docs/conformance.md).

Against a remote (:data:`REMOTES`) rproc is the host and runs the host-role catalogue (:func:`remote_peer`, then
:func:`remoteproc.conformance.run`); against a host (:data:`HOSTS`) rproc is the remote and judges the host in one
session (:func:`host_peer`, then :func:`remoteproc.conformance.run_remote_role`). ``linux-remoteproc`` is a
catalogue of its own (remoteproc/conformance/linux/remoteproc_peer.py). Options that do not go together for a
peer are a :class:`SelectionError` saying which (the command line's usage error).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from remoteproc.conformance import (
    OPENAMP_SHUTDOWN,
    FirmwarePeer,
    HostPeer,
    OpenAmpHostPeer,
    OpenAmpRemotePeer,
    Peer,
    RpmsgLiteMasterPeer,
    RpmsgLiteRemotePeer,
    RprocHostPeer,
    RprocRemotePeer,
)
from remoteproc.errors import RemoteprocError
from transports.openamp import EVENT_PATH, SHM_PATH

REMOTES = ("rproc-remote", "openamp-remote", "firmware", "rpmsg-lite-remote")
HOSTS = ("rproc-host", "openamp-host", "linux", "rpmsg-lite-master")
LINUX_REMOTEPROC = "linux-remoteproc"
BREAKABLE = ("rproc-remote", "rproc-host")  # and linux-remoteproc, whose break modes are its own
COMMANDED = ("openamp-remote", "openamp-host", "rpmsg-lite-remote", "rpmsg-lite-master")


class SelectionError(RemoteprocError, ValueError):
    """Options that do not go together for the chosen peer."""


@dataclass(frozen=True)
class PeerOptions:
    """What the peers take: ``break_mode`` (rproc's own peers misbehaving on purpose), ``command`` (the program
    playing an OpenAMP or RPMsg-Lite side), the OpenAMP profile's ``shm`` file and ``event`` socket (default:
    OpenAMP's fixed paths, :mod:`transports.openamp`), whether the
    OpenAMP remote is sent the echo demo's SHUTDOWN_MSG at the end (``shutdown_message``) and runs in its own mount
    namespace (``isolate``), the firmware peer's ``firmware`` (default: the example firmware), the host-role
    scenarios chosen (``only``), and ``progress``: what the linux peer's kernel build and boot are doing."""

    break_mode: str = ""
    command: str | None = None
    shm: str | None = None
    event: str | None = None
    shutdown_message: bool = True
    isolate: bool = False
    firmware: Path | None = None
    only: Sequence[str] | None = None
    progress: Callable[[str], None] | None = None


def _check(name: str, options: PeerOptions) -> None:
    if name not in REMOTES + HOSTS:
        raise SelectionError(f"no peer {name!r} (known: {', '.join(REMOTES + HOSTS)})")
    if options.break_mode and name not in BREAKABLE:
        raise SelectionError("--break applies to --peer rproc-remote, rproc-host and linux-remoteproc only")
    if name in COMMANDED and not options.command:
        raise SelectionError(f"--peer {name} needs --command (the program that plays the other side)")


def host_peer(name: str, options: PeerOptions) -> HostPeer:
    """The host ``name`` (one of :data:`HOSTS`) that rproc, as remote, is judged against."""
    _check(name, options)
    if name not in HOSTS:
        raise SelectionError(f"--peer {name} is a remote, not a host")
    if options.only:
        raise SelectionError("--only selects host-role scenarios; the remote role judges all of them in one session")
    if name == "rproc-host":
        return RprocHostPeer(options.break_mode)
    if name == "openamp-host":
        return OpenAmpHostPeer(options.command or "", shm=options.shm or SHM_PATH, event=options.event or EVENT_PATH)
    if name == "rpmsg-lite-master":
        return RpmsgLiteMasterPeer(options.command or "")
    from remoteproc.conformance.linux.peer import LinuxHostPeer  # the UML machinery, only when asked for

    return LinuxHostPeer(progress=options.progress)


def remote_peer(name: str, options: PeerOptions) -> Peer:
    """The remote ``name`` (one of :data:`REMOTES`) that rproc, as host, runs the catalogue against."""
    _check(name, options)
    if name not in REMOTES:
        raise SelectionError(f"--peer {name} is a host, not a remote")
    if name == "rproc-remote":
        return RprocRemotePeer(options.break_mode)
    if name == "rpmsg-lite-remote":
        return RpmsgLiteRemotePeer(options.command or "")
    if name == "openamp-remote":
        shutdown = OPENAMP_SHUTDOWN if options.shutdown_message else None
        return OpenAmpRemotePeer(
            options.command or "",
            shm=options.shm or SHM_PATH,
            event=options.event or EVENT_PATH,
            shutdown_message=shutdown,
            isolate=options.isolate,
        )
    from remoteproc.demo import DEFAULT_FIRMWARE

    firmware = options.firmware or DEFAULT_FIRMWARE
    if not firmware.is_file():
        what = "--firmware" if options.firmware else "the example firmware (not in this install)"
        raise SelectionError(f"--peer firmware: {what} {firmware} is not a file: give --firmware FW.elf")
    return FirmwarePeer(firmware)
