""":func:`main`: parse, run the command, and decide the exit code — the one place that maps errors to codes."""

from __future__ import annotations

import argparse
import contextlib
import logging
import sys
import traceback
from collections.abc import Sequence

from remoteproc import children
from remoteproc.cli.common import EXIT_FAILURE, EXIT_OK, EXIT_USAGE, UsageError
from remoteproc.cli.parser import build_parser
from remoteproc.errors import RemoteprocError
from resource_table import ResourceTableError

SESSION_COMMANDS = frozenset({"load", "ping", "send", "echo", "listen", "trace", "attach", "demo", "bench"})


def _error_text(exc: BaseException) -> str | None:
    """The one line a user reads for an error of one of our packages (each package's root), or ``None`` for
    anything else (a bug: its traceback shows). rpmsg, virtio and transport errors say which layer failed.
    Imported here, not at the top: ``rproc info`` and ``rproc rsc`` need none of them."""
    from rpmsg.errors import RpmsgError, RpmsgTimeout
    from transports.errors import TransportError
    from virtio.errors import VirtioError

    layers: tuple[tuple[type[Exception], str], ...] = (
        (RemoteprocError, ""),
        (ResourceTableError, ""),
        (RpmsgTimeout, "rpmsg: timed out: "),
        (RpmsgError, "rpmsg: "),
        (VirtioError, "virtio: "),
        (TransportError, "transport: "),
    )
    return next((f"{prefix}{exc}" for root, prefix in layers if isinstance(exc, root)), None)


def _listed(args: argparse.Namespace, argv: Sequence[str] | None) -> contextlib.AbstractContextManager[object]:
    """Session commands answer `rproc status --sessions` while they run (remoteproc/sessions.py)."""
    if args.command not in SESSION_COMMANDS:
        return contextlib.nullcontext()
    from remoteproc import sessions

    return sessions.serving(list(sys.argv[1:] if argv is None else argv))


def _spied(args: argparse.Namespace) -> int:
    """``--spy FILE``: the command with every kick and rpmsg message of its sessions traced (remoteproc/spy.py)."""
    from remoteproc import spy

    try:
        target = spy.open_target(args.spy)
    except OSError as exc:
        raise UsageError(f"--spy {args.spy}: {exc.strerror}") from None
    with target as stream, spy.spying(stream):
        return int(args.func(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage and 0 on --help
        return int(exc.code) if isinstance(exc.code, int) else EXIT_USAGE
    level = (logging.WARNING, logging.INFO, logging.DEBUG, 5)[min(args.verbose, 3)]  # -vvv: every message
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        # SIGTERM and SIGHUP clean up as Ctrl-C does; session commands answer `rproc status --sessions`
        with children.unwind_on_signals(), _listed(args, argv):
            if args.spy is not None:
                return _spied(args)
            return int(args.func(args))
    except children.Terminated as exc:
        return 128 + exc.signum
    except UsageError as exc:
        print(f"rproc: usage: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `rproc info fw.elf | head`
        return EXIT_OK
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        # Every package's root: a bad file, a refused table, a timeout or a message too long for the peer's
        # buffers, a ring the peer broke, a transport that failed. One line; --debug adds the traceback.
        text = _error_text(exc)
        if text is None:
            raise
        if args.debug:
            traceback.print_exc()
        print(f"rproc: error: {text}", file=sys.stderr)
        return EXIT_FAILURE
