"""rproc's own peers, one per role, each a program of this package in a process of its own, correct or broken on
purpose: :class:`RprocRemotePeer` starts rproc_remote.py (a remote, for the host role), :class:`RprocHostPeer`
rproc_host.py (a host, for the remote role). Each break mode violates one rule, so that the scenario checking
that rule can be shown to fail."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from remoteproc import children
from remoteproc.conformance.common import ECHO_CHANNEL, CountingDoorbell
from remoteproc.conformance.host_role import HostContext
from remoteproc.conformance.peers.process import ProcessLifecycle, ProcessRun
from remoteproc.conformance.remote_role import HostRun
from remoteproc.errors import RemoteprocError
from rpmsg.profiles import Profile
from rpmsg.wiring import host_on, remote_on
from transports.url import open_link

BREAKS: dict[str, str] = {
    "no-kick": "never notifies the host, neither for messages it sends nor for buffers it returns",
    "kick-always": "kicks for every message it sends even while the host asked not to be kicked",
    "wrong-used-id": "returns the host's receive buffers under a descriptor id that does not exist",
    "oversize-len": "writes a header length larger than the buffer",
    "short-used-len": "reports a used length shorter than the message it wrote",
    "no-ns": "never announces its channel",
    "check-reserved": "drops messages whose reserved header field is not 0",
    "drop-low-addr": "drops messages from source addresses below 1024",
    "no-max-size": "drops messages of the largest size",
    "reorder": "echoes every second message before the one it got first",
    "stop-after-1000": "stops echoing after 1000 messages",
    "ignore-host-close": "goes on running when the host has gone",
    "die-on-host-ns": "exits when the host announces a channel",
    "death-unseen": "leaves a child holding its end of the link, so its death is not visible",
    "announce-once": "announces its channel on its first start only, never after a restart",
}

HOST_BREAKS: dict[str, str] = {
    "no-rx-buffers": "posts no receive buffers at start",
    "no-repost": "keeps every received buffer instead of posting it again",
    "oversize-len": "sends a message whose header length is larger than its buffer",
    "kick-always": "kicks for every message it sends even while the remote asked not to be kicked",
    "wrong-dst": "sends to an address nobody announced instead of the remote's channel",
    "exit-1": "ends with status 1",
    "oversize-after-wrap": "sends a header length beyond its buffer once its indices have wrapped",
}


def profile_args(p: Profile) -> list[str]:
    """The command-line options that give a program of this package the profile ``p`` (none for the default)."""
    if p == Profile():
        return []
    if not p.num == p.rx_count == p.tx_count:
        raise RemoteprocError(f"rproc's peers: rings of {p.num} entries need {p.num} buffers each way")
    return ["--num", str(p.num), "--rx-size", str(p.rx_size), "--tx-size", str(p.tx_size)]


def add_profile_options(ap: argparse.ArgumentParser) -> None:
    ap.add_argument("--num", type=int, default=Profile.num, help="the rings' size, and the buffers each way")
    ap.add_argument("--rx-size", type=int, default=Profile.rx_size, help="the host's receive buffers (bytes)")
    ap.add_argument("--tx-size", type=int, default=Profile.tx_size, help="the host's send buffers (bytes)")


def profile_of(args: argparse.Namespace) -> Profile:
    n = args.num
    return Profile(num=n, rx_count=n, tx_count=n, rx_size=args.rx_size, tx_size=args.tx_size)


class RprocRemotePeer:
    """rproc's remote in another process over the shm profile (``profile``: its rings and buffer sizes;
    optionally broken on purpose)."""

    def __init__(
        self, break_mode: str = "", profile: Profile | None = None, *, memfd: bool = False, eventfd: bool = True
    ) -> None:
        if break_mode and break_mode not in BREAKS:
            raise RemoteprocError(f"unknown break mode {break_mode!r} (known: {', '.join(sorted(BREAKS))})")
        self.break_mode = break_mode
        self.profile = profile or Profile()
        self.memfd, self.eventfd = memfd, eventfd  # the shm link's memory and doorbell kind (shm:// parameters)
        self.name = f"rproc-conformance-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.description = "rproc remote over shm" + (f", broken: {BREAKS[break_mode]}" if break_mode else "")

    def start(self, timeout: float) -> HostContext:
        args = [sys.executable, "-m", "remoteproc.conformance.peers.rproc_remote", self.name, "--timeout", str(timeout)]
        if self.break_mode:
            args += ["--break", self.break_mode, "--state", str(Path(tempfile.gettempdir()) / f"{self.name}.state")]
        args += profile_args(self.profile)
        # The remote waits for the host's socket, so it may start first.
        proc = children.start(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lifecycle = ProcessLifecycle(proc)
        try:
            doorbell = "eventfd" if self.eventfd else "socket"
            size = self.profile.base + self.profile.size
            url = f"shm://{self.name}?size={size}&doorbell={doorbell}&memfd={int(self.memfd)}"
            link = open_link(url, role="host")
            device = host_on(link, self.profile, timeout=timeout)
        except BaseException:
            lifecycle.kill()
            raise
        device.doorbell = CountingDoorbell(device.doorbell)
        return HostContext(device, ECHO_CHANNEL, lifecycle, timeout=timeout, closers=[link.close])


class RprocHostPeer:
    """rproc's host in another process over the shm profile (``profile``: its rings and buffer sizes; optionally
    broken on purpose)."""

    def __init__(self, break_mode: str = "", profile: Profile | None = None) -> None:
        if break_mode and break_mode not in HOST_BREAKS:
            raise RemoteprocError(f"unknown host break mode {break_mode!r} (known: {', '.join(sorted(HOST_BREAKS))})")
        self.break_mode = break_mode
        self.profile = profile or Profile()
        self.description = "rproc host over shm" + (f", broken: {HOST_BREAKS[break_mode]}" if break_mode else "")

    def start(self, timeout: float) -> HostRun:
        name = f"rproc-conformance-h-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        args = [sys.executable, "-m", "remoteproc.conformance.peers.rproc_host", name, "--timeout", str(timeout)]
        if self.break_mode:
            args += ["--break", self.break_mode]
        args += profile_args(self.profile)
        proc = children.start(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            link = open_link(f"shm://{name}", role="remote", timeout=timeout * 4)
            device = remote_on(link, self.profile)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        device.doorbell = CountingDoorbell(device.doorbell)
        return ProcessRun(self.description, device, proc, [link.close], ECHO_CHANNEL)
