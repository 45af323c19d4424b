"""``rproc demo`` and ``rproc bench``: the example firmware loaded, started and measured (remoteproc/demo.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_OK, to_stderr
from remoteproc.errors import RemoteprocError

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_demo(sub: Subparsers) -> None:
    p = sub.add_parser("demo", help="load the example firmware, start it and exchange messages with it")
    p.add_argument(
        "--platform",
        choices=("auto", "qemu", "sim"),
        default="auto",
        help="qemu: real firmware on an emulated Cortex-M33; sim: a Python remote (auto: qemu if installed)",
    )
    p.add_argument("--firmware", help="another firmware with an rpmsg vdev (default: the bundled example)")
    p.add_argument("--rounds", type=int, default=2000, help="round trips to time (default 2000)")
    p.add_argument("--messages", type=int, default=20000, help="messages to stream (default 20000)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (what it does goes to stderr)")
    p.set_defaults(func=cmd_demo)


def add_bench(sub: Subparsers) -> None:
    p = sub.add_parser("bench", help="the demo's measurements: round trips and a stream (same as demo)")
    p.add_argument("--firmware")
    p.add_argument("--platform", choices=("auto", "qemu", "sim"), default="auto")
    p.add_argument("--rounds", type=int, default=2000)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--json", action="store_true", help="print the report as JSON (what it does goes to stderr)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from remoteproc.demo import DEFAULT_FIRMWARE, run_demo

    try:
        report = run_demo(
            Path(args.firmware) if args.firmware else DEFAULT_FIRMWARE,
            platform_name=args.platform,
            rounds=args.rounds,
            stream=args.messages,
            say=to_stderr if args.json else print,
        )
    except FileNotFoundError as exc:
        raise RemoteprocError(str(exc)) from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    return EXIT_OK
