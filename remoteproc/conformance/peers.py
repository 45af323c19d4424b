"""Peers the catalogue runs against, each started fresh on demand, with rproc as the host:

- :class:`RprocRemotePeer`: rproc's own remote in another process over the shm profile (optionally broken on
  purpose, see :mod:`remoteproc.conformance.remote_peer`);
- :class:`OpenAmpRemotePeer`: any program that plays the remote of OpenAMP's Linux-userspace machine (one
  /dev/shm file, the table at offset 0, one byte per kick on a unix socket): OpenAMP's own echo demo, or rproc's;
- :class:`FirmwarePeer`: the services firmware on the emulated Cortex-M33 (remoteproc's qemu-an505 platform).
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Protocol

from remoteproc import children
from remoteproc.conformance.breaks import BREAKS, ECHO_CHANNEL
from remoteproc.conformance.program import PeerProgram
from remoteproc.conformance.scenarios import CountingDoorbell, HostContext, NotApplicable, TableFacts
from remoteproc.errors import RemoteprocError
from rpmsg.profiles import Profile
from rpmsg.wiring import host_on
from transports.url import open_link

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


class Peer(Protocol):
    description: str

    def start(self, timeout: float) -> HostContext: ...


class ProcessLifecycle:
    """A peer process: killed on demand, reaped at the end (and its kept output freed)."""

    def __init__(self, proc: subprocess.Popen[bytes], program: PeerProgram | None = None) -> None:
        self.proc = proc
        self.program = program

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def exit_code(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def reap(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.wait(2)
            except subprocess.TimeoutExpired:
                self.kill()
        if self.program is not None:
            self.program.close()


class RprocRemotePeer:
    def __init__(self, break_mode: str = "") -> None:
        if break_mode and break_mode not in BREAKS:
            raise RemoteprocError(f"unknown break mode {break_mode!r} (known: {', '.join(sorted(BREAKS))})")
        self.break_mode = break_mode
        self.name = f"rproc-conformance-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.description = "rproc remote over shm" + (f", broken: {BREAKS[break_mode]}" if break_mode else "")

    def start(self, timeout: float) -> HostContext:
        args = [sys.executable, "-m", "remoteproc.conformance.remote_peer", self.name, "--timeout", str(timeout)]
        if self.break_mode:
            args += ["--break", self.break_mode, "--state", str(Path(tempfile.gettempdir()) / f"{self.name}.state")]
        # The remote waits for the host's socket, so it may start first.
        proc = children.start(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lifecycle = ProcessLifecycle(proc)
        try:
            link = open_link(f"shm://{self.name}?size={Profile().size}", role="host")
            device = host_on(link, Profile(), timeout=timeout)
        except BaseException:
            lifecycle.kill()
            raise
        device.doorbell = CountingDoorbell(device.doorbell)
        return HostContext(device, ECHO_CHANNEL, lifecycle, timeout=timeout, closers=[link.close])


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


class _NoLifecycle:
    def __init__(self, what: str) -> None:
        self.what = what

    def kill(self) -> None:
        raise NotApplicable(f"{self.what} cannot be killed from here")

    def exit_code(self, timeout: float) -> int | None:
        raise NotApplicable(f"{self.what} does not end on its own")

    def reap(self) -> None:
        pass


class FirmwarePeer:
    """The services firmware (``rpmsg-echo`` channel) loaded and started on an emulated board."""

    def __init__(self, firmware: Path, board: str = "mps2-an505") -> None:
        self.firmware = firmware
        self.board = board
        self.description = f"firmware {firmware.name} on QEMU {board}"

    def start(self, timeout: float) -> HostContext:
        from remoteproc.boards import BOARDS
        from remoteproc.platforms.qemu import QemuPlatform
        from remoteproc.rproc import RemoteProc

        if self.board not in BOARDS:
            raise RemoteprocError(f"unknown board {self.board!r} (known: {', '.join(sorted(BOARDS))})")
        rp = RemoteProc(QemuPlatform(BOARDS[self.board]))
        try:
            rp.load(self.firmware)
            rp.start()
        except BaseException:
            rp.close()
            raise
        device = rp.rpmsg
        assert device is not None
        device.doorbell = CountingDoorbell(device.doorbell)
        vdev = rp.vdevs[0]
        # Linux's order ends with ACKNOWLEDGE | DRIVER | DRIVER_OK = 0x07 and the features both sides have.
        table = TableFacts(vdev.gfeatures_da, vdev.status_da, vdev.dfeatures & 1, 0x07)
        return HostContext(
            device, "rpmsg-echo", _NoLifecycle(self.description), table=table, timeout=timeout, closers=[rp.close]
        )


class RpmsgLiteRemotePeer:
    """A program playing an RPMsg-Lite remote on rproc's shm profile with RPMsg-Lite's layout (rpmsg.rpmsg_lite):
    rproc creates /dev/shm/NAME, lays out the rings, listens on /dev/shm/NAME.sock (kicks: one byte, the queue
    number), then starts ``command`` with NAME appended; the program connects, waits for the kick of vring 0,
    announces ``rpmsg-echo`` and echoes every message to its source (docs/conformance.md, "Peer programs")."""

    def __init__(self, command: str, profile: Profile | None = None) -> None:
        from rpmsg.rpmsg_lite import PROFILE

        self.command = shlex.split(command)
        self.profile = profile or PROFILE
        self.description = f"RPMsg-Lite remote: {command}"

    def start(self, timeout: float) -> HostContext:
        name = f"rproc-rl-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        program = PeerProgram([*self.command, name])
        lifecycle = ProcessLifecycle(program.proc, program)
        try:
            link = open_link(f"shm://{name}?size={self.profile.base + self.profile.size}&doorbell=socket", role="host")
            device = host_on(link, self.profile, timeout=timeout)
        except BaseException:
            lifecycle.kill()
            program.close()
            raise
        device.doorbell = CountingDoorbell(device.doorbell)
        return HostContext(device, ECHO_CHANNEL, lifecycle, timeout=timeout, closers=[link.close])
