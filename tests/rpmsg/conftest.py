"""The shared rpmsg suite runs over two transports: loop:// (remote services in a thread of this process) and
shm (remote services in another process, real shared memory and a socket doorbell)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rpmsg import RpmsgDevice, loopback_pair
from rpmsg.shm import host_over_shm
from tests.rpmsg.services import start_services

REPO = Path(__file__).resolve().parents[2]


@dataclass
class HostSide:
    device: RpmsgDevice
    transport: str
    kill: Callable[[], None]
    """Make the remote disappear without a goodbye: SIGKILL its process, or drop its doorbell (loop)."""


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture(params=["loop", "shm"])
def host(request: pytest.FixtureRequest) -> Iterator[HostSide]:
    fds_before = _open_fds()
    if request.param == "loop":
        dev, remote = loopback_pair()
        start_services(remote)
        yield HostSide(dev, "loop", remote.doorbell.close)
        dev.close()
        remote.close()
    else:
        name = f"rproc-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.rpmsg.remote_main", name],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            dev, link = host_over_shm(name, timeout=20)
        except BaseException:
            proc.kill()
            raise
        side = HostSide(dev, "shm", lambda: proc.send_signal(signal.SIGKILL))
        yield side
        dev.close()
        link.close()
        try:
            _out, err = proc.communicate(timeout=10)  # also closes the pipes
        finally:
            proc.kill()
        assert "Traceback" not in err, err
        assert not Path("/dev/shm", name).exists()
    assert _open_fds() <= fds_before, "the test leaked file descriptors"
