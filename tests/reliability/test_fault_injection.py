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
from rpmsg.wiring import host_on, remote_on
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
            with pytest.raises(PeerLost) as lost:
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
            # Nothing silently dropped: what the dead remote never gave back is counted, and it can only be
            # among what was sent, and no more than the 256 send buffers.
            assert 0 <= lost.value.unconfirmed <= min(sent, 256)
        finally:
            host.close()
            link.close()
            if remote.poll() is None:
                remote.kill()
            remote.wait()
        assert not Path(f"/dev/shm/{name}").exists() and not Path(f"/dev/shm/{name}.sock").exists()
        assert fds() == baseline, f"round {round_}: descriptors leaked"


def test_kill_the_host() -> None:
    """The other way round: the host dies; the remote reports the loss, frees what it holds, and a new host on
    the same name (its predecessor's file and socket left behind) serves a new remote."""
    name = f"rproc-hostkill-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    p = Profile(num=16, rx_count=16, tx_count=16)
    host_script = (
        "import time; from rpmsg import Profile; from rpmsg.wiring import host_on; from transports.url import "
        f"open_link; link = open_link('shm://{name}?size={p.size}', role='host'); "
        "dev = host_on(link, Profile(num=16, rx_count=16, tx_count=16), timeout=20); "
        "ep = dev.open('echo', timeout=20); ep.settimeout(20)\n"
        "while True:\n    ep.send(b'ping'); ep.recv()"
    )
    baseline = fds()
    for _ in range(3):
        host = subprocess.Popen([sys.executable, "-c", host_script], cwd=REPO)
        link = open_link(f"shm://{name}", role="remote", timeout=20)
        remote = remote_on(link, p)
        echo = remote.endpoint("echo")
        echo.settimeout(20)
        for _ in range(50):
            data, src = echo.recvfrom()
            echo.sendto(data, src)
        host.send_signal(signal.SIGKILL)
        host.wait()
        start = time.monotonic()
        with pytest.raises(PeerLost):
            while True:
                data, src = echo.recvfrom()
                echo.sendto(data, src)
        assert time.monotonic() - start < 5
        remote.close()
        link.close()
        assert fds() == baseline
    Path(f"/dev/shm/{name}").unlink(missing_ok=True)
    Path(f"/dev/shm/{name}.sock").unlink(missing_ok=True)
