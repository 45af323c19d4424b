"""Run the benchmarks one after another (each prints its figures next to a baseline measured in the same run) and,
on request, merge what they measured into one JSON file and draw the rpmsg round trips' latency histogram.

    ./scripts/bench [--json FILE] [--histogram FILE.svg] [--only NAME,...] [--quick] [--openamp-bin DIR] [--runs N]

``--runs N``: the selection N times over, one after the other; each figure is then the median of its N values, its
ratio the median of the N same-run ratios, with every run's in the JSON (benchmarks/report.py, merge_runs), and
a table of medians and ranges is printed at the end.

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
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import merge_runs  # noqa: E402

# name: (arguments of the full run, of --quick)
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "virtio_stream": ([], ["--count", "300", "--repeat", "1"]),
    "rpmsg_pingpong": ([], ["--rounds", "300", "--messages", "300"]),
    "mcu_rpmsg": ([], ["--rounds", "300", "--messages", "300", "--idle", "0.5"]),
    "linux_rpmsg": ([], ["--rounds", "300", "--messages", "300"]),
    "uart_link": (
        [],
        [
            "--messages",
            "300",
            "--qemu-rounds",
            "5",
            "--qemu-messages",
            "10",
            "--rpmsg-runs",
            "1",
            "--rpmsg-messages",
            "300",
        ],
    ),
    "big_buffers": ([], ["--messages", "300", "--repeat", "1"]),
    "wait_modes": ([], ["--rounds", "300", "--idle", "0.5"]),
    "zero_copy_receive": ([], ["--messages", "200", "--rounds", "1"]),
    "zero_copy_send": ([], ["--messages", "200", "--rounds", "1"]),
    "python_remote_stream": ([], ["--messages", "2000", "--rounds", "2"]),
    "openamp_peers": ([], ["--runs", "1", "--warmup", "0.2", "--window", "0.3", "--passes", "1"]),
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    ap.add_argument("--histogram", metavar="FILE.svg", help="draw the rpmsg round trips' latency histogram here")
    ap.add_argument("--only", help=f"comma-separated, of: {', '.join(BENCHMARKS)}")
    ap.add_argument("--quick", action="store_true", help="a few hundred messages each: checks, not measurements")
    ap.add_argument("--openamp-bin", metavar="DIR", help="OpenAMP's Linux demo programs, for openamp_peers")
    ap.add_argument("--runs", type=int, default=1, metavar="N", help="run the selection N times: medians and ranges")
    args = ap.parse_args()
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    if args.openamp_bin:
        os.environ["RPROC_OPENAMP_BIN"] = args.openamp_bin  # the benchmarks run as children: they inherit it
    names = [n.strip() for n in args.only.split(",")] if args.only else list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        ap.error(f"unknown benchmark(s) {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    if args.histogram and "rpmsg_pingpong" not in names:
        ap.error("--histogram draws rpmsg_pingpong's round trips: include it in --only")
    runs: list[dict[str, Any]] = []
    per_run: list[list[dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="rproc-bench-") as tmp:
        for run in range(args.runs):
            figures: list[dict[str, Any]] = []
            for name in names:
                full, quick = BENCHMARKS[name]
                argv = [sys.executable, str(REPO / "benchmarks" / f"{name}.py"), *(quick if args.quick else full)]
                part = Path(tmp) / f"{name}-{run}.json"
                argv += ["--json", str(part)]
                if name == "rpmsg_pingpong" and args.histogram and run == 0:
                    argv += ["--histogram", args.histogram]
                print(f"== {name}" + (f" (run {run + 1} of {args.runs})" if args.runs > 1 else ""), flush=True)
                started = time.monotonic()
                done = subprocess.run(argv, check=False)
                if done.returncode != 0:
                    print(f"bench: {name} failed (exit {done.returncode})", file=sys.stderr)
                    return 1
                result = json.loads(part.read_text())
                runs.append({"benchmark": name, "config": result["config"], "seconds": time.monotonic() - started})
                figures += result["figures"]
            per_run.append(figures)
    figures = merge_runs(per_run) if args.runs > 1 else per_run[0]
    if args.runs > 1:
        print(f"== medians of {args.runs} runs [range]; ratios against the same run's baseline")
        for f in figures:
            values = f["runs"]["values"]
            line = f"  {f['benchmark']}: {f['name']}: {f['value']:.4g} {f['unit']}"
            line += f" [{min(values):.4g}-{max(values):.4g}]"
            ratios = [r for r in f["runs"]["ratios"] if r is not None]
            if ratios:
                line += f"  {f['ratio']:.3g}x [{min(ratios):.3g}-{max(ratios):.3g}]"
            print(line)
    if args.json:
        machine = {
            "python": platform.python_version(),
            "system": platform.platform(),
            "cpus": sorted(os.sched_getaffinity(0)),
        }
        doc = {"machine": machine, "quick": args.quick, "repeats": args.runs, "runs": runs, "figures": figures}
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
