"""Driver in this process, device in another, over a real shared-memory file: millions of messages, none lost,
order kept, every payload checked by the receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.virtio.streaming import BUF_SIZE, NUM, POOL_DA, RING_DA, expected_payloads
from transports.shmfile import SharedFile
from virtio import DriverQueue, VringLayout

REPO = Path(__file__).resolve().parents[2]
SIZE = POOL_DA + NUM * BUF_SIZE


@pytest.mark.parametrize(("count", "length"), [(2_000_000, 16), (300_000, 496)])
def test_stream_between_processes(count: int, length: int) -> None:
    path = Path("/dev/shm") / f"rproc-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    shm = SharedFile(path, SIZE, create=True)
    try:
        drv = DriverQueue(shm.memory, VringLayout.legacy(RING_DA, NUM, 0x1000))
        drv.reset()
        drv.set_pool([POOL_DA + BUF_SIZE * i for i in range(NUM)])
        peer = subprocess.Popen(
            [sys.executable, "-m", "tests.virtio.stream_peer", str(path), str(SIZE), str(count), str(length)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        batch = 64
        lens = [length] * batch
        sent = 0
        deadline = time.monotonic() + 120
        while sent < count:
            drv.reclaim()
            n = min(batch, count - sent)
            k = drv.send_copy(expected_payloads(sent, n, length), lens[:n], BUF_SIZE)
            sent += k
            drv.publish()
            if k == 0:
                assert peer.poll() is None, f"peer exited early: {peer.stdout.read() if peer.stdout else ''}"
                assert time.monotonic() < deadline, f"stuck after {sent} messages"
                time.sleep(0)
        out, _ = peer.communicate(timeout=120)
        assert peer.returncode == 0, out
        assert out.strip() == f"ok {count}"
        drv.reclaim()
        assert sorted(drv.pool) == [POOL_DA + BUF_SIZE * i for i in range(NUM)]  # every buffer came back
        drv.close()
    finally:
        shm.close(unlink=True)
