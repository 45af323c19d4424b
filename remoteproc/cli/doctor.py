"""``rproc doctor``: what this installation and machine can do (remoteproc/doctor.py)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_OK

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_doctor(sub: Subparsers) -> None:
    p = sub.add_parser("doctor", help="what this installation and machine can do: engines, tools, kernel devices")
    p.add_argument("--root", default="/", help="look for /sys and /dev under this directory (default /)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    from remoteproc.doctor import diagnose, format_report

    report = diagnose(args.root)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return EXIT_OK
