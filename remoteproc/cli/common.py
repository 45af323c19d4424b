"""What every command module shares: the exit codes, the usage error, argument types, and how output is drawn
(progress bar, notes, --json's quiet mode, output files)."""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remoteproc.errors import RemoteprocError
from resource_table import Dialect, Finding

if TYPE_CHECKING:
    from typing import TypeAlias

    from remoteproc.session import SessionResult

    # what each command module's add_* function adds its command to (build_parser's sub-commands)
    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Arguments that parse but do not make sense together."""


def int_arg(text: str) -> int:
    """An integer in decimal or 0x... (underscores allowed)."""
    try:
        return int(text.replace("_", ""), 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer (decimal or 0x...)") from None


def _dialect(text: str) -> Dialect:
    try:
        return Dialect(text)
    except ValueError:
        names = ", ".join(d.value for d in Dialect)
        raise argparse.ArgumentTypeError(f"{text!r} is not a dialect ({names})") from None


def dialect_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dialect",
        type=_dialect,
        default=Dialect.LINUX,
        help="meaning of types 4 and 5: linux (default), openamp-legacy, ti",
    )


def send_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--send CHANNEL:TEXT``, repeatable (remoteproc.session.parse_send reads it)."""
    p.add_argument("--send", action="append", default=[], metavar="CHANNEL:TEXT", help=help)


def quiet(line: str) -> None:
    """--json: the lines a person reads are not printed; the JSON at the end says it all."""


def to_stderr(line: str) -> None:
    """--json on a long command (demo, bench): what it is doing goes to stderr, stdout keeps only the JSON."""
    print(line, file=sys.stderr, flush=True)


def say_for(args: argparse.Namespace) -> Callable[[str], None]:
    """Where a session's lines go: stdout, or nowhere with --json."""
    return quiet if args.json else print


def note(text: str) -> None:
    """What a library function changed on the user's behalf (e.g. an IMAGE_DEF the RP2350 loader added)."""
    print(f"rproc: note: {text}", file=sys.stderr)


def progress_bar(done: int, total: int) -> None:
    """The CLI draws progress; the library only reports it."""
    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\rloading [{'#' * filled}{'.' * (width - filled)}] {done}/{total} bytes")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


def progress_for(args: argparse.Namespace) -> Callable[[int, int], None] | None:
    """The progress bar on a terminal, and not with --json."""
    return progress_bar if sys.stderr.isatty() and not args.json else None


def findings_lines(findings: Sequence[Finding]) -> list[str]:
    if not findings:
        return []
    return ["  findings:", *(f"    {f}" for f in findings)]


def session_json(result: SessionResult) -> dict[str, Any]:
    """A session's result as --json prints it."""
    return {
        "channels": {name: f"{addr:#x}" for name, addr in result.channels.items()},
        "replies": [{"channel": c, "reply": r.hex() if r is not None else None} for c, r in result.replies],
        "trace": result.trace,
    }


def write_svg(path: str, svg: str) -> None:
    try:
        Path(path).write_text(svg)
    except OSError as exc:
        raise RemoteprocError(f"{path}: cannot write the picture: {exc.strerror}") from None


def write_output(target: str, data: bytes) -> None:
    """Write an output file ('-': standard output). Opened without blocking, so a FIFO no process reads is an
    error at once instead of a hang; once open, the write blocks as usual."""
    if target == "-":
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
        return
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NONBLOCK | os.O_CLOEXEC, 0o666)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise RemoteprocError(f"{target}: a FIFO no process reads (start its reader first)") from None
        raise RemoteprocError(f"{target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            os.set_blocking(fd, True)
            f.write(data)
    except OSError as exc:
        raise RemoteprocError(f"{target}: {exc.strerror}") from None
