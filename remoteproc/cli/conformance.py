"""``rproc conformance``: the rpmsg conformance scenarios against a peer (docs/conformance.md). Which peer, and
so which role rproc plays, is remoteproc.conformance.select; linux-remoteproc's own catalogue is
remoteproc.conformance.linux.remoteproc_peer. This module lists, runs and reports."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from remoteproc.cli.common import EXIT_FAILURE, EXIT_OK, UsageError, write_output

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers
    from remoteproc.conformance.report import Report, Result

# every --peer, in the order --help lists them; which role rproc plays against each is
# remoteproc.conformance.select's (imported when the command runs: the suite is not loaded for other commands)
PEERS = (
    "rproc-remote",
    "openamp-remote",
    "firmware",
    "rproc-host",
    "openamp-host",
    "linux",
    "linux-remoteproc",
    "rpmsg-lite-remote",
    "rpmsg-lite-master",
)


def add_conformance(sub: Subparsers) -> None:
    p = sub.add_parser("conformance", help="run the rpmsg conformance scenarios against a remote (rproc as host)")
    p.add_argument(
        "--peer",
        choices=PEERS,
        default="rproc-remote",
        help="rproc as host against: rproc's remote in another process (default), a program playing OpenAMP's "
        "Linux-userspace remote (--command), a firmware on the emulated board; rproc as remote against: rproc's "
        "host in another process, a program playing OpenAMP's host (--command), the Linux kernel's rpmsg in "
        "User-Mode Linux (built on first use, a few minutes); linux-remoteproc: Linux's own remoteproc core in "
        "User-Mode Linux loads and boots a firmware for a remote on the host (--kernel, --remote); rpmsg-lite-remote, "
        "rpmsg-lite-master: a program (--command, the shm name appended) playing RPMsg-Lite's remote or master on "
        "rproc's shm profile with RPMsg-Lite's layout (docs/conformance.md, \"Peer programs\")",
    )
    p.add_argument(
        "--break",
        dest="break_mode",
        help="rproc-remote, rproc-host, linux-remoteproc: misbehave on purpose (see --list)",
    )
    p.add_argument("--kernel", choices=("6.1", "6.12"), default="6.1", help="linux-remoteproc: which Linux")
    p.add_argument(
        "--remote",
        choices=("c", "python", "qemu"),
        default="c",
        help="linux-remoteproc: the firmware's C rpmsg library (default), rproc's Python remote, or the emulated "
        "Cortex-M33 (not built yet: every scenario n/a)",
    )
    p.add_argument(
        "--command",
        help="openamp-remote: the remote's command line (it creates --shm, listens on --event); openamp-host: the "
        "host's (rproc creates both first); rpmsg-lite-remote/-master: the program, run with the shm name appended",
    )
    # default: OpenAMP's fixed paths (transports.openamp)
    p.add_argument("--shm", help="openamp-remote: the shared file")
    p.add_argument("--event", help="openamp-remote: the kick socket")
    p.add_argument(
        "--no-shutdown-message",
        action="store_true",
        help="openamp-remote: end by closing only (default: send OpenAMP's echo-demo SHUTDOWN_MSG first)",
    )
    p.add_argument(
        "--isolate",
        action="store_true",
        help="openamp-remote: run the command in its own mount namespace with private /tmp and /dev/shm (its fixed "
        "paths then meet no other pair's; needs unshare and root)",
    )
    p.add_argument("--firmware", help="firmware: the ELF (default: the example firmware, services.elf)")
    p.add_argument("--only", help="comma-separated scenario names")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per wait (default 5)")
    p.add_argument("--list", action="store_true", help="list the scenarios and break modes")
    p.add_argument("--junit", help="write a JUnit XML report here")
    p.add_argument("--json-file", help="write the JSON report here")
    p.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    p.set_defaults(func=cmd_conformance)


def _stderr_progress(text: str) -> None:
    print(f"rproc: {text}", file=sys.stderr)


def cmd_conformance(args: argparse.Namespace) -> int:
    from remoteproc.conformance import run, run_remote_role
    from remoteproc.conformance.select import (
        HOSTS,
        LINUX_REMOTEPROC,
        PeerOptions,
        SelectionError,
        host_peer,
        remote_peer,
    )

    if args.peer == LINUX_REMOTEPROC:
        return _linux_remoteproc(args)
    if args.list:
        return _list(args.json)
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    options = PeerOptions(
        break_mode=args.break_mode or "",
        command=args.command,
        shm=args.shm,
        event=args.event,
        shutdown_message=not args.no_shutdown_message,
        isolate=args.isolate,
        firmware=Path(args.firmware) if args.firmware else None,
        only=only,
        progress=_stderr_progress,
    )
    if args.peer in HOSTS:
        try:
            host = host_peer(args.peer, options)
        except SelectionError as exc:
            raise UsageError(str(exc)) from None
        return _finish(args, run_remote_role(host, timeout=args.timeout))
    try:
        peer = remote_peer(args.peer, options)
    except SelectionError as exc:
        raise UsageError(str(exc)) from None
    try:
        report = run(peer, only=only, timeout=args.timeout, progress=_shower(args, 26))
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _finish(args, report, shown=True)


def _list(as_json: bool) -> int:
    from remoteproc.conformance import BREAKS, CATALOGUE, HOST_BREAKS, LIFECYCLE, REMOTE_CATALOGUE

    if as_json:
        listing = {
            "host_role": [{"name": s.name, "rule": s.rule} for s in CATALOGUE + LIFECYCLE],
            "remote_role": [{"name": r.name, "rule": r.rule} for r in REMOTE_CATALOGUE],
            "breaks": dict(sorted(BREAKS.items())),
            "host_breaks": dict(sorted(HOST_BREAKS.items())),
        }
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    print("rproc as host, against a remote (--peer rproc-remote, openamp-remote, rpmsg-lite-remote, firmware):")
    for s in CATALOGUE + LIFECYCLE:
        print(f"  {s.name:<26} {s.rule}")
    print("rproc as remote, against a host (--peer rproc-host, openamp-host, rpmsg-lite-master, linux):")
    for r in REMOTE_CATALOGUE:
        print(f"  {r.name:<26} {r.rule}")
    print("\nbreak modes of --peer rproc-remote (each makes a scenario fail on purpose):")
    for name, what in sorted(BREAKS.items()):
        print(f"  {name:<18} {what}")
    print("break modes of --peer rproc-host:")
    for name, what in sorted(HOST_BREAKS.items()):
        print(f"  {name:<18} {what}")
    return EXIT_OK


def _linux_remoteproc(args: argparse.Namespace) -> int:
    from remoteproc.conformance.linux.remoteproc_peer import BOOTS as LINUX_BOOTS
    from remoteproc.conformance.linux.remoteproc_peer import BREAKS as LINUX_BREAKS
    from remoteproc.conformance.linux.remoteproc_peer import CATALOGUE as LINUX_CATALOGUE
    from remoteproc.conformance.linux.remoteproc_peer import run_catalogue

    if args.list and args.json:
        listing = {
            "boots": {b.name: b.what for b in LINUX_BOOTS.values()},
            "scenarios": [{"name": s.name, "rule": s.rule, "boot": s.boot} for s in LINUX_CATALOGUE],
            "breaks": {n: {"what": k.what, "fails": sorted(k.fails)} for n, k in sorted(LINUX_BREAKS.items())},
        }
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    if args.list:
        print("Linux's remoteproc core as a peer (--peer linux-remoteproc), scenario [the boot it is judged on]:")
        for s in LINUX_CATALOGUE:
            print(f"  {s.name:<28} [{s.boot}] {s.rule}")
        print("boots (one guest boot each, shared by its scenarios):")
        for b in LINUX_BOOTS.values():
            print(f"  {b.name:<28} {b.what}")
        print("break modes of --peer linux-remoteproc (the scenarios each must fail):")
        for name, k in sorted(LINUX_BREAKS.items()):
            print(f"  {name:<28} {k.what}: {', '.join(sorted(k.fails))}")
        return EXIT_OK
    if args.break_mode and args.break_mode not in LINUX_BREAKS:
        raise UsageError(f"no break mode {args.break_mode!r} for linux-remoteproc: {', '.join(sorted(LINUX_BREAKS))}")
    only = [name.strip() for name in args.only.split(",")] if args.only else None
    try:
        report = run_catalogue(
            args.kernel,
            args.remote,
            break_mode=args.break_mode or "",
            only=only,
            progress=_stderr_progress,
            on_result=_shower(args, 28),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _finish(args, report, shown=True)


def _shower(args: argparse.Namespace, width: int) -> Callable[[Result], None]:
    """One line per scenario as its result comes (not with --json)."""

    def show(result: Result) -> None:
        if not args.json:
            print(f"{result.outcome.value.upper():<5} {result.scenario:<{width}} {result.evidence}", flush=True)

    return show


def _finish(args: argparse.Namespace, report: Report, *, shown: bool = False) -> int:
    if args.json:
        print(report.to_json())
    elif shown:
        print()
        print(report.table().splitlines()[-1])
    else:
        print(report.table())
    if args.junit:
        write_output(args.junit, report.to_junit().encode())
    if args.json_file:
        write_output(args.json_file, report.to_json().encode())
    return EXIT_OK if report.passed else EXIT_FAILURE
