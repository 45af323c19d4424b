"""Benchmark: rpmsg between this process and real firmware on QEMU's emulated Cortex-M33 (shared RAM, UART
doorbells), next to the same exchanges with the sim platform's Python remote, in the same run.

    .venv/bin/python benchmarks/mcu_rpmsg.py [--rounds 5000] [--messages 50000] [--json FILE]

The emulator, not rproc, bounds the firmware side: TCG runs the M33 at a fraction of a real core's speed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import Results  # noqa: E402
from remoteproc.boards import MPS2_AN505  # noqa: E402
from remoteproc.demo import echo_stream_rate, round_trip_us  # noqa: E402
from remoteproc.platforms.base import Platform  # noqa: E402
from remoteproc.platforms.qemu import QemuPlatform  # noqa: E402
from remoteproc.platforms.sim import SimPlatform  # noqa: E402
from remoteproc.rproc import RemoteProc  # noqa: E402

FIRMWARE = REPO / "firmware" / "build" / "services.elf"


def measure(platform: Platform, rounds: int, messages: int) -> tuple[float, float, float]:
    with RemoteProc(platform) as rp:
        rp.load(FIRMWARE)
        rp.start()
        assert rp.rpmsg is not None
        ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
        ep.settimeout(10)
        for _ in range(200):
            ep.send(b"warm")
            ep.recv()
        p50, p99 = round_trip_us(ep, rounds)
        return p50, p99, echo_stream_rate(ep, bytes(496), messages)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=50000)
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    res = Results("mcu_rpmsg", {"rounds": args.rounds, "messages": args.messages})
    qemu = measure(QemuPlatform(MPS2_AN505), args.rounds, args.messages)
    sim = measure(SimPlatform(MPS2_AN505), args.rounds, args.messages)
    print(f"rpmsg echo host <-> remote, {args.rounds} round trips of 16 B, {args.messages} x 496 B (window 64)")
    print(f"{'remote':<34} {'p50 us':>8} {'p99 us':>8} {'msgs/s':>10} {'MB/s':>7}")
    for name, (p50, p99, rate) in (("C firmware on emulated Cortex-M33", qemu), ("Python remote (sim platform)", sim)):
        print(f"{name:<34} {p50:>8.1f} {p99:>8.1f} {rate:>10,.0f} {rate * 496 / 1e6:>7.1f}")
    print(f"firmware / Python remote: round trip {qemu[0] / sim[0]:.2f}x, throughput {qemu[2] / sim[2]:.2f}x")
    sim_name, qemu_name = "Python remote (sim platform)", "C firmware on emulated Cortex-M33"
    for i, (what, unit, better) in enumerate(
        (
            ("round trip 16 B p50", "us", "lower"),
            ("round trip 16 B p99", "us", "lower"),
            ("echo 496 B", "msgs/s", "higher"),
        )
    ):
        base = (f"{sim_name}: {what}", sim[i])
        res.add(*base, unit, better=better)
        res.add(f"{qemu_name}: {what}", qemu[i], unit, better=better, baseline=base)
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
