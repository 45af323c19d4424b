"""Benchmark: one-way stream of 16 B and 496 B messages between two processes through the Python virtqueue API
(batches of 64, one C call per batch per side), next to a plain C program doing the same on the same layout with
the same engine, measured in the same run. Prints msgs/s for both and the ratio.

    .venv/bin/python benchmarks/virtio_stream.py [--count N] [--batch 64] [--repeat 3] [--json FILE]

Shared machines are noisy: each figure is the best of --repeat runs, and only the ratio is meaningful.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import subprocess
import sys
import time
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import Results  # noqa: E402
from transports.shmfile import SharedFile  # noqa: E402
from virtio import BACKEND, DeviceQueue, DriverQueue, VringLayout  # noqa: E402

NUM = 256
RING_DA = 0
POOL_DA = 0x10000
BUF_SIZE = 512
SIZE = POOL_DA + NUM * BUF_SIZE


def build_baseline() -> Path:
    out = REPO / "build" / "bench" / "vring_stream"
    out.parent.mkdir(parents=True, exist_ok=True)
    src = [REPO / "benchmarks" / "c" / "vring_stream.c", REPO / "virtio" / "csrc" / "vring.c"]
    if not out.exists() or any(s.stat().st_mtime > out.stat().st_mtime for s in src):
        subprocess.run(
            ["gcc", "-O2", "-std=gnu11", f"-I{REPO / 'virtio' / 'csrc'}", "-o", str(out), *map(str, src)], check=True
        )
    return out


def c_rate(binary: Path, count: int, length: int, batch: int) -> float:
    res = subprocess.run(
        [str(binary), str(count), str(length), str(batch)], capture_output=True, text=True, check=True, timeout=300
    )
    return float(res.stdout.split()[1])


def _device(path: str, count: int, batch: int) -> None:
    shm = SharedFile(path, SIZE, create=False)
    dev = DeviceQueue(shm.memory, VringLayout.legacy(RING_DA, NUM, 0x1000))
    out = bytearray(NUM * BUF_SIZE)
    lens = array("I", [0] * NUM)
    got = 0
    while got < count:
        n = dev.recv_copy_into(out, lens, batch)
        if n:
            dev.publish()
            got += n
        else:
            os.sched_yield()
    dev.close()
    shm.close()


def python_rate(count: int, length: int, batch: int) -> float:
    path = f"/dev/shm/rproc-bench-{os.getpid()}"
    shm = SharedFile(path, SIZE, create=True)
    try:
        drv = DriverQueue(shm.memory, VringLayout.legacy(RING_DA, NUM, 0x1000))
        drv.reset()
        drv.set_pool([POOL_DA + BUF_SIZE * i for i in range(NUM)])
        peer = mp.get_context("fork").Process(target=_device, args=(path, count, batch))
        peer.start()
        data = bytes(length * batch)
        lens = array("I", [length] * batch)
        sent = 0
        start = time.perf_counter()
        while sent < count:
            drv.reclaim()
            n = min(batch, count - sent)
            k = drv.send_copy(data, lens if n == batch else lens[:n], BUF_SIZE)
            drv.publish()
            if not k:
                os.sched_yield()
            sent += k
        while len(drv.pool) < NUM:
            if not drv.reclaim():
                os.sched_yield()
        elapsed = time.perf_counter() - start
        peer.join(60)
        if peer.exitcode != 0:
            raise RuntimeError(f"device process failed: {peer.exitcode}")
        drv.close()
        return count / elapsed
    finally:
        shm.close(unlink=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--count", type=int, default=2_000_000)
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    res = Results("virtio_stream", {"count": args.count, "batch": args.batch, "repeat": args.repeat, "engine": BACKEND})
    if BACKEND != "c":
        print(f"warning: the Python API is running the {BACKEND} engine, not C", file=sys.stderr)
    binary = build_baseline()
    print(f"virtio stream, one way, 2 processes, batch {args.batch}, {args.count} messages, engine {BACKEND}")
    print(f"{'size':>6} {'C msgs/s':>14} {'Python msgs/s':>14} {'ratio':>7} {'Python MB/s':>12}")
    for length in (16, 496):
        c = max(c_rate(binary, args.count, length, args.batch) for _ in range(args.repeat))
        py = max(python_rate(args.count, length, args.batch) for _ in range(args.repeat))
        base = (f"{length} B: C program", c)
        res.add(*base, "msgs/s", better="higher")
        res.add(f"{length} B: Python virtqueue API", py, "msgs/s", better="higher", baseline=base)
        print(f"{length:>5}B {c:>14,.0f} {py:>14,.0f} {py / c:>7.2f} {py * length / 1e6:>12,.1f}")
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
