"""Run the benchmarks one after another (each prints its figures next to a baseline measured in the same run) and,
on request, merge what they measured into one JSON file and draw the rpmsg round trips' latency histogram.

    ./scripts/bench [--json FILE] [--histogram FILE.svg] [--only NAME,...] [--quick] [--openamp-bin DIR]

``--quick``: the smallest configuration of each (a few hundred messages): a check that everything runs and the
files are written, not a measurement. The JSON's shape is in benchmarks/report.py. ``--openamp-bin DIR`` (or the
environment variable ``RPROC_OPENAMP_BIN``): where OpenAMP's Linux demo programs are, for openamp_peers (rproc
against OpenAMP's own C programs); without it that benchmark says it was skipped (nothing of OpenAMP is built here).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

# name: (arguments of the full run, of --quick)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "virtio_stream": ([], ["--count", "300", "--repeat", "1"]),
    "rpmsg_pingpong": ([], ["--rounds", "300", "--messages", "300"]),
    "mcu_rpmsg": ([], ["--rounds", "300", "--messages", "300", "--idle", "0.5"]),
    "linux_rpmsg": ([], ["--rounds", "300", "--messages", "300"]),
    "uart_link": ([], ["--messages", "300", "--qemu-rounds", "5", "--qemu-messages", "10"]),
    "big_buffers": ([], ["--messages", "300", "--repeat", "1"]),
    "wait_modes": ([], ["--rounds", "300", "--idle", "0.5"]),
    "openamp_peers": ([], ["--runs", "1", "--warmup", "0.2", "--window", "0.3", "--passes", "1"]),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    ap.add_argument("--histogram", metavar="FILE.svg", help="draw the rpmsg round trips' latency histogram here")
    ap.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHMARKS)}")
    ap.add_argument("--quick", action="store_true", help="a few hundred messages each: checks, not measurements")
    ap.add_argument("--openamp-bin", metavar="DIR", help="OpenAMP's Linux demo programs, for openamp_peers")
    args = ap.parse_args()
    if args.openamp_bin:
        os.environ["RPROC_OPENAMP_BIN"] = args.openamp_bin  # the benchmarks run as children: they inherit it
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    if args.histogram and "rpmsg_pingpong" not in names:
        ap.error("--histogram draws rpmsg_pingpong's round trips: include it in --only")
    runs, figures = [], []
    with tempfile.TemporaryDirectory(prefix="rproc-bench-") as tmp:
        for name in names:
            full, quick = BENCHMARKS[name]
            argv = [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), *(quick if args.quick else full)]
            part = Path(tmp) / f"{name}.json"
            argv += ["--json", str(part)]
            if name == "rpmsg_pingpong" and args.histogram:
                argv += ["--histogram", args.histogram]
            print(f"== {name}", flush=True)
            started = time.monotonic()
            done = subprocess.run(argv, check=False)
            if done.returncode != 0:
                print(f"bench: {name} failed (exit {done.returncode})", file=sys.stderr)
                return 1
            result = json.loads(part.read_text())
            runs.append({"benchmark": name, "config": result["config"], "seconds": time.monotonic() - started})
            figures += result["figures"]
    if args.json:
        machine = {
            "python": platform.python_version(),
            "system": platform.platform(),
            "cpus": sorted(os.sched_getaffinity(0)),
        }
        doc = {"machine": machine, "quick": args.quick, "runs": runs, "figures": figures}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
