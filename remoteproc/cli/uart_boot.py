"""``rproc uart-boot``: an RP2350 loaded through its UART boot ROM (remoteproc.platforms.rp2350.uart_boot)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_OK, note, progress_for, to_stderr

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers


def add_uart_boot(sub: Subparsers) -> None:
    p = sub.add_parser(
        "uart-boot", help="load a firmware into an RP2350's SRAM through its UART boot ROM, verify it, run it"
    )
    p.add_argument(
        "firmware", help="an ELF linked at 0x20000000 (an IMAGE_DEF is added in its first 4 KiB if it has none)"
    )
    p.add_argument("--port", required=True, help="serial port or pyserial URL (/dev/ttyUSB0, socket://h:p, uart:...)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the splash and each answer")
    p.add_argument("--no-verify", action="store_true", help="skip reading the image back")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_uart_boot)


def cmd_uart_boot(args: argparse.Namespace) -> int:
    from remoteproc.platforms.rp2350 import SRAM_BASE, uart_boot

    notes: list[str] = []

    def keep_note(text: str) -> None:
        notes.append(text)
        note(text)

    booted = uart_boot(
        Path(args.firmware),
        args.port,
        timeout=args.timeout,
        verify=not args.no_verify,
        progress=progress_for(args),
        on_note=keep_note,
        say=to_stderr,
    )
    if args.json:
        out = {
            "port": booted.port,
            "baud": booted.baud,
            "address": f"{SRAM_BASE:#x}",
            "size": booted.size,
            "verified": not args.no_verify,
            "executing": True,
            "notes": notes,
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"loaded {booted.size} bytes{'' if args.no_verify else ', read back and verified'}; executing")
    return EXIT_OK
