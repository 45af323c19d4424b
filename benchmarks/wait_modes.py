"""Benchmark: what each wait mode costs, under traffic and idle (issue 20, "Waiting").

For each of the host's wait modes (``busy``, ``spin`` — the default —, ``block``), against the firmware's C rpmsg
remote in another process over shared memory (benchmarks/rpmsg_remote.py, as rpmsg_pingpong.py runs it; the remote
waits the same way: in ``spin`` it polls for the same 50 us budget before it sleeps), one CPU each:

- the median round trip of a 16-byte message under traffic, next to the busy-poll round trip of the same run;
- the CPU time the host process and the remote process use while the channel is open and nothing is sent (the host
  blocked in ``ep.recv()`` with a timeout), as a percentage of one core over the idle period.

    .venv/bin/python benchmarks/wait_modes.py [--rounds 5000] [--idle 3] [--json FILE]
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
from rpmsg.endpoint import Endpoint  # noqa: E402
from rpmsg.errors import RpmsgTimeout  # noqa: E402
from rpmsg.profiles import Profile  # noqa: E402
from rpmsg.wiring import host_on  # noqa: E402
from transports.url import open_link  # noqa: E402

MODES = ("busy", "spin", "block")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (/proc/PID/stat fields 14 and 15), seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def measure(wait: str, rounds: int, idle: float, cpus: list[int]) -> tuple[float, float, float]:
    """(median round trip in us, host CPU % of a core idle, remote CPU % of a core idle) for one wait mode."""
    name = f"rproc-bench-wait-{os.getpid()}-{wait}"
    remote_wait = "read" if wait == "block" else wait  # a blocking C remote sleeps in read() on its kick
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "benchmarks" / "rpmsg_remote.py"), name, remote_wait, "echo", "c"]
    )
    if len(cpus) > 1:
        os.sched_setaffinity(proc.pid, {cpus[1]})
    try:
        link = open_link(f"shm://{name}?size={Profile().size}&doorbell=eventfd", role="host")
        device = host_on(link, wait=wait, timeout=20)  # type: ignore[arg-type]
        try:
            ep: Endpoint = device.open("bench-echo", timeout=10)
            payload = bytes(16)
            for _ in range(1000):
                ep.send(payload)
                ep.recv()
            times = []
            for _ in range(rounds):
                start = time.perf_counter_ns()
                ep.send(payload)
                ep.recv()
                times.append(time.perf_counter_ns() - start)
            time.sleep(0.2)  # let both sides settle into their idle wait
            host0, remote0, wall0 = time.process_time(), cpu_seconds(proc.pid), time.monotonic()
            ep.settimeout(idle)
            try:
                ep.recv()
                raise RuntimeError("the echo sent something unasked")
            except RpmsgTimeout:
                pass
            wall = time.monotonic() - wall0
            host_pct = 100.0 * (time.process_time() - host0) / wall
            remote_pct = 100.0 * (cpu_seconds(proc.pid) - remote0) / wall
            ep.close()
        finally:
            device.close()
            link.close()
    finally:
        if remote_wait == "read":
            proc.terminate()
        proc.wait(timeout=10)
    return statistics.median(times) / 1000.0, host_pct, remote_pct


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
    found = {mode: measure(mode, args.rounds, args.idle, cpus) for mode in MODES}
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
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
