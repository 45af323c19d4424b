"""Benchmark: what each wait mode costs, under traffic and idle (issue 20, "Waiting").

For each of the host's wait modes (``busy``, ``spin`` — the default —, ``block``), against the firmware's C rpmsg
remote in another process over shared memory (benchmarks/rpmsg_remote.py, as rpmsg_pingpong.py runs it; the remote
waits the same way: in ``spin`` it polls for the same 50 us budget before it sleeps), one CPU each:

- the median round trip of a 16-byte message under traffic, next to the busy-poll round trip of the same run (the
  modes measured in turn, in ten rounds: see :func:`measure`);
- the CPU time the host process and the remote process use while the channel is open and nothing is sent (the host
  blocked in ``ep.recv()`` with a timeout), as a percentage of one core over the idle period.

    .venv/bin/python benchmarks/wait_modes.py [--rounds 5000] [--idle 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.remote_session import RemoteSession  # noqa: E402
from benchmarks.report import Results  # noqa: E402
from rpmsg.errors import RpmsgTimeout  # noqa: E402

MODES = ("busy", "spin", "block")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/PID/stat fields 14 and 15), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


class Session(RemoteSession):
    """One wait mode: the C remote's echo in its process (on the second CPU), the host's device and endpoint here.
    Only one session's remote runs at a time (:meth:`run`): the others are stopped (SIGSTOP), so a busy-polling
    remote never takes the CPU from another mode's."""

    def __init__(self, wait: str, cpus: list[int]) -> None:
        self.wait = wait
        # a blocking C remote sleeps in read() on its kick
        super().__init__("wait", wait, "read" if wait == "block" else wait, "echo", "c", cpus)
        self.times: list[int] = []
        self.idle_pct = (0.0, 0.0)
        self.round_trips(1000)  # warm up

    def round_trips(self, n: int) -> list[int]:
        """``n`` 16-byte round trips, each in ns."""
        ep, payload, times = self.ep, bytes(16), []
        for _ in range(n):
            start = time.perf_counter_ns()
            ep.send(payload)
            ep.recv()
            times.append(time.perf_counter_ns() - start)
        return times

    def idle(self, seconds: float) -> tuple[float, float]:
        """(host CPU %, remote CPU % of a core) while the channel is open and nothing is sent."""
        time.sleep(0.2)  # let both sides settle into their idle wait
        host0, remote0, wall0 = time.process_time(), cpu_seconds(self.proc.pid), time.monotonic()
        self.ep.settimeout(seconds)
        try:
            self.ep.recv()
            raise RuntimeError("the echo sent something unasked")
        except RpmsgTimeout:
            pass
        wall = time.monotonic() - wall0
        return 100.0 * (time.process_time() - host0) / wall, 100.0 * (cpu_seconds(self.proc.pid) - remote0) / wall


def measure(rounds: int, idle: float, cpus: list[int], blocks: int = 10) -> tuple[dict[str, Session], list[float]]:
    """Every mode's round trips, measured in turn in ``blocks`` rounds of ``rounds / blocks`` each (busy, spin,
    block, busy, ...): this machine's round trip between its two vCPUs flips between ~1 and ~2 us from minute to
    minute (busy-polling alone: 0.9 or 1.9 us), so modes measured one after the other compared a fast run with a
    slow one (spin 2.1-2.7x busy, then 1.0x a minute later); measured in turn, both see the same flips. Then each
    mode's idle CPU, the others stopped. Returns the sessions (``times`` and ``idle_pct`` filled) and each round's
    spin/busy ratio of medians."""
    sessions: dict[str, Session] = {}
    try:
        for mode in MODES:
            for started in sessions.values():
                started.stop()  # the new one warms up alone on its CPU
            sessions[mode] = Session(mode, cpus)
        every = list(sessions.values())
        ratios = []
        per_block = max(1, rounds // blocks)
        for _ in range(blocks):
            medians = {}
            for s in every:
                s.run(every)
                s.round_trips(50)  # its remote back on the CPU, both sides in their steady state
                got = s.round_trips(per_block)
                s.times += got
                medians[s.wait] = statistics.median(got)
            ratios.append(medians["spin"] / medians["busy"])
        for s in every:
            s.run(every)
            s.idle_pct = s.idle(idle)
        return sessions, ratios
    finally:
        for s in sessions.values():
            s.close()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=5000)
    ap.add_argument("--idle", type=float, default=3.0, help="seconds of idle connection measured per mode")
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    res = Results("wait_modes", {"rounds": args.rounds, "idle": args.idle})
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        print("note: one CPU here: host and remote share it (busy-polling numbers mean little)")
    os.sched_setaffinity(0, {cpus[0]})  # the host on the first CPU, the remote on the second
    sessions, ratios = measure(args.rounds, args.idle, cpus)
    found = {m: (statistics.median(s.times) / 1000.0, *s.idle_pct) for m, s in sessions.items()}
    base = ("round trip, wait mode busy", found["busy"][0])
    res.add(*base, "us", better="lower")
    print(f"16 B round trip to the C remote and CPU while idle-connected ({args.idle:g} s), one CPU each")
    print(f"  {'mode':<6} {'round trip':>12} {'vs busy':>8} {'host idle CPU':>14} {'remote idle CPU':>16}")
    for mode, (rtt, host_pct, remote_pct) in found.items():
        if mode != "busy":
            res.add(f"round trip, wait mode {mode}", rtt, "us", better="lower", baseline=base)
        res.add(f"host CPU while idle, wait mode {mode}", host_pct, "% of a core", better="lower")
        res.add(f"remote CPU while idle, wait mode {mode}", remote_pct, "% of a core", better="lower")
        print(f"  {mode:<6} {rtt:9.2f} us {rtt / base[1]:7.2f}x {host_pct:12.1f} % {remote_pct:14.1f} %")
    print(f"  spin/busy per round of the {len(ratios)} (medians of each): {min(ratios):.2f}x..{max(ratios):.2f}x")
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
