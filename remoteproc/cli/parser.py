"""The ``rproc`` argument parser: the global options, then each command as its module adds it, in the order
``rproc --help`` lists them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING

from remoteproc.cli import attach, conformance, demo, doctor, info, layout, linux, load, rsc, talk, trace, uart_boot
from remoteproc.version import version

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers

COMMANDS: tuple[Callable[[Subparsers], None], ...] = (
    demo.add_demo,
    load.add_load,
    talk.add_ping,
    talk.add_send,
    talk.add_echo,
    talk.add_listen,
    demo.add_bench,
    attach.add_attach,
    linux.add_status,
    linux.add_start,
    linux.add_stop,
    trace.add_trace,
    info.add_info,
    rsc.add_rsc,
    conformance.add_conformance,
    uart_boot.add_uart_boot,
    doctor.add_doctor,
    layout.add_layout,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rproc", description="Load firmware and talk to remote processors the way Linux remoteproc and OpenAMP do."
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv debug, -vvv every rpmsg message)"
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--spy", metavar="FILE", help="trace every kick and rpmsg message of the session to FILE (-: stderr)"
    )
    parser.add_argument("--version", action="version", version=f"rproc {version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in COMMANDS:
        add(sub)
    return parser
