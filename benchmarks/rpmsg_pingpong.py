"""Benchmark: rpmsg through the Python endpoint API between two processes over shared memory, next to C
baselines measured in the same run.

- Round trip of a 16-byte message (host endpoint -> remote echo -> host), busy-poll and blocking wait modes,
  against a C echo through the same vring engine (busy-poll) and a raw eventfd ping-pong (blocking floor).
- Host -> remote throughput of 496-byte messages, copying (send) and zero-copy (get_buffer/send_buffer).

    .venv/bin/python benchmarks/rpmsg_pingpong.py [--rounds 20000] [--messages 100000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rpmsg.shm import host_over_shm  # noqa: E402


def c_baseline(mode: str, rounds: int) -> float:
    out = REPO / "build" / "bench" / "pingpong"
    out.parent.mkdir(parents=True, exist_ok=True)
    src = [REPO / "benchmarks" / "c" / "pingpong.c", REPO / "virtio" / "csrc" / "vring.c"]
    if not out.exists() or any(s.stat().st_mtime > out.stat().st_mtime for s in src):
        subprocess.run(
            ["gcc", "-O2", "-std=gnu11", f"-I{REPO / 'virtio' / 'csrc'}", "-o", str(out), *map(str, src)], check=True
        )
    res = subprocess.run([str(out), mode, str(rounds)], capture_output=True, text=True, check=True, timeout=300)
    return float(res.stdout.split()[1]) / 1000.0  # microseconds


def with_remote(wait: str, service: str, body):  # type: ignore[no-untyped-def]
    name = f"rproc-bench-{os.getpid()}-{wait}"
    proc = subprocess.Popen([sys.executable, str(REPO / "benchmarks" / "rpmsg_remote.py"), name, wait, service])
    try:
        device, link = host_over_shm(name, wait=wait, timeout=20)  # type: ignore[arg-type]
        try:
            return body(device)
        finally:
            device.close()
            link.close()
    finally:
        proc.wait(timeout=10)


def round_trip(wait: str, rounds: int) -> float:
    def body(device):  # type: ignore[no-untyped-def]
        ep = device.open("bench-echo", timeout=10)
        payload = bytes(16)
        for _ in range(1000):
            ep.send(payload)
            ep.recv()
        times = []
        clock = time.perf_counter_ns
        for _ in range(rounds):
            start = clock()
            ep.send(payload)
            ep.recv()
            times.append(clock() - start)
        ep.close()
        return statistics.median(times) / 1000.0

    return float(with_remote(wait, "echo", body))


def throughput(messages: int, zero_copy: bool) -> float:
    def body(device):  # type: ignore[no-untyped-def]
        ep = device.open("bench-count", timeout=10)
        payload = bytes(496)
        start = time.perf_counter()
        if zero_copy:
            for i in range(messages):
                buf = ep.get_buffer()
                buf.view[:4] = i.to_bytes(4, "little")  # the producer writes in place; nothing is copied
                ep.send_buffer(buf, 496)
        else:
            for _ in range(messages):
                ep.send(payload)
        ep.send(b"report")
        got = int(ep.recv())
        elapsed = time.perf_counter() - start
        ep.close()
        assert got == messages, f"remote counted {got} of {messages}"
        return messages / elapsed

    return float(with_remote("spin", "count", body))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20000)
    ap.add_argument("--messages", type=int, default=100000)
    args = ap.parse_args()
    c_spin = c_baseline("vring-spin", args.rounds)
    c_block = c_baseline("vring-block", args.rounds)
    c_eventfd = c_baseline("eventfd", args.rounds)
    py_busy = round_trip("busy", args.rounds)
    py_block = round_trip("block", args.rounds)
    print(f"rpmsg round trip, 16 B, two processes, median of {args.rounds}")
    print(f"  C vring echo, busy-poll      {c_spin:8.2f} us")
    print(f"  C vring echo, eventfd wait   {c_block:8.2f} us")
    print(f"  C raw eventfd ping-pong      {c_eventfd:8.2f} us")
    print(f"  Python endpoints, busy-poll  {py_busy:8.2f} us   {py_busy / c_spin:5.1f}x the C busy-poll echo")
    print(
        f"  Python endpoints, blocking   {py_block:8.2f} us   {py_block / c_eventfd:5.1f}x the raw eventfd round trip"
    )
    copy = throughput(args.messages, zero_copy=False)
    zc = throughput(args.messages, zero_copy=True)
    print(f"host -> remote, 496 B, {args.messages} messages")
    print(f"  copy (send)                  {copy:10,.0f} msgs/s {copy * 496 / 1e6:8.1f} MB/s")
    print(f"  zero-copy (get_buffer)       {zc:10,.0f} msgs/s {zc * 496 / 1e6:8.1f} MB/s   {zc / copy:4.2f}x copy")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
