"""``rproc trace``: run a firmware and follow its trace buffer (remoteproc.session.follow_trace)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_OK, send_arg

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_trace(sub: Subparsers) -> None:
    p = sub.add_parser("trace", help="run a firmware and follow its trace buffer")
    p.add_argument("firmware")
    p.add_argument("--platform", choices=("qemu-an505", "sim", "devmem"), default="qemu-an505")
    p.add_argument("--board", metavar="FILE", help="board description (TOML) for --platform devmem")
    p.add_argument("--seconds", type=float, default=2.0, help="how long to follow (default 2)")
    p.add_argument("--index", type=int, default=0, help="which trace buffer (default 0)")
    send_arg(p, "send TEXT to CHANNEL first (repeatable), e.g. to make the firmware log")
    p.add_argument("--json", action="store_true", help='JSON lines: {"trace": I, "line": TEXT} per line')
    p.set_defaults(func=cmd_trace)


def cmd_trace(args: argparse.Namespace) -> int:
    from remoteproc.session import follow_trace, make_platform, parse_send

    def json_line(line: str) -> None:  # streaming: one JSON object per trace line, as it appears
        print(json.dumps({"trace": args.index, "line": line}), flush=True)

    follow_trace(
        Path(args.firmware),
        make_platform(args.platform, args.board),
        seconds=args.seconds,
        index=args.index,
        sends=[parse_send(item) for item in args.send],
        say=json_line if args.json else print,
    )
    return EXIT_OK
