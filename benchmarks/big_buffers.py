"""Benchmark: big rpmsg buffers, host -> C remote, the receiver reading every byte, next to a C sender and memcpy.

- memcpy of one message's payload on this machine (benchmarks/c/big_stream.c memcpy): the copy rate a copying
  rpmsg path is bounded by;
- the same stream sent by a C sender (big_stream.c stream): a C host on the same layout posting the same messages
  to the same receiver, the firmware's rpmsg remote library (rpmsg_echo_remote.c "bench-touch", busy-polling, in
  its own process), which sums every byte of each message in place;
- rproc's Python host over /dev/shm (host_on over shm://, busy-polling) sending the same messages to the same C remote
  (benchmarks/rpmsg_remote.py c), by copy (``send``) and zero-copy (``get_buffer``: the payload written into the
  shared buffer, then ``send_buffer``).

Every figure is a payload rate in GB/s (10^9 bytes of payload per second, headers not counted), the median of
``--repeat`` runs with its spread (min..max); the Python figures' baseline is the C sender, the C sender's is
memcpy, each from the same run. The receiver's sum is checked against the bytes sent in every run.
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

from benchmarks.report import Results  # noqa: E402
from rpmsg.profiles import Profile  # noqa: E402
from rpmsg.protocol import HEADER_SIZE, MAX_PAYLOAD  # noqa: E402
from rpmsg.wiring import host_on  # noqa: E402
from transports.url import open_link  # noqa: E402

C_SOURCES = [
    REPO / "benchmarks" / "c" / "big_stream.c",
    REPO / "benchmarks" / "c" / "rpmsg_echo_remote.c",
    REPO / "firmware" / "lib" / "rpmsg_remote.c",
    REPO / "virtio" / "csrc" / "vring.c",
]
C_BIN = REPO / "build" / "bench" / "big_stream"


def big_stream() -> Path:
    C_BIN.parent.mkdir(parents=True, exist_ok=True)
    if not C_BIN.exists() or any(s.stat().st_mtime > C_BIN.stat().st_mtime for s in C_SOURCES):
        include = [f"-I{REPO / 'firmware' / 'include'}", f"-I{REPO / 'virtio' / 'csrc'}"]
        subprocess.run(["gcc", "-O2", "-std=gnu11", *include, "-o", str(C_BIN), *map(str, C_SOURCES)], check=True)
    return C_BIN


def message(length: int, i: int) -> bytes:
    """The payload both senders send: bytes (k * 7) & 0xff, the first byte the message number's low byte."""
    body = bytearray((k * 7) & 0xFF for k in range(length))
    body[0] = i & 0xFF
    return bytes(body)


def expected_sum(length: int, count: int) -> int:
    rest = sum((k * 7) & 0xFF for k in range(1, length))
    return count * rest + sum(i & 0xFF for i in range(count))


def c_memcpy(length: int, count: int) -> float:
    out = subprocess.run([str(big_stream()), "memcpy", str(length), str(count)], capture_output=True, text=True,
                         check=True, timeout=300)  # fmt: skip
    return float(out.stdout.split()[1]) / 1e9


def c_sender(p: Profile, length: int, count: int) -> float:
    args = [p.num, p.align, p.rx_layout.desc, p.tx_layout.desc, p.pool_da, p.rx_size, p.tx_size]
    out = subprocess.run([str(big_stream()), "stream", str(count), str(length), *map(str, args)],
                         capture_output=True, text=True, check=True, timeout=600)  # fmt: skip
    words = out.stdout.split()
    assert int(words[3]) == expected_sum(length, count), "the C receiver did not read every byte sent"
    return float(words[1]) * length / 1e9


def python_sender(p: Profile, length: int, count: int, zero_copy: bool) -> float:
    name = f"rproc-bench-big-{os.getpid()}-{int(zero_copy)}"
    spec = f"{p.num}:{p.rx_size}:{p.tx_size}"
    script = str(REPO / "benchmarks" / "rpmsg_remote.py")
    proc = subprocess.Popen([sys.executable, script, name, "busy", "touch", "c", spec])
    try:
        link = open_link(f"shm://{name}?size={p.size}", role="host")
        device = host_on(link, p, wait="busy", timeout=20)
        try:
            ep = device.open("bench-touch", timeout=10)
            ep.settimeout(60)
            payload = bytearray(message(length, 0))
            start = time.perf_counter()
            for i in range(count):
                payload[0] = i & 0xFF  # a new message each time
                if zero_copy:
                    buf = ep.get_buffer()
                    buf.view[:length] = payload
                    ep.send_buffer(buf, length)
                else:
                    ep.send(payload)
            ep.send(b"report")
            got, total = map(int, ep.recv().split())
            elapsed = time.perf_counter() - start
            assert got == count and total == expected_sum(length, count), "the C receiver missed bytes"
            ep.close()
            return count * length / elapsed / 1e9
        finally:
            device.close()
            link.close()
    finally:
        proc.wait(timeout=20)


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):6.2f} GB/s ({min(values):.2f}..{max(values):.2f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=20000, help="messages per run (default 20000)")
    ap.add_argument("--buffer", type=int, default=64 * 1024, help="bytes per host send buffer (default 64 KiB)")
    ap.add_argument("--num", type=int, default=64, help="vring size = buffers each way (default 64)")
    ap.add_argument("--repeat", type=int, default=5, help="runs; the figures are medians (default 5)")
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    length = min(args.buffer - HEADER_SIZE, MAX_PAYLOAD)  # the largest message the buffer carries
    p = Profile(num=args.num, rx_count=args.num, tx_count=args.num, rx_size=512, tx_size=args.buffer)
    cfg = {"messages": args.messages, "buffer": args.buffer, "payload": length, "num": args.num}
    res = Results("big_buffers", {**cfg, "repeat": args.repeat})
    names = {
        "memcpy": f"memcpy of {length} B",
        "c": f"{length} B host -> C remote (touching every byte): C sender",
        "copy": f"{length} B host -> C remote (touching every byte): Python send (copy)",
        "zc": f"{length} B host -> C remote (touching every byte): Python get_buffer (zero-copy)",
    }
    runs: dict[str, list[float]] = {k: [] for k in names}
    for _ in range(args.repeat):
        runs["memcpy"].append(c_memcpy(length, max(args.messages, 20000)))
        runs["c"].append(c_sender(p, length, args.messages))
        runs["copy"].append(python_sender(p, length, args.messages, zero_copy=False))
        runs["zc"].append(python_sender(p, length, args.messages, zero_copy=True))
    med = {k: statistics.median(v) for k, v in runs.items()}
    res.add(names["memcpy"], med["memcpy"], "GB/s", better="higher")
    res.add(names["c"], med["c"], "GB/s", better="higher", baseline=(names["memcpy"], med["memcpy"]))
    for k in ("copy", "zc"):
        res.add(names[k], med[k], "GB/s", better="higher", baseline=(names["c"], med["c"]))
    for i in range(args.repeat):  # each run's figures against that run's own baselines
        res.add(f"run {i + 1}: {names['memcpy']}", runs["memcpy"][i], "GB/s", better="higher")
        base = (f"run {i + 1}: {names['c']}", runs["c"][i])
        res.add(
            base[0], base[1], "GB/s", better="higher", baseline=(f"run {i + 1}: {names['memcpy']}", runs["memcpy"][i])
        )
        for k in ("copy", "zc"):
            res.add(f"run {i + 1}: {names[k]}", runs[k][i], "GB/s", better="higher", baseline=base)
    ratio = {k: [runs[k][i] / runs["c"][i] for i in range(args.repeat)] for k in ("copy", "zc")}
    print(f"{length} B messages host -> C remote ({args.buffer} B buffers, {args.num} each way), receiver reads every")
    print(f"byte; {args.messages} messages a run, median of {args.repeat} runs (min..max)")
    print(f"  memcpy, {length} B                {spread(runs['memcpy'])}")
    print(f"  C sender                          {spread(runs['c'])}  {med['c'] / med['memcpy']:.2f}x memcpy")
    for k, label in (("copy", "Python send (copy)        "), ("zc", "Python get_buffer (0-copy)")):
        r = ratio[k]
        print(f"  {label}        {spread(runs[k])}  {statistics.median(r):.2f}x the C sender "
              f"({min(r):.2f}..{max(r):.2f})")  # fmt: skip
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
