"""``rproc status``, ``start``, ``stop``: the kernel's remote processors (remoteproc.platforms.linux); ``status
--sessions`` lists rproc's own sessions instead (remoteproc/cli/sessions.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remoteproc.cli.common import EXIT_FAILURE, EXIT_OK

if TYPE_CHECKING:
    from remoteproc.cli.common import Subparsers
    from remoteproc.lifecycle import State
    from remoteproc.platforms.linux import LinuxRemoteproc


def add_status(sub: Subparsers) -> None:
    p = sub.add_parser("status", help="the kernel's remote processors and their states (/sys/class/remoteproc)")
    p.add_argument("--root", default="/", help="another tree than / (a fake sysfs for tests)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--sessions", action="store_true", help="rproc's own running sessions instead, with device state")
    p.set_defaults(func=cmd_status)


def add_start(sub: Subparsers) -> None:
    p = sub.add_parser("start", help="start one of the kernel's remote processors, optionally with a firmware")
    p.add_argument("rproc", help="its index (0), remoteprocN, or its name")
    p.add_argument("firmware", nargs="?", help="copy this file where the kernel loads firmware from, and use it")
    p.add_argument("--root", default="/")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_linux_start)


def add_stop(sub: Subparsers) -> None:
    p = sub.add_parser("stop", help="stop one of the kernel's remote processors")
    p.add_argument("rproc", help="its index (0), remoteprocN, or its name")
    p.add_argument("--root", default="/")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_linux_stop)


def cmd_status(args: argparse.Namespace) -> int:
    from remoteproc.platforms.linux import LinuxRemoteproc

    if args.sessions:
        from remoteproc.cli.sessions import show_sessions

        return show_sessions(args)

    rprocs = [LinuxRemoteproc(d, Path(args.root)) for d in LinuxRemoteproc.list(args.root)]
    if args.json:
        print(json.dumps([_linux_rproc_json(rp, rp.state) for rp in rprocs], indent=2))
        return EXIT_OK
    if not rprocs:
        print(f"no remote processors under {Path(args.root) / 'sys/class/remoteproc'}")
        return EXIT_OK
    for rp in rprocs:
        print(f"remoteproc{rp.device.index}  {rp.device.name:<20} {rp.state.value}")
    return EXIT_OK


def _find(args: argparse.Namespace) -> LinuxRemoteproc:
    from remoteproc.platforms.linux import LinuxRemoteproc

    return LinuxRemoteproc.find(int(args.rproc) if args.rproc.isdigit() else args.rproc, args.root)


def cmd_linux_start(args: argparse.Namespace) -> int:
    from remoteproc.lifecycle import State

    rp = _find(args)
    name = None
    if args.firmware:
        name = rp.load(args.firmware)
        if not args.json:
            print(f"firmware {name} -> {rp.firmware_dir()}")
    rp.start()
    state = rp.wait_state(State.RUNNING, timeout=args.timeout)
    if args.json:
        out = _linux_rproc_json(rp, state)
        out["firmware"] = {"name": name, "dir": str(rp.firmware_dir())} if name is not None else None
        print(json.dumps(out, indent=2))
    else:
        print(f"remoteproc{rp.device.index} ({rp.device.name}): {state.value}")
    return EXIT_OK if state is State.RUNNING else EXIT_FAILURE


def cmd_linux_stop(args: argparse.Namespace) -> int:
    from remoteproc.lifecycle import State

    rp = _find(args)
    rp.stop()
    state = rp.wait_state(State.OFFLINE, timeout=args.timeout)
    if args.json:
        print(json.dumps(_linux_rproc_json(rp, state), indent=2))
    else:
        print(f"remoteproc{rp.device.index} ({rp.device.name}): {state.value}")
    return EXIT_OK if state is State.OFFLINE else EXIT_FAILURE


def _linux_rproc_json(rp: LinuxRemoteproc, state: State) -> dict[str, Any]:
    """One kernel remoteproc, as `rproc status --json` lists it and `start`/`stop --json` report it."""
    return {"index": rp.device.index, "name": rp.device.name, "state": state.value}
