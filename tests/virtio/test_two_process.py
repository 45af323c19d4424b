"""Driver in this process, device in another, over real shared memory (a /dev/shm file, and a file mapped through
the devmem:// code path at a physical address): millions of messages, none lost, order kept, every payload
checked by the receiver."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.virtio.streaming import BUF_SIZE, NUM, POOL_DA, RING_DA, Window, expected_payloads
from virtio import DriverQueue, VringLayout

REPO = Path(__file__).resolve().parents[2]
SIZE = POOL_DA + NUM * BUF_SIZE


@pytest.mark.parametrize("window", ["shm", "devmem"])
@pytest.mark.parametrize(("count", "length"), [(2_000_000, 16), (300_000, 496)])
def test_stream_between_processes(count: int, length: int, window: str, tmp_path: Path) -> None:
    if window == "shm":
        spec = f"shm:/dev/shm/rproc-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    else:
        spec = f"devmem:{tmp_path / 'physical'}:0x10003000"  # an SoC-like physical window, not at 0
    shm = Window(spec, SIZE, create=True)
    base = shm.base
    try:
        drv = DriverQueue(shm.memory, VringLayout.legacy(base + RING_DA, NUM, 0x1000))
        drv.reset()
        drv.set_pool([base + POOL_DA + BUF_SIZE * i for i in range(NUM)])
        peer = subprocess.Popen(
            [sys.executable, "-m", "tests.virtio.stream_peer", spec, str(SIZE), str(count), str(length)],
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
        assert sorted(drv.pool) == [base + POOL_DA + BUF_SIZE * i for i in range(NUM)]  # every buffer came back
        drv.close()
    finally:
        shm.close()
        if window == "shm":
            Path(spec[4:]).unlink(missing_ok=True)
