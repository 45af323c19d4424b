"""``rproc ping``, ``send`` (and its alias ``echo``), ``listen``: a session on a platform that talks to one
channel (remoteproc.session: ping, run_session, listen)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_FAILURE, EXIT_OK, say_for, session_json

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def session_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("firmware")
    p.add_argument("--platform", choices=("qemu-an505", "sim", "devmem"), default="qemu-an505")
    p.add_argument("--board", metavar="FILE", help="board description (TOML) for --platform devmem")
    p.add_argument("--timeout", type=float, default=5.0)


def add_ping(sub: Subparsers) -> None:
    p = sub.add_parser("ping", help="round trips through a firmware's echo channel, like ping(8)")
    session_args(p)
    p.add_argument("--channel", default="rpmsg-echo")
    p.add_argument("-c", "--count", type=int, default=10)
    p.add_argument("-s", "--size", type=int, default=16)
    p.set_defaults(func=cmd_ping)


def add_send(sub: Subparsers) -> None:
    _add_sender(sub, "send", "send messages to a firmware's channel and print the replies")


def add_echo(sub: Subparsers) -> None:
    _add_sender(sub, "echo", "alias of send: messages out, replies printed", no_reply_help=None)


def _add_sender(
    sub: Subparsers,
    name: str,
    help: str,
    no_reply_help: str | None = "do not fail when a message gets no reply",
) -> None:
    p = sub.add_parser(name, help=help)
    session_args(p)
    p.add_argument("channel")
    p.add_argument("text", nargs="+")
    p.add_argument("--no-reply", action="store_true", help=no_reply_help)
    p.set_defaults(func=cmd_send)


def add_listen(sub: Subparsers) -> None:
    p = sub.add_parser("listen", help="print what a firmware's channel sends, for some seconds")
    session_args(p)
    p.add_argument("channel")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--send", metavar="TEXT", help="send this first (to start a stream)")
    p.set_defaults(func=cmd_listen)


def cmd_ping(args: argparse.Namespace) -> int:
    from remoteproc.session import make_platform, ping

    report = ping(
        Path(args.firmware),
        make_platform(args.platform, args.board),
        channel=args.channel,
        count=args.count,
        size=args.size,
        timeout=args.timeout,
        say=say_for(args),
    )
    if args.json:
        t = sorted(report.times_us)
        print(
            json.dumps(
                {
                    "channel": args.channel,
                    "size": args.size,
                    "times_us": report.times_us,
                    "min_us": t[0],
                    "p50_us": t[len(t) // 2],
                    "max_us": t[-1],
                },
                indent=2,
            )
        )
    return EXIT_OK


def cmd_send(args: argparse.Namespace) -> int:
    from remoteproc.session import make_platform, run_session

    result = run_session(
        Path(args.firmware),
        make_platform(args.platform, args.board),
        [(args.channel, text.encode()) for text in args.text],
        timeout=args.timeout,
        say=say_for(args),
    )
    if args.json:
        print(json.dumps(session_json(result), indent=2))
    return EXIT_OK if all(reply is not None for _, reply in result.replies) or args.no_reply else EXIT_FAILURE


def cmd_listen(args: argparse.Namespace) -> int:
    from remoteproc.session import listen, make_platform

    got = listen(
        Path(args.firmware),
        make_platform(args.platform, args.board),
        args.channel,
        seconds=args.seconds,
        send=args.send.encode() if args.send is not None else None,
        timeout=args.timeout,
        say=say_for(args),
    )
    if args.json:
        print(json.dumps({"channel": args.channel, "messages": [m.hex() for m in got]}, indent=2))
    return EXIT_OK
