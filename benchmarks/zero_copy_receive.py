"""Zero-copy receive against copy, both roles: a zero-copy endpoint's ``recv_message`` (the payload a read-only
view of its buffer, ``release`` giving the buffer back) against ``recv`` (a bytes copy), the receiver reading
every byte (``zlib.crc32`` of the payload: what a consumer that checks, hashes or forwards a message does) and,
apart, touching none (the receive's own cost).

    python benchmarks/zero_copy_receive.py [--messages N] [--rounds R] [--json FILE]

The peer is in the same process (loopback_pair with eventfd kicks: both ends on the C path); its sends
(send_many of a ring's worth) are outside the time. Copy and zero-copy take turns, round after round, so that
both meet the same state of this shared machine; each figure is the median over the rounds of the time per
message, and the ratio is copy's time over zero-copy's (> 1: zero-copy is faster). The sender wrote the
payload on this CPU just before: it is in cache, which favours the copy (a peer on another CPU or a device
would leave it in memory, where every byte the copy reads costs more).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.report import Results
from rpmsg import Endpoint, Profile, loopback_pair
from rpmsg.protocol import HEADER_SIZE

SIZES = (496, 4080, 16368, 65520)  # 65,520: a 64 KiB buffer's payload


def _copy(ep: Endpoint, n: int, touch: bool) -> int:
    """Receive n by copy; the sum of their CRCs when reading them (checked against what was sent)."""
    crcs = 0
    for _ in range(n):
        data = ep.recv()
        if touch:
            crcs += zlib.crc32(data)
    return crcs


def _lend(ep: Endpoint, n: int, touch: bool) -> int:
    crcs = 0
    for _ in range(n):
        msg = ep.recv_message()
        if touch:
            crcs += zlib.crc32(msg.payload)
        msg.release()
    return crcs


def measure(role: str, size: int, messages: int, rounds: int, touch: bool) -> tuple[list[float], list[float]]:
    """(copy, zero-copy): ns per message of each round."""
    buf = max(512, size + HEADER_SIZE)
    num = 64
    host, remote = loopback_pair(
        Profile(num=num, rx_count=num, tx_count=num, rx_size=buf, tx_size=buf), wait="busy", eventfd=True
    )
    try:
        local, peer = (host, remote) if role == "host" else (remote, host)
        cp, zc = local.endpoint("copy"), local.endpoint("zc", zero_copy=True)
        to_cp, to_zc = peer.endpoint(peer=cp.addr), peer.endpoint(peer=zc.addr)
        for ep in (cp, zc, to_cp, to_zc):
            ep.settimeout(5)
        batch = [bytes([i & 0xFF]) * size for i in range(num)]
        runs: dict[str, list[float]] = {"copy": [], "zc": []}
        for r in range(rounds + 1):  # round 0 warms up
            for kind, ep, to, take in (("copy", cp, to_cp, _copy), ("zc", zc, to_zc, _lend)):
                spent, left = 0.0, messages
                while left:
                    n = min(num, left)
                    to.send_many(batch[:n])
                    t0 = time.perf_counter()
                    crcs = take(ep, n, touch)
                    spent += time.perf_counter() - t0
                    if touch and crcs != sum(map(zlib.crc32, batch[:n])):
                        raise SystemExit(f"{kind}: {role} received other bytes than were sent ({size} B)")
                    left -= n
                if r:
                    runs[kind].append(spent / messages * 1e9)
        return runs["copy"], runs["zc"]
    finally:
        remote.close()
        host.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=2048, help="messages per round and kind (default 2048)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds, copy and zero-copy in turn (default 10)")
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    res = Results("zero_copy_receive", {"messages": args.messages, "rounds": args.rounds, "sizes": list(SIZES)})
    print(f"receive per message, ns (median of {args.rounds} rounds of {args.messages}, copy and zero-copy in turn)")
    print(f"  {'role':6} {'size':>6} {'reads':6} {'copy':>8} {'zero-copy':>10}  {'zero-copy vs copy (range)'}")
    for role in ("host", "remote"):
        for touch in (True, False):
            for size in SIZES:
                copy, lend = measure(role, size, args.messages, args.rounds, touch)
                ratios = sorted(c / z for c, z in zip(copy, lend, strict=True))
                what = f"{role} receives {size} B, {'reading every byte' if touch else 'touching none'}"
                base = res.add(f"{what}: recv (copy)", statistics.median(copy), "ns/msg", better="lower")
                res.add(
                    f"{what}: recv_message (zero-copy)",
                    statistics.median(lend),
                    "ns/msg",
                    better="lower",
                    baseline=(f"{what}: recv (copy)", base),
                )
                print(
                    f"  {role:6} {size:6} {'all' if touch else 'none':6} {statistics.median(copy):8.0f} "
                    f"{statistics.median(lend):10.0f}  {statistics.median(ratios):.2f}x "
                    f"({ratios[0]:.2f}..{ratios[-1]:.2f})"
                )
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
