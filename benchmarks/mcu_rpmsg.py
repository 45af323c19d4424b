"""Benchmark: rpmsg between this process and real firmware on QEMU's emulated Cortex-M33 (shared RAM, UART
doorbells), next to the same exchanges with the sim platform's Python remote, in the same run. The firmware runs
twice: as built (asleep in WFI between doorbells) and its polling build (build/poll/services.elf); for each, the
CPU the QEMU process takes while connected and idle (/proc/PID/stat) and the firmware's own loop passes per
second then (its idle_stats counters, docs/mcu.md "Sleeping").

    .venv/bin/python benchmarks/mcu_rpmsg.py [--rounds 5000] [--messages 50000] [--idle 2] [--json FILE]

The emulator, not rproc, bounds the firmware side: TCG runs the M33 at a fraction of a real core's speed.
"""

from __future__ import annotations

import argparse
import os
import struct
import sys
import time
from pathlib import Path
from typing import NamedTuple

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elftools.elf.elffile import ELFFile  # noqa: E402

from benchmarks.report import Results  # noqa: E402
from remoteproc.boards import MPS2_AN505  # noqa: E402
from remoteproc.demo import echo_stream_rate, round_trip_us  # noqa: E402
from remoteproc.platforms.base import Platform  # noqa: E402
from remoteproc.platforms.qemu import QemuPlatform  # noqa: E402
from remoteproc.platforms.sim import SimPlatform  # noqa: E402
from remoteproc.rproc import RemoteProc  # noqa: E402

FIRMWARE = REPO / "firmware" / "build" / "services.elf"
POLLING_FIRMWARE = REPO / "firmware" / "build" / "poll" / "services.elf"


class Figures(NamedTuple):
    p50: float
    p99: float
    rate: float
    idle_cpu: float = float("nan")  # % of one core taken by the QEMU process while connected and idle
    idle_loops: float = float("nan")  # the firmware's main-loop passes per second then


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/PID/stat fields 14 and 15), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_stats_address(firmware: Path) -> int:
    with open(firmware, "rb") as f:
        symtab = ELFFile(f).get_section_by_name(".symtab")
        (sym,) = symtab.get_symbol_by_name("idle_stats")
        return int(sym["st_value"])


def measure(platform: Platform, rounds: int, messages: int, idle: float, firmware: Path = FIRMWARE) -> Figures:
    with RemoteProc(platform) as rp:
        rp.load(firmware)
        rp.start()
        assert rp.rpmsg is not None
        ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
        ep.settimeout(10)
        for _ in range(200):
            ep.send(b"warm")
            ep.recv()
        p50, p99 = round_trip_us(ep, rounds)
        rate = echo_stream_rate(ep, bytes(496), messages)
        process = getattr(platform, "process", None)
        if process is None or idle <= 0:
            return Figures(p50, p99, rate)
        stats = idle_stats_address(firmware)
        time.sleep(0.2)  # the host's own wait settles (spin, then block)
        cpu0, loops0, t0 = cpu_seconds(process.pid), loop_passes(rp, stats), time.monotonic()
        time.sleep(idle)
        cpu1, loops1, t1 = cpu_seconds(process.pid), loop_passes(rp, stats), time.monotonic()
        return Figures(p50, p99, rate, 100 * (cpu1 - cpu0) / (t1 - t0), (loops1 - loops0) / (t1 - t0))


def loop_passes(rp: RemoteProc, address: int) -> int:
    magic, _mode, loops, _sleeps, _doorbells = struct.unpack("<5I", rp.platform.memory.read(address, 20))
    assert magic == 0x454C4449, "no idle_stats in the firmware (firmware/include/rproc/idle.h)"
    return int(loops)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5000)
    ap.add_argument("--messages", type=int, default=50000)
    ap.add_argument("--idle", type=float, default=2.0, help="seconds of idle-connected CPU measured per build")
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    res = Results("mcu_rpmsg", {"rounds": args.rounds, "messages": args.messages, "idle_s": args.idle})
    qemu = measure(QemuPlatform(MPS2_AN505), args.rounds, args.messages, args.idle)
    polling = measure(QemuPlatform(MPS2_AN505), args.rounds, args.messages, args.idle, POLLING_FIRMWARE)
    sim = measure(SimPlatform(MPS2_AN505), args.rounds, args.messages, 0)
    print(f"rpmsg echo host <-> remote, {args.rounds} round trips of 16 B, {args.messages} x 496 B (window 64)")
    print(f"{'remote':<40} {'p50 us':>8} {'p99 us':>8} {'msgs/s':>10} {'MB/s':>7} {'idle CPU':>9} {'loops/s':>10}")
    sleep_name = "C firmware on emulated Cortex-M33"
    poll_name = "C firmware, polling build"
    sim_name = "Python remote (sim platform)"
    for name, f in ((sleep_name + " (WFI)", qemu), (poll_name, polling), (sim_name, sim)):
        print(
            f"{name:<40} {f.p50:>8.1f} {f.p99:>8.1f} {f.rate:>10,.0f} {f.rate * 496 / 1e6:>7.1f} "
            f"{f.idle_cpu:>8.1f}% {f.idle_loops:>10,.0f}"
        )
    print(f"firmware / Python remote: round trip {qemu.p50 / sim.p50:.2f}x, throughput {qemu.rate / sim.rate:.2f}x")
    print(
        f"sleeping / polling firmware: round trip {qemu.p50 / polling.p50:.2f}x, throughput "
        f"{qemu.rate / polling.rate:.2f}x, idle CPU {qemu.idle_cpu:.1f}% vs {polling.idle_cpu:.1f}% of a core"
    )
    for i, (what, unit, better) in enumerate(
        (
            ("round trip 16 B p50", "us", "lower"),
            ("round trip 16 B p99", "us", "lower"),
            ("echo 496 B", "msgs/s", "higher"),
        )
    ):
        base = (f"{sim_name}: {what}", sim[i])
        res.add(*base, unit, better=better)
        res.add(f"{sleep_name}: {what}", qemu[i], unit, better=better, baseline=base)
        poll_base = (f"{poll_name}: {what}", polling[i])
        res.add(*poll_base, unit, better=better)
        res.add(f"{sleep_name} vs polling: {what}", qemu[i], unit, better=better, baseline=poll_base)
    idle_base = (f"{poll_name}: QEMU CPU while idle-connected", polling.idle_cpu)
    res.add(*idle_base, "% of a core", better="lower")
    res.add(f"{sleep_name}: QEMU CPU while idle-connected", qemu.idle_cpu, "% of a core", better="lower",
            baseline=idle_base)  # fmt: skip
    loops_base = (f"{poll_name}: main-loop passes while idle", polling.idle_loops)
    res.add(*loops_base, "per s", better="lower")
    res.add(f"{sleep_name}: main-loop passes while idle", qemu.idle_loops, "per s", better="lower",
            baseline=loops_base)  # fmt: skip
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
