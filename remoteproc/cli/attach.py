"""``rproc attach``: talk to a remote a bootloader started, then detach (remoteproc.session.attach_session)."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_OK, int_arg, say_for, send_arg, session_json

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_attach(sub: Subparsers) -> None:
    p = sub.add_parser("attach", help="attach to a remote a bootloader started (devmem board), talk, detach")
    p.add_argument("--board", required=True, metavar="FILE", help="board description (TOML) with [attach]")
    p.add_argument("--table", type=int_arg, help="the live table's address (default: the board's [attach] table)")
    send_arg(p)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_attach)


def cmd_attach(args: argparse.Namespace) -> int:
    from remoteproc.session import attach_session, make_platform, parse_send

    result = attach_session(
        make_platform("devmem", args.board),
        [parse_send(item) for item in args.send],
        timeout=args.timeout,
        table=args.table,
        say=say_for(args),
    )
    if args.json:
        out = session_json(result)
        del out["trace"]  # attaching reads no trace buffer
        print(json.dumps({**out, "detached": True}, indent=2))
    return EXIT_OK
