"""kill -9 of the remote at random points, many times: the host reports the loss within a bounded time, frees
its mapping, socket and descriptors, and a restarted remote on the same name comes back with its channels."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from rpmsg import PeerLost, Profile
from rpmsg.links import host_on
from transports.url import open_link

REPO = Path(__file__).resolve().parents[2]
ROUNDS = int(os.environ.get("RPROC_FAULT_ROUNDS", "12"))


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_kill_the_remote_at_random_points() -> None:
    rng = random.Random(20261122)
    name = f"rproc-fault-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    profile = Profile()
    baseline = fds()
    for round_ in range(ROUNDS):
        remote = subprocess.Popen(
            [sys.executable, "-m", "tests.rpmsg.remote_main", name],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        link = open_link(f"shm://{name}?size={profile.size}", role="host")
        host = host_on(link, profile, timeout=20)
        try:
            ep = host.open("rpmsg-echo" if round_ % 2 else "rpmsg-sink", timeout=20)  # channels announced again
            ep.settimeout(30)
            kill_after = rng.uniform(0.0, 0.3)
            start = time.monotonic()
            killed_at: float | None = None
            sent = 0
            with pytest.raises(PeerLost):
                while True:
                    if remote.returncode is None and time.monotonic() - start > kill_after:
                        remote.send_signal(signal.SIGKILL)
                        remote.wait()
                        killed_at = time.monotonic()
                    ep.send(sent.to_bytes(4, "little") + bytes(60))
                    sent += 1
                    if ep.peer is not None and round_ % 2:
                        ep.recv()
            assert killed_at is not None, "the link failed before the remote was killed"
            assert time.monotonic() - killed_at < 5, "the loss took too long to notice"
        finally:
            host.close()
            link.close()
            if remote.poll() is None:
                remote.kill()
            remote.wait()
        assert not Path(f"/dev/shm/{name}").exists() and not Path(f"/dev/shm/{name}.sock").exists()
        assert fds() == baseline, f"round {round_}: descriptors leaked"
