"""A remote (benchmarks/rpmsg_remote.py) in its own process on the second CPU, and the host's device and endpoint
here, kept open so that several of them can take turns: the benchmarks that measure two things in turn
(wait_modes.py, python_remote_stream.py) stop the remotes not in their round (SIGSTOP), so a busy-polling remote
never takes the CPU from another, and both things meet the same flips of this shared machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from rpmsg.endpoint import Endpoint
from rpmsg.profiles import Profile
from rpmsg.wiring import host_on
from transports.url import open_link

REPO = Path(__file__).resolve().parent.parent


class RemoteSession:
    """rpmsg_remote.py NAME ``remote_wait`` ``service`` ``kind``, on ``cpus[1]`` when there is one; the host's
    device in wait mode ``wait`` and its endpoint of "bench-``service``" here. A remote in wait mode ``read``
    (the C remote asleep in read()) cannot see the host go: it is terminated at the end."""

    def __init__(self, tag: str, wait: str, remote_wait: str, service: str, kind: str, cpus: list[int]) -> None:
        name = f"rproc-bench-{tag}-{os.getpid()}-{wait}-{kind}"
        self.remote_wait = remote_wait
        script = str(REPO / "benchmarks" / "rpmsg_remote.py")
        self.proc = subprocess.Popen([sys.executable, script, name, remote_wait, service, kind])
        try:
            if len(cpus) > 1:
                os.sched_setaffinity(self.proc.pid, {cpus[1]})
            self.link = open_link(f"shm://{name}?size={Profile().size}&doorbell=eventfd", role="host")
            self.device = host_on(self.link, wait=wait, timeout=20)  # type: ignore[arg-type]
            self.ep: Endpoint = self.device.open(f"bench-{service}", timeout=10)
        except BaseException:
            self.proc.kill()
            self.proc.wait(timeout=10)
            raise

    def stop(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def run(self, others: list[RemoteSession]) -> None:
        """This session's turn: every other one's remote stopped, this one's running."""
        for other in others:
            if other is not self:
                other.stop()
        os.kill(self.proc.pid, signal.SIGCONT)

    def close(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)  # it must run to see the host go
        try:
            self.ep.close()
            self.device.close()
            self.link.close()
        finally:
            if self.remote_wait == "read":
                self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
