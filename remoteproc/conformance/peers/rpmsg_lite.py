"""RPMsg-Lite as a peer, in both roles, on rproc's shm profile with RPMsg-Lite's layout (rpmsg.rpmsg_lite): kicks
are one byte, the queue number, on /dev/shm/NAME.sock (docs/conformance.md, "Peer programs").

- :class:`RpmsgLiteRemotePeer` (host role): a program playing an RPMsg-Lite remote;
- :class:`RpmsgLiteMasterPeer` (remote role): a program playing an RPMsg-Lite master.
"""

from __future__ import annotations

import os
import shlex
import uuid
from pathlib import Path

from remoteproc.conformance.common import ECHO_CHANNEL, CountingDoorbell
from remoteproc.conformance.host_role import HostContext
from remoteproc.conformance.peers.process import PeerProgram, ProcessLifecycle, ProcessRun
from remoteproc.conformance.remote_role import HostRun
from rpmsg.profiles import Profile
from rpmsg.wiring import host_on, remote_on
from transports.url import open_link


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


class RpmsgLiteMasterPeer:
    """A program playing an RPMsg-Lite master on rproc's shm profile with RPMsg-Lite's layout: it is started
    with the shm name appended, creates /dev/shm/NAME as ``rpmsg_lite_master_init`` lays it out, listens on
    /dev/shm/NAME.sock (kicks: one byte, the queue number), kicks vring 0, and talks to the channel
    ``rpmsg-echo`` rproc announces (docs/conformance.md, "Peer programs"). rproc's remote uses the profile with
    the master's quirks allowed and maps the whole file."""

    def __init__(self, command: str, profile: object = None) -> None:
        from rpmsg.rpmsg_lite import PROFILE

        self.command = shlex.split(command)
        self.profile = profile if isinstance(profile, Profile) else PROFILE
        self.description = f"RPMsg-Lite master: {command}"

    def start(self, timeout: float) -> HostRun:
        name = f"rproc-rlm-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        program = PeerProgram([*self.command, name])
        try:
            link = open_link(f"shm://{name}", role="remote", timeout=timeout * 4)  # the whole file mapped
            device = remote_on(link, self.profile)
        except BaseException:
            program.close()
            for leftover in (Path("/dev/shm") / name, Path("/dev/shm") / f"{name}.sock"):
                leftover.unlink(missing_ok=True)
            raise
        device.doorbell = CountingDoorbell(device.doorbell)

        def close() -> None:
            link.close()
            for leftover in (Path("/dev/shm") / name, Path("/dev/shm") / f"{name}.sock"):
                leftover.unlink(missing_ok=True)  # a master that did not end by itself (killed) leaves them

        return ProcessRun(self.description, device, program.proc, [close], ECHO_CHANNEL, program=program)
