"""Zero-copy send against copy, both roles: what a send costs the sender, per message, at 496 B to 64 KiB.

    python benchmarks/zero_copy_send.py [--messages N] [--rounds R] [--json FILE]

The host sends into its own send buffers; the remote (issue #20, "in both roles") into the host's posted receive
buffers, lent by ``get_buffer`` (OpenAMP's ``rpmsg_get_tx_payload_buffer`` on a remote). Each sender's producer
writes 4 bytes of every message (a sequence number) and the rest is what the buffer holds, as
benchmarks/rpmsg_pingpong.py's host streams do:

- ``copy-write``: the producer writes into a bytearray (kept), then ``send`` copies it (the baseline);
- ``zero-copy``: ``get_buffer``, write into it, ``send_buffer``;
- ``zero-copy-reuse``: one buffer object kept, written into, ``send_buffer_reuse`` (``send_buffer`` for the
  last of a ring's worth);
- ``batch-copy-write``: 64 bytearrays (kept) written into, ``send_many``;
- ``zero-copy-batch``: ``get_buffers(64)``, each written into, ``send_buffers``.

The peer is in the same process (loopback_pair with eventfd kicks: both ends on the C path, the endpoints' C
methods); it drains each ring's worth (a zero-copy receive touching no payload) outside the time, so a figure is the
sender's own cost. The kinds take turns, round after round, so that all meet the same state of this shared machine;
each figure is the median over the rounds of the time per message, each ratio copy-write's time over the kind's
(> 1: faster than the copy), with its range over the rounds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import Results
from rpmsg import Endpoint, Profile, loopback_pair
from rpmsg.protocol import HEADER_SIZE, MAX_PAYLOAD

SIZES = (496, 4080, 16368, 65520)  # 65,520: a 64 KiB buffer's payload
NUM = 64  # ring entries and buffers each way: one drain's worth
KINDS = ("copy-write", "zero-copy", "zero-copy-reuse", "batch-copy-write", "zero-copy-batch")


def _send(kind: str, ep: Endpoint, size: int, n: int, seq: int, works: list[bytearray]) -> None:
    """Send n messages of ``size`` bytes the ``kind`` way (the ring has room for all of them); ``works``: the
    copying producers' bytearrays, made once (as the zero-copy sender's buffers are)."""
    if kind == "copy-write":
        work = works[0]
        for i in range(seq, seq + n):
            work[:4] = i.to_bytes(4, "little")
            ep.send(work)
    elif kind == "zero-copy":
        for i in range(seq, seq + n):
            buf = ep.get_buffer()
            buf[:4] = i.to_bytes(4, "little")
            ep.send_buffer(buf, size)
    elif kind == "zero-copy-reuse":
        buf = ep.get_buffer()
        for i in range(seq, seq + n - 1):
            buf[:4] = i.to_bytes(4, "little")
            if not ep.send_buffer_reuse(buf, size):
                buf = ep.get_buffer()
        buf[:4] = (seq + n - 1).to_bytes(4, "little")
        ep.send_buffer(buf, size)  # the last one not re-armed: nothing is left held between rounds
    elif kind == "batch-copy-write":
        batch = works[:n]
        for k, work in enumerate(batch):
            work[:4] = (seq + k).to_bytes(4, "little")
        assert ep.send_many(batch) == n
    else:  # zero-copy-batch
        bufs = ep.get_buffers(n)
        assert len(bufs) == n
        for k, b in enumerate(bufs):
            b[:4] = (seq + k).to_bytes(4, "little")
        ep.send_buffers(bufs, size)


def _drain(ep: Endpoint, n: int, size: int, seq: int) -> None:
    """Take the n messages in (outside the time), checking each one's length and sequence number."""
    for i in range(seq, seq + n):
        with ep.recv_message() as msg:
            p = msg.payload
            if len(p) != size or int.from_bytes(p[:4], "little") != i:
                raise SystemExit(f"message {i}: {len(p)} bytes, sequence {int.from_bytes(p[:4], 'little')}")


def measure(role: str, size: int, messages: int, rounds: int) -> dict[str, list[float]]:
    """Every kind's ns per message of each round (round 0 warms up and is left out)."""
    buf = max(512, size + HEADER_SIZE)
    host, remote = loopback_pair(
        Profile(num=NUM, rx_count=NUM, tx_count=NUM, rx_size=buf, tx_size=buf), wait="busy", eventfd=True
    )
    try:
        local, peer = (host, remote) if role == "host" else (remote, host)
        sink = peer.endpoint("sink", zero_copy=True)
        ep = local.endpoint(peer=sink.addr)
        for e in (ep, sink):
            e.settimeout(5)
        runs: dict[str, list[float]] = {k: [] for k in KINDS}
        works = [bytearray(size) for _ in range(NUM)]
        for r in range(rounds + 1):
            for kind in KINDS:
                spent, seq = 0.0, 0
                while seq < messages:
                    n = min(NUM, messages - seq)
                    t0 = time.perf_counter()
                    _send(kind, ep, size, n, seq, works)
                    spent += time.perf_counter() - t0
                    _drain(sink, n, size, seq)
                    seq += n
                if r:
                    runs[kind].append(spent / messages * 1e9)
        return runs
    finally:
        remote.close()
        host.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=4096, help="messages per round and kind (default 4096)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds, the kinds in turn (default 10)")
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    res = Results("zero_copy_send", {"messages": args.messages, "rounds": args.rounds, "sizes": list(SIZES)})
    print(f"send per message, ns (median of {args.rounds} rounds of {args.messages}, the kinds in turn)")
    print(f"  {'role':6} {'size':>6} {'kind':18} {'ns/msg':>8}  copy-write's time / this one's (range)")
    for role in ("host", "remote"):
        for size in SIZES:
            assert size <= MAX_PAYLOAD
            runs = measure(role, size, args.messages, args.rounds)
            base_name = f"{role} sends {size} B: copy-write"
            base = res.add(base_name, statistics.median(runs["copy-write"]), "ns/msg", better="lower")
            for kind in KINDS:
                median = statistics.median(runs[kind])
                line = f"  {role:6} {size:6} {kind:18} {median:8.0f}"
                if kind != "copy-write":
                    res.add(
                        f"{role} sends {size} B: {kind}", median, "ns/msg", better="lower", baseline=(base_name, base)
                    )
                    ratios = sorted(c / z for c, z in zip(runs["copy-write"], runs[kind], strict=True))
                    line += f"  {statistics.median(ratios):.2f}x ({ratios[0]:.2f}..{ratios[-1]:.2f})"
                print(line)
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
