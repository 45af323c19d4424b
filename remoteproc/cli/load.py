"""``rproc load``: a whole session, load to stop (remoteproc.session.run_session; for rp2350-uart the boot ROM,
then rpmsg over the serial link: remoteproc.platforms.rp2350.uart_session)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_OK, UsageError, int_arg, note, progress_for, say_for, send_arg, session_json
from resource_table.layout import DEFAULT_BUFFER_SIZE, LINUX_MAX_BUFFERS

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_load(sub: Subparsers) -> None:
    p = sub.add_parser("load", help="load a firmware, start it, talk to its channels, stop it")
    p.add_argument("firmware")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--platform",
        choices=("qemu-an505", "sim", "devmem", "rp2350-uart"),
        default="qemu-an505",
        help="qemu-an505: QEMU's emulated Cortex-M33 (default); sim: a Python remote; devmem: /dev/mem + --board; "
        "rp2350-uart: an RP2350's UART boot ROM on --port, then rpmsg over the serial link",
    )
    p.add_argument("--board", metavar="FILE", help="board description (TOML) for --platform devmem")
    p.add_argument("--port", help="--platform rp2350-uart: serial port or pyserial URL (/dev/ttyUSB0, socket://h:p)")
    send_arg(p, "send TEXT to CHANNEL and print the reply (repeatable)")
    p.add_argument("--stdin", action="store_true", help="also send lines 'CHANNEL TEXT' read from stdin")
    p.add_argument("--trace", action="store_true", help="print the trace buffers before stopping")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for channels and replies")
    p.add_argument(
        "--rx-size",
        type=int_arg,
        default=DEFAULT_BUFFER_SIZE,
        help="bytes per rpmsg buffer the firmware sends into (default Linux's 512; up to 64 KiB and more)",
    )
    p.add_argument(
        "--tx-size",
        type=int_arg,
        default=DEFAULT_BUFFER_SIZE,
        help="bytes per rpmsg buffer the host sends in (default 512); a message carries min(size - 16, 65535)",
    )
    p.add_argument(
        "--buffers",
        type=int_arg,
        default=LINUX_MAX_BUFFERS,
        help="the most rpmsg buffers, both directions together (default Linux's 512; fewer make room for big ones)",
    )
    p.set_defaults(func=cmd_load)


def cmd_load(args: argparse.Namespace) -> int:
    from remoteproc.session import make_platform, parse_send, run_session, stdin_sends

    sends = [parse_send(item) for item in args.send]
    if args.stdin:
        sends += stdin_sends()
    if args.platform == "rp2350-uart":
        from remoteproc.platforms.rp2350 import uart_session

        if not args.port:
            raise UsageError("--platform rp2350-uart needs --port (a serial port or pyserial URL)")
        if (args.rx_size, args.tx_size, args.buffers) != (DEFAULT_BUFFER_SIZE, DEFAULT_BUFFER_SIZE, LINUX_MAX_BUFFERS):
            raise UsageError(
                "--rx-size/--tx-size/--buffers: the rp2350-uart firmware's layout is fixed (512-byte buffers)"
            )
        result = uart_session(
            Path(args.firmware),
            args.port,
            sends,
            timeout=args.timeout,
            progress=progress_for(args),
            on_note=note,
            say=say_for(args),
        )
    else:
        result = run_session(
            Path(args.firmware),
            make_platform(args.platform, args.board),
            sends,
            timeout=args.timeout,
            show_trace=args.trace,
            progress=progress_for(args),
            say=say_for(args),
            rx_size=args.rx_size,
            tx_size=args.tx_size,
            buffers=args.buffers,
        )
    if args.json:
        print(json.dumps(session_json(result), indent=2))
    return EXIT_OK
