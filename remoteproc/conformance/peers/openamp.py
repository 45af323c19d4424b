"""OpenAMP's Linux-userspace machine as a peer, in both roles: one /dev/shm file with the resource table at offset 0,
one byte per kick on a unix socket (remoteproc/openamp.py).

- :class:`OpenAmpRemotePeer` (host role): any program that plays the remote (OpenAMP's own echo demo, or
  rproc's);
- :class:`OpenAmpHostPeer` (remote role): any program that plays the host (OpenAMP's echo pingers).

:func:`isolated` runs such a program in a mount namespace of its own, since OpenAMP's paths are fixed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from pathlib import Path

from remoteproc.conformance.common import CountingDoorbell
from remoteproc.conformance.host_role import HostContext, TableFacts
from remoteproc.conformance.peers.process import PeerProgram, ProcessLifecycle, ProcessRun
from remoteproc.conformance.remote_role import HostRun
from remoteproc.errors import RemoteprocError

OPENAMP_SHUTDOWN = (0xEF56A55A).to_bytes(4, "little")  # SHUTDOWN_MSG of OpenAMP's rpmsg-echo demos


def isolated(command: list[str], shm: str, event: str) -> tuple[list[str], str, str, Path]:
    """Run ``command`` in its own mount namespace with a private /dev/shm and a private /tmp, so that a foreign
    program's fixed paths (OpenAMP's /dev/shm/openamp.shm and /tmp/openamp.event.0) cannot meet another pair's.
    Everything else in /tmp stays visible to it (each entry is bound into the private /tmp: the program may live
    there), except a leftover at the event path. Returns the wrapped command, where this side finds ``shm`` and
    ``event``, and the directory to remove afterwards."""
    if shutil.which("unshare") is None:
        raise RemoteprocError("--isolate needs unshare(1) from util-linux")
    for path, where in ((shm, "/dev/shm/"), (event, "/tmp/")):
        if not path.startswith(where) or "/" in path[len(where) :]:
            raise RemoteprocError(f"--isolate: {path} is not directly in {where}")
    base = "/var/tmp" if os.path.isdir("/var/tmp") else None
    root = Path(tempfile.mkdtemp(prefix="rproc-isolate-", dir=base))  # outside /tmp: it must stay in sight
    for sub in ("tmp", "shm", "old"):
        (root / sub).mkdir()
    script = r"""set -e
R="$0"; SKIP="$1"; shift
mount --bind "$R/shm" /dev/shm
mount --bind /tmp "$R/old"
mount --bind "$R/tmp" /tmp
for e in "$R"/old/* "$R"/old/.[!.]*; do
    [ -e "$e" ] || [ -L "$e" ] || continue
    n=${e##*/}
    [ "$n" = "$SKIP" ] && continue
    if [ -d "$e" ] && [ ! -L "$e" ]; then mkdir "/tmp/$n"; else : > "/tmp/$n"; fi
    mount --bind "$e" "/tmp/$n" 2>/dev/null || true
done
exec "$@"
"""
    wrapped = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, str(root), event[len("/tmp/") :]]
    return (
        wrapped + command,
        str(root / "shm" / shm[len("/dev/shm/") :]),
        str(root / "tmp" / event[len("/tmp/") :]),
        root,
    )


class OpenAmpRemotePeer:
    """``command`` must create ``shm`` and listen on ``event`` (OpenAMP's remote does; rproc's too)."""

    def __init__(
        self,
        command: str,
        *,
        shm: str,
        event: str,
        shutdown_message: bytes | None = OPENAMP_SHUTDOWN,
        isolate: bool = False,
    ) -> None:
        self.command = shlex.split(command)
        self.shm, self.event = shm, event
        self.shutdown_message = shutdown_message
        self.isolate = isolate
        self.description = f"OpenAMP-profile remote: {command}" + (" (own mount namespace)" if isolate else "")

    def start(self, timeout: float) -> HostContext:
        from remoteproc.platforms.openamp import (
            CHANNEL,
            GFEATURES_OFFSET,
            OPENAMP_HOST_STATUS,
            STATUS_OFFSET,
            host_device,
        )
        from transports.openamp import OpenAmpLink

        command, shm, event, root = self.command, self.shm, self.event, None
        if self.isolate:
            command, shm, event, root = isolated(self.command, self.shm, self.event)
        Path(event).unlink(missing_ok=True)  # a previous run's socket: wait for this run's
        program = PeerProgram(command)
        lifecycle = ProcessLifecycle(program.proc, program)
        try:
            # Every wait gives up as soon as the program has ended, with its status and output.
            link = OpenAmpLink("host", shm=shm, event=event, timeout=timeout, check=program.check)
            device = host_device(link, timeout=timeout, check=program.check)
        except BaseException:
            lifecycle.kill()
            program.close()
            if root is not None:
                shutil.rmtree(root, ignore_errors=True)
            raise
        device.doorbell = CountingDoorbell(device.doorbell)
        return HostContext(
            device,
            CHANNEL,
            lifecycle,
            table=TableFacts(GFEATURES_OFFSET, STATUS_OFFSET, 1, OPENAMP_HOST_STATUS),
            timeout=timeout,
            shutdown_message=self.shutdown_message,
            closers=[link.close] + ([lambda: shutil.rmtree(root, ignore_errors=True)] if root is not None else []),
        )


class OpenAmpHostPeer:
    """A program playing the host of OpenAMP's Linux-userspace machine (OpenAMP's echo pingers): rproc writes
    the table, listens on ``event``, then starts ``command``."""

    def __init__(self, command: str, *, shm: str, event: str) -> None:
        self.command = shlex.split(command)
        self.shm, self.event = shm, event
        self.description = f"OpenAMP-profile host: {command}"

    def start(self, timeout: float) -> HostRun:
        from remoteproc.platforms.openamp import CHANNEL, GFEATURES_OFFSET, STATUS_OFFSET, remote_device
        from transports.openamp import OpenAmpLink

        link = OpenAmpLink("remote", shm=self.shm, event=self.event)
        try:
            program = PeerProgram(self.command)
        except BaseException:
            link.close()
            raise
        link.check = program.check  # every wait gives up as soon as the program has ended, with its status
        try:
            device = remote_device(link, timeout=timeout * 4, check=program.check)
        except BaseException:
            program.close()
            link.close()
            raise
        device.doorbell = CountingDoorbell(device.doorbell)

        def remove_files() -> None:
            link.close()
            Path(self.shm).unlink(missing_ok=True)
            Path(self.event).unlink(missing_ok=True)

        dfeatures = 0x14 + 12  # vdev entry at 0x14: type, id, notifyid, dfeatures
        return ProcessRun(
            self.description,
            device,
            program.proc,
            [remove_files],
            CHANNEL,
            table=(STATUS_OFFSET, GFEATURES_OFFSET, dfeatures),
            program=program,
        )
