"""The C remote's "spin" wait (benchmarks/rpmsg_remote.py, block 3 of benchmarks/c/rpmsg_echo_remote.c), which
benchmarks/wait_modes.py and rpmsg_pingpong.py pair with the host's default wait mode: it busy-polls with the host's
kicks off for a while after each message, then asks for kicks, looks once more and sleeps. A message the host
publishes between the remote's last look and its ask must still wake it: traffic with pauses longer than the spin
budget makes the remote go to sleep and come back hundreds of times, and every message is answered."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rpmsg import Profile, host_on
from transports.url import open_link

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("host_wait", ["spin", "block"])
def test_spinning_c_remote_loses_no_wake_up(host_wait: str) -> None:
    name = f"rproc-test-spin-{os.getpid()}-{host_wait}"
    script = str(REPO / "benchmarks" / "rpmsg_remote.py")
    proc = subprocess.Popen([sys.executable, script, name, "spin", "echo", "c"], cwd=REPO)
    try:
        link = open_link(f"shm://{name}?size={Profile().size}&doorbell=eventfd", role="host")
        device = host_on(link, wait=host_wait, timeout=20)  # type: ignore[arg-type]
        try:
            ep = device.open("bench-echo", timeout=20)
            ep.settimeout(10)
            for i in range(300):
                burst = [i.to_bytes(4, "little") + bytes([k]) * k for k in range(1 + i % 7)]
                for data in burst:
                    ep.send(data)
                for data in burst:
                    assert ep.recv() == data
                if i % 3 == 0:
                    time.sleep(0.0002 * (1 + i % 5))  # 0.2-1 ms: past the remote's 50 us spin, it sleeps
            ep.close()
        finally:
            device.close()
            link.close()
    finally:
        proc.wait(timeout=20)
    assert proc.returncode == 0
