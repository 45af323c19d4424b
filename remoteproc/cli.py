"""The ``rproc`` command line: thin wrappers over importable functions, exit codes decided in :func:`main`.

Exit codes (docs/cli.md): 0 success; 1 an error the user can act on, one line on stderr: a file missing, not
regular or too large, a bad firmware or table, a failed check, an error of rpmsg, virtio or a transport (a
timeout, a message too long, a lost peer); 2 bad usage; 130 interrupted. Only :func:`main` maps errors to codes.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import json
import logging
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from remoteproc import children
from remoteproc.elf import ELF_MAGIC, read_bytes
from remoteproc.errors import RemoteprocError
from remoteproc.firmware import FirmwareInfo, finding_to_dict, firmware_info, info_to_dict
from remoteproc.version import version
from resource_table import (
    Dialect,
    Finding,
    Region,
    ResourceTableError,
    Severity,
    build,
    check,
    check_regions,
    load_spec,
    parse_with_spans,
    plan_layout,
    pretty,
    to_dict,
    to_v1,
    to_v2,
)
from resource_table.emit_c import emit_c
from resource_table.files import open_regular, read_regular
from resource_table.layout import DEFAULT_BUFFER_SIZE, LINUX_MAX_BUFFERS

if TYPE_CHECKING:
    from remoteproc.lifecycle import State
    from remoteproc.platforms.linux import LinuxRemoteproc

log = logging.getLogger("rproc")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Arguments that parse but do not make sense together."""


def _int(text: str) -> int:
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


# ---------------------------------------------------------------------------------------------------------
# commands


def _write_svg(path: str, svg: str) -> None:
    try:
        Path(path).write_text(svg)
    except OSError as exc:
        raise RemoteprocError(f"{path}: cannot write the picture: {exc.strerror}") from None


def cmd_info(args: argparse.Namespace) -> int:
    info = firmware_info(args.firmware, dialect=args.dialect)
    if args.svg:
        from remoteproc.memory_map import firmware_regions, render_svg

        _write_svg(args.svg, render_svg(firmware_regions(info), f"{Path(args.firmware).name}: memory map"))
    if args.json:
        print(json.dumps(info_to_dict(info), indent=2))
    else:
        print(format_info(info))
    return EXIT_FAILURE if any(f.severity is Severity.ERROR for f in info.findings) else EXIT_OK


def format_info(info: FirmwareInfo) -> str:
    elf = info.elf
    endian = "little-endian" if elf.little_endian else "big-endian"
    lines = [
        f"firmware {elf.path}",
        f"  ELF{elf.elf_class} {endian} {elf.machine} {elf.elf_type}, entry {elf.entry:#x}, {elf.file_size} bytes",
    ]
    if elf.segments:
        width = max(10, *(len(s.type_name) for s in elf.segments))
        lines.append("  segments:")
        lines.append(f"     #  {'type':<{width}}  offset      paddr       vaddr       filesz      memsz       flags")
        for s in elf.segments:
            lines.append(
                f"    {s.index:2d}  {s.type_name:<{width}}  {s.offset:#010x}  {s.paddr:#010x}  {s.vaddr:#010x}  "
                f"{s.filesz:#010x}  {s.memsz:#010x}  {s.flags_text}"
            )
    else:
        lines.append("  segments: none (not a loadable image)")
    section = elf.resource_table
    if section is None or info.table is None:
        lines.append("  resource table: none (no .resource_table section; the remote gets no resources)")
    else:
        lines.append(
            f"  {section.name}: address {section.addr:#x}, {section.size} bytes at file offset {section.offset:#x}"
        )
        lines.extend("  " + line for line in pretty(info.table, info.spans, info.table_size).splitlines())
    lines.extend(_findings_lines(info.findings))
    return "\n".join(lines)


def _findings_lines(findings: Sequence[Finding]) -> list[str]:
    if not findings:
        return []
    return ["  findings:", *(f"    {f}" for f in findings)]


def _read_table(path: str, dialect: Dialect) -> tuple[bytes, tuple[Finding, ...]]:
    """A raw table file, the .resource_table section of an ELF, or a JSON/TOML description built; with the
    findings of a check (for an ELF, also what ``info`` finds in its segments and the table's placement)."""
    if Path(path).suffix.lower() in (".json", ".toml"):
        data = build(load_spec(path))
        return data, tuple(check(data, dialect=dialect))
    try:
        with open_regular(path) as f:
            head = f.read(4)
        if head != ELF_MAGIC:
            data = read_regular(path)
            return data, tuple(check(data, dialect=dialect))
    except OSError as exc:
        raise RemoteprocError(f"{path}: {exc.strerror}") from None
    info = firmware_info(path, dialect=dialect)
    if info.elf.resource_table is None:
        raise RemoteprocError(f"{path}: has no .resource_table section")
    return read_bytes(path, info.elf.resource_table.offset, info.elf.resource_table.size), info.findings


def cmd_rsc_show(args: argparse.Namespace) -> int:
    data, findings = _read_table(args.table, args.dialect)
    table, spans = parse_with_spans(data, dialect=args.dialect)
    if args.json:
        print(json.dumps(to_dict(table, [s.offset for s in spans]), indent=2))
        return EXIT_OK
    print(pretty(table, spans, len(data)))
    for line in _findings_lines(findings):
        print(line)
    return EXIT_OK


def cmd_rsc_check(args: argparse.Namespace) -> int:
    _, findings = _read_table(args.table, args.dialect)
    failing = [f for f in findings if args.strict or f.severity is Severity.ERROR]
    mode = "strict" if args.strict else "lenient"
    if args.json:
        out = {
            "file": args.table,
            "mode": mode,
            "passed": not failing,
            "failing": len(failing),
            "findings": [finding_to_dict(f) for f in findings],
        }
        print(json.dumps(out, indent=2))
    else:
        for f in findings:
            print(f)
    if failing:
        print(f"{args.table}: {len(failing)} problem(s) fail the {mode} check", file=sys.stderr)
        return EXIT_FAILURE
    if not args.json:
        print(f"{args.table}: passes the {mode} check ({len(findings)} warning(s))")
    return EXIT_OK


def cmd_rsc_build(args: argparse.Namespace) -> int:
    table = load_spec(args.spec)
    if args.to_version == 2:
        table = to_v2(table)
    elif args.to_version == 1:
        table = to_v1(table)
    if not (args.bin or args.c or args.json):
        raise UsageError("say what to write: --bin FILE, --c FILE or --json FILE ('-' for standard output)")
    blob = build(table, align=args.align)
    if args.bin:
        _write(args.bin, blob)
    if args.c:
        _write(args.c, emit_c(table, symbol=args.symbol, align=args.align).encode())
    if args.json:
        _write(args.json, (json.dumps(to_dict(table), indent=2) + "\n").encode())
    for f in check(blob):
        print(f, file=sys.stderr)
    return EXIT_OK


def _write(target: str, data: bytes) -> None:
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


def cmd_layout(args: argparse.Namespace) -> int:
    layout = plan_layout(
        base=args.base,
        vring_num=args.num,
        vring_align=args.align,
        vring_count=args.vrings,
        rx_count=args.rx_count,
        tx_count=args.tx_count,
        rx_size=args.rx_size,
        tx_size=args.tx_size,
        buffer_align=args.buffer_align,
    )
    window = Region("window", args.base, args.window_size) if args.window_size is not None else None
    findings = check_regions(layout.regions, window=window)
    if args.svg:
        from remoteproc.memory_map import layout_regions, render_svg

        shown = (window.start, window.size) if window is not None else None
        _write_svg(args.svg, render_svg(layout_regions(layout, shown), f"rpmsg layout from {layout.base:#x}"))
    if args.json:
        out: dict[str, Any] = {
            "base": f"{layout.base:#x}",
            "end": f"{layout.end:#x}",
            "total": layout.total,
            "regions": [
                {"name": r.name, "start": f"{r.start:#x}", "size": r.size, "end": f"{r.end:#x}"} for r in layout.regions
            ],
            "vrings": [
                {"da": f"{v.da:#x}", "align": f"{v.align:#x}", "num": v.num, "notifyid": v.notifyid}
                for v in layout.vring_entries()
            ],
            "problems": [f.message for f in findings],
        }
        carveout = layout.buffer_carveout()
        out["carveout"] = {"name": carveout.name, "da": f"{carveout.da:#x}", "len": carveout.len}
        print(json.dumps(out, indent=2))
    else:
        print(f"layout from {layout.base:#x}: {layout.total:#x} bytes ({layout.total} B), ends at {layout.end:#x}")
        for r in layout.regions:
            print(f"  {r.name:<11} {r.start:#010x} .. {r.end:#010x}  {r.size:#9x} B")
        print(
            f"  vrings: num {layout.vring_num}, align {layout.vring_align:#x}; "
            f"buffers: {layout.rx_count} x {layout.rx_size} B rx, {layout.tx_count} x {layout.tx_size} B tx"
        )
        carveout = layout.buffer_carveout()
        print(f"  resource table: carveout {carveout.name!r} da {carveout.da:#x} len {carveout.len:#x}")
        for f in findings:
            print(f"  {f}")
    return EXIT_FAILURE if findings else EXIT_OK


def cmd_demo(args: argparse.Namespace) -> int:
    from remoteproc.demo import DEFAULT_FIRMWARE, run_demo

    try:
        report = run_demo(
            Path(args.firmware) if args.firmware else DEFAULT_FIRMWARE,
            platform_name=args.platform,
            rounds=args.rounds,
            stream=args.messages,
            say=_to_stderr if args.json else print,
        )
    except FileNotFoundError as exc:
        raise RemoteprocError(str(exc)) from None
    if args.json:
        print(json.dumps(report.to_dict(), indent=2))
    return EXIT_OK


def cmd_load(args: argparse.Namespace) -> int:
    from remoteproc.session import make_platform, parse_send, run_session, stdin_sends

    sends = [parse_send(item) for item in args.send]
    if args.stdin:
        sends += stdin_sends()
    if args.platform == "rp2350-uart":
        return _load_rp2350(args, sends)
    result = run_session(
        Path(args.firmware),
        make_platform(args.platform, args.board),
        sends,
        timeout=args.timeout,
        show_trace=args.trace,
        progress=_progress_bar if sys.stderr.isatty() and not args.json else None,
        say=_quiet if args.json else print,
        rx_size=args.rx_size,
        tx_size=args.tx_size,
        buffers=args.buffers,
    )
    if args.json:
        print(json.dumps(_session_json(result), indent=2))
    return EXIT_OK


def _load_rp2350(args: argparse.Namespace, sends: list[tuple[str, bytes]]) -> int:
    """Boot ROM load over the UART, run, then talk rpmsg over the serial link on the same port."""
    import time

    from remoteproc.rp2350 import boot_and_connect
    from remoteproc.session import SessionResult
    from rpmsg.errors import RpmsgError

    if not args.port:
        raise UsageError("--platform rp2350-uart needs --port (a serial port or pyserial URL)")
    if (args.rx_size, args.tx_size, args.buffers) != (DEFAULT_BUFFER_SIZE, DEFAULT_BUFFER_SIZE, LINUX_MAX_BUFFERS):
        raise UsageError("--rx-size/--tx-size/--buffers: the rp2350-uart firmware's layout is fixed (512-byte buffers)")
    link, device = boot_and_connect(
        Path(args.firmware),
        args.port,
        progress=_progress_bar if sys.stderr.isatty() and not args.json else None,
        timeout=args.timeout,
        on_note=_note,
    )
    say = _quiet if args.json else print
    try:
        deadline = time.monotonic() + args.timeout
        wanted = {channel for channel, _ in sends}
        while not wanted <= set(device.channels()) and time.monotonic() < deadline:
            device.process()
            time.sleep(0.01)
        result = SessionResult(channels=dict(device.channels()))
        say(f"channels: {', '.join(f'{n} at {a:#x}' for n, a in sorted(result.channels.items())) or 'none'}")
        for channel, text in sends:
            try:
                with device.open(channel, timeout=max(0.0, deadline - time.monotonic())) as ep:
                    ep.settimeout(args.timeout)
                    ep.send(text)
                    reply = ep.recv()
                    result.replies.append((channel, reply))
                    say(f"{channel} <- {reply!r}")
            except RpmsgError as exc:
                raise RemoteprocError(f"{channel}: {exc}") from None
    finally:
        device.close()
        link.close()
    if args.json:
        print(json.dumps(_session_json(result), indent=2))
    return EXIT_OK


def cmd_ping(args: argparse.Namespace) -> int:
    from remoteproc.session import make_platform, ping

    report = ping(
        Path(args.firmware),
        make_platform(args.platform, args.board),
        channel=args.channel,
        count=args.count,
        size=args.size,
        timeout=args.timeout,
        say=_quiet if args.json else print,
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
        say=_quiet if args.json else print,
    )
    if args.json:
        print(json.dumps(_session_json(result), indent=2))
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
        say=_quiet if args.json else print,
    )
    if args.json:
        print(json.dumps({"channel": args.channel, "messages": [m.hex() for m in got]}, indent=2))
    return EXIT_OK


def _quiet(line: str) -> None:
    """--json: the lines a person reads are not printed; the JSON at the end says it all."""


def _to_stderr(line: str) -> None:
    """--json on a long command (demo, bench): what it is doing goes to stderr, stdout keeps only the JSON."""
    print(line, file=sys.stderr, flush=True)


def _session_json(result: Any) -> dict[str, Any]:
    return {
        "channels": {name: f"{addr:#x}" for name, addr in result.channels.items()},
        "replies": [{"channel": c, "reply": r.hex() if r is not None else None} for c, r in result.replies],
        "trace": result.trace,
    }


def cmd_attach(args: argparse.Namespace) -> int:
    from remoteproc.session import attach_session, make_platform, parse_send

    result = attach_session(
        make_platform("devmem", args.board),
        [parse_send(item) for item in args.send],
        timeout=args.timeout,
        table=args.table,
        say=_quiet if args.json else print,
    )
    if args.json:
        out = _session_json(result)
        del out["trace"]  # attaching reads no trace buffer
        print(json.dumps({**out, "detached": True}, indent=2))
    return EXIT_OK


def cmd_doctor(args: argparse.Namespace) -> int:
    from remoteproc.doctor import diagnose, format_report

    report = diagnose(args.root)
    print(json.dumps(report.to_dict(), indent=2) if args.json else format_report(report))
    return EXIT_OK


def cmd_status(args: argparse.Namespace) -> int:
    from remoteproc.platforms.linux import LinuxRemoteproc

    if args.sessions:
        return _status_sessions(args)

    devices = LinuxRemoteproc.list(args.root)
    if args.json:
        print(
            json.dumps(
                [
                    {"index": d.index, "name": d.name, "state": LinuxRemoteproc(d, Path(args.root)).state.value}
                    for d in devices
                ],
                indent=2,
            )
        )
        return EXIT_OK
    if not devices:
        print(f"no remote processors under {Path(args.root) / 'sys/class/remoteproc'}")
        return EXIT_OK
    for d in devices:
        print(f"remoteproc{d.index}  {d.name:<20} {LinuxRemoteproc(d, Path(args.root)).state.value}")
    return EXIT_OK


def _status_sessions(args: argparse.Namespace) -> int:
    """rproc's own running sessions (remoteproc/sessions.py), each with its remotes' rpmsg state."""
    from remoteproc import sessions

    found = sessions.list_sessions()
    if args.json:
        print(json.dumps(found, indent=2))
        return EXIT_OK
    if not found:
        print(f"no rproc sessions running (sockets in {sessions.runtime_dir()})")
    for s in found:
        if "error" in s:
            print(f"{s['socket']}: {s['error']}")
            continue
        print(f"pid {s['pid']}: rproc {' '.join(s['command'])}")
        for r in s["remotes"]:
            print(f"  {r['platform']} {r['firmware']} {r['state']}")
            dev = r.get("rpmsg")
            if dev and "vrings" in dev:
                chans = ", ".join(f"{n} at {a:#x}" for n, a in dev["channels"].items()) or "none"
                print(f"    channels: {chans}; endpoints: {len(dev['endpoints'])}")
                for v in dev["vrings"]:
                    broken = f" BROKEN: {v['error']}" if v["broken"] else ""
                    print(
                        f"    vring{v['index']} num {v['num']} avail {v['avail']['idx']} used {v['used']['idx']} "
                        f"in flight {v['in_flight']}{broken}"
                    )
    return EXIT_OK


def cmd_linux_start(args: argparse.Namespace) -> int:
    from remoteproc.lifecycle import State
    from remoteproc.platforms.linux import LinuxRemoteproc

    rp = LinuxRemoteproc.find(int(args.rproc) if args.rproc.isdigit() else args.rproc, args.root)
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


def _linux_rproc_json(rp: LinuxRemoteproc, state: State) -> dict[str, Any]:
    """One kernel remoteproc after start/stop, as `rproc status --json` lists it."""
    return {"index": rp.device.index, "name": rp.device.name, "state": state.value}


def cmd_linux_stop(args: argparse.Namespace) -> int:
    from remoteproc.lifecycle import State
    from remoteproc.platforms.linux import LinuxRemoteproc

    rp = LinuxRemoteproc.find(int(args.rproc) if args.rproc.isdigit() else args.rproc, args.root)
    rp.stop()
    state = rp.wait_state(State.OFFLINE, timeout=args.timeout)
    if args.json:
        print(json.dumps(_linux_rproc_json(rp, state), indent=2))
    else:
        print(f"remoteproc{rp.device.index} ({rp.device.name}): {state.value}")
    return EXIT_OK if state is State.OFFLINE else EXIT_FAILURE


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


def cmd_conformance(args: argparse.Namespace) -> int:
    from remoteproc.conformance import (
        BREAKS,
        CATALOGUE,
        HOST_BREAKS,
        LIFECYCLE,
        OPENAMP_SHUTDOWN,
        REMOTE_CATALOGUE,
        FirmwarePeer,
        HostPeer,
        OpenAmpHostPeer,
        OpenAmpRemotePeer,
        Peer,
        Result,
        RpmsgLiteMasterPeer,
        RpmsgLiteRemotePeer,
        RprocHostPeer,
        RprocRemotePeer,
        run,
        run_remote_role,
    )

    if args.peer == "linux-remoteproc":
        return _conformance_linux_remoteproc(args)
    if args.list and args.json:
        listing = {
            "host_role": [{"name": s.name, "rule": s.rule} for s in CATALOGUE + LIFECYCLE],
            "remote_role": [{"name": r.name, "rule": r.rule} for r in REMOTE_CATALOGUE],
            "breaks": dict(sorted(BREAKS.items())),
            "host_breaks": dict(sorted(HOST_BREAKS.items())),
        }
        print(json.dumps(listing, indent=2))
        return EXIT_OK
    if args.list:
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
    if args.break_mode and args.peer not in ("rproc-remote", "rproc-host"):
        raise UsageError("--break applies to --peer rproc-remote, rproc-host and linux-remoteproc only")
    if args.peer in ("openamp-remote", "openamp-host", "rpmsg-lite-remote", "rpmsg-lite-master") and not args.command:
        raise UsageError(f"--peer {args.peer} needs --command (the program that plays the other side)")
    peer: Peer
    if args.peer in ("rproc-host", "openamp-host", "linux", "rpmsg-lite-master"):
        if args.only:
            raise UsageError("--only selects host-role scenarios; the remote role judges all of them in one session")
        host: HostPeer
        if args.peer == "rproc-host":
            host = RprocHostPeer(args.break_mode or "")
        elif args.peer == "openamp-host":
            host = OpenAmpHostPeer(args.command, shm=args.shm, event=args.event)
        elif args.peer == "rpmsg-lite-master":
            host = RpmsgLiteMasterPeer(args.command)
        else:
            from remoteproc.conformance.linux.peer import LinuxHostPeer

            host = LinuxHostPeer(progress=lambda text: print(f"rproc: {text}", file=sys.stderr))
        report = run_remote_role(host, timeout=args.timeout)
        return _finish_conformance(args, report)
    if args.peer == "rproc-remote":
        peer = RprocRemotePeer(args.break_mode or "")
    elif args.peer == "rpmsg-lite-remote":
        peer = RpmsgLiteRemotePeer(args.command)
    elif args.peer == "openamp-remote":
        shutdown = None if args.no_shutdown_message else OPENAMP_SHUTDOWN
        peer = OpenAmpRemotePeer(
            args.command, shm=args.shm, event=args.event, shutdown_message=shutdown, isolate=args.isolate
        )
    else:
        from remoteproc.demo import DEFAULT_FIRMWARE

        firmware = Path(args.firmware) if args.firmware else DEFAULT_FIRMWARE
        if not firmware.is_file():
            what = "--firmware" if args.firmware else "the example firmware (not in this install)"
            raise UsageError(f"--peer firmware: {what} {firmware} is not a file: give --firmware FW.elf")
        peer = FirmwarePeer(firmware)

    def show(result: Result) -> None:
        if not args.json:
            print(f"{result.outcome.value.upper():<5} {result.scenario:<26} {result.evidence}", flush=True)

    only = [name.strip() for name in args.only.split(",")] if args.only else None
    try:
        report = run(peer, only=only, timeout=args.timeout, progress=show)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _finish_conformance(args, report, shown=True)


def _conformance_linux_remoteproc(args: argparse.Namespace) -> int:
    from remoteproc.conformance.linux import more_scenarios  # noqa: F401  (completes the registry)
    from remoteproc.conformance.linux.remoteproc_peer import BOOTS as LINUX_BOOTS
    from remoteproc.conformance.linux.remoteproc_peer import BREAKS as LINUX_BREAKS
    from remoteproc.conformance.linux.remoteproc_peer import CATALOGUE as LINUX_CATALOGUE
    from remoteproc.conformance.linux.remoteproc_peer import run_catalogue
    from remoteproc.conformance.report import Result

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

    def show(result: Result) -> None:
        if not args.json:
            print(f"{result.outcome.value.upper():<5} {result.scenario:<28} {result.evidence}", flush=True)

    try:
        report = run_catalogue(
            args.kernel,
            args.remote,
            break_mode=args.break_mode or "",
            only=only,
            progress=lambda text: print(f"rproc: {text}", file=sys.stderr),
            on_result=show,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    return _finish_conformance(args, report, shown=True)


def _finish_conformance(args: argparse.Namespace, report: Any, *, shown: bool = False) -> int:
    if args.json:
        print(report.to_json())
    elif shown:
        print()
        print(report.table().splitlines()[-1])
    else:
        print(report.table())
    if args.junit:
        _write(args.junit, report.to_junit().encode())
    if args.json_file:
        _write(args.json_file, report.to_json().encode())
    return EXIT_OK if report.passed else EXIT_FAILURE


def cmd_uart_boot(args: argparse.Namespace) -> int:
    import serial

    from remoteproc.rp2350 import UartBootRom, flat_image

    notes: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        _note(text)

    image = flat_image(Path(args.firmware), on_note=note)
    target, baud = (args.port, 1_000_000)
    if target.startswith("uart:"):
        from transports.uart import parse_uart_url

        target, baud = parse_uart_url(target)
    try:
        port = serial.serial_for_url(target, baudrate=baud, timeout=0.05)
    except (serial.SerialException, ValueError, OSError) as exc:
        raise RemoteprocError(f"{target}: {exc}") from None
    try:
        rom = UartBootRom(port, timeout=args.timeout)
        rom.connect(timeout=args.timeout)
        print(f"boot ROM answered on {target}; loading {len(image)} bytes at 0x20000000", file=sys.stderr)
        progress = _progress_bar if sys.stderr.isatty() and not args.json else None
        rom.load(image, progress=progress, verify=not args.no_verify)
        rom.execute()
    finally:
        port.close()
    if args.json:
        out = {
            "port": target,
            "baud": baud,
            "address": "0x20000000",
            "size": len(image),
            "verified": not args.no_verify,
            "executing": True,
            "notes": notes,
        }
        print(json.dumps(out, indent=2))
    else:
        print(f"loaded {len(image)} bytes{'' if args.no_verify else ', read back and verified'}; executing")
    return EXIT_OK


def _note(text: str) -> None:
    """What a library function changed on the user's behalf (e.g. an IMAGE_DEF the RP2350 loader added)."""
    print(f"rproc: note: {text}", file=sys.stderr)


def _progress_bar(done: int, total: int) -> None:
    """The CLI draws progress; the library only reports it."""
    width = 40
    filled = width * done // max(total, 1)
    sys.stderr.write(f"\rloading [{'#' * filled}{'.' * (width - filled)}] {done}/{total} bytes")
    if done >= total:
        sys.stderr.write("\n")
    sys.stderr.flush()


# ---------------------------------------------------------------------------------------------------------
# argument parsing


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

    def dialect_arg(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--dialect",
            type=_dialect,
            default=Dialect.LINUX,
            help="meaning of types 4 and 5: linux (default), openamp-legacy, ti",
        )

    p = sub.add_parser("demo", help="load the example firmware, start it and exchange messages with it")
    p.add_argument(
        "--platform",
        choices=("auto", "qemu", "sim"),
        default="auto",
        help="qemu: real firmware on an emulated Cortex-M33; sim: a Python remote (auto: qemu if installed)",
    )
    p.add_argument("--firmware", help="another firmware with an rpmsg vdev (default: the bundled example)")
    p.add_argument("--rounds", type=int, default=2000, help="round trips to time (default 2000)")
    p.add_argument("--messages", type=int, default=20000, help="messages to stream (default 20000)")
    p.add_argument("--json", action="store_true", help="print the report as JSON (what it does goes to stderr)")
    p.set_defaults(func=cmd_demo)

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
    p.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="CHANNEL:TEXT",
        help="send TEXT to CHANNEL and print the reply (repeatable)",
    )
    p.add_argument("--stdin", action="store_true", help="also send lines 'CHANNEL TEXT' read from stdin")
    p.add_argument("--trace", action="store_true", help="print the trace buffers before stopping")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for channels and replies")
    p.add_argument(
        "--rx-size",
        type=_int,
        default=DEFAULT_BUFFER_SIZE,
        help="bytes per rpmsg buffer the firmware sends into (default Linux's 512; up to 64 KiB and more)",
    )
    p.add_argument(
        "--tx-size",
        type=_int,
        default=DEFAULT_BUFFER_SIZE,
        help="bytes per rpmsg buffer the host sends in (default 512); a message carries min(size - 16, 65535)",
    )
    p.add_argument(
        "--buffers",
        type=_int,
        default=LINUX_MAX_BUFFERS,
        help="the most rpmsg buffers, both directions together (default Linux's 512; fewer make room for big ones)",
    )
    p.set_defaults(func=cmd_load)

    def session_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="machine-readable output")
        p.add_argument("firmware")
        p.add_argument("--platform", choices=("qemu-an505", "sim", "devmem"), default="qemu-an505")
        p.add_argument("--board", metavar="FILE", help="board description (TOML) for --platform devmem")
        p.add_argument("--timeout", type=float, default=5.0)

    p = sub.add_parser("ping", help="round trips through a firmware's echo channel, like ping(8)")
    session_args(p)
    p.add_argument("--channel", default="rpmsg-echo")
    p.add_argument("-c", "--count", type=int, default=10)
    p.add_argument("-s", "--size", type=int, default=16)
    p.set_defaults(func=cmd_ping)

    p = sub.add_parser("send", help="send messages to a firmware's channel and print the replies")
    session_args(p)
    p.add_argument("channel")
    p.add_argument("text", nargs="+")
    p.add_argument("--no-reply", action="store_true", help="do not fail when a message gets no reply")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("echo", help="alias of send: messages out, replies printed")
    session_args(p)
    p.add_argument("channel")
    p.add_argument("text", nargs="+")
    p.add_argument("--no-reply", action="store_true")
    p.set_defaults(func=cmd_send)

    p = sub.add_parser("listen", help="print what a firmware's channel sends, for some seconds")
    session_args(p)
    p.add_argument("channel")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--send", metavar="TEXT", help="send this first (to start a stream)")
    p.set_defaults(func=cmd_listen)

    p = sub.add_parser("bench", help="the demo's measurements: round trips and a stream (same as demo)")
    p.add_argument("--firmware")
    p.add_argument("--platform", choices=("auto", "qemu", "sim"), default="auto")
    p.add_argument("--rounds", type=int, default=2000)
    p.add_argument("--messages", type=int, default=20000)
    p.add_argument("--json", action="store_true", help="print the report as JSON (what it does goes to stderr)")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("attach", help="attach to a remote a bootloader started (devmem board), talk, detach")
    p.add_argument("--board", required=True, metavar="FILE", help="board description (TOML) with [attach]")
    p.add_argument("--table", type=_int, help="the live table's address (default: the board's [attach] table)")
    p.add_argument("--send", action="append", default=[], metavar="CHANNEL:TEXT")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_attach)

    p = sub.add_parser("status", help="the kernel's remote processors and their states (/sys/class/remoteproc)")
    p.add_argument("--root", default="/", help="another tree than / (a fake sysfs for tests)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--sessions", action="store_true", help="rproc's own running sessions instead, with device state")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("start", help="start one of the kernel's remote processors, optionally with a firmware")
    p.add_argument("rproc", help="its index (0), remoteprocN, or its name")
    p.add_argument("firmware", nargs="?", help="copy this file where the kernel loads firmware from, and use it")
    p.add_argument("--root", default="/")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_linux_start)

    p = sub.add_parser("stop", help="stop one of the kernel's remote processors")
    p.add_argument("rproc", help="its index (0), remoteprocN, or its name")
    p.add_argument("--root", default="/")
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_linux_stop)

    p = sub.add_parser("trace", help="run a firmware and follow its trace buffer")
    p.add_argument("firmware")
    p.add_argument("--platform", choices=("qemu-an505", "sim", "devmem"), default="qemu-an505")
    p.add_argument("--board", metavar="FILE", help="board description (TOML) for --platform devmem")
    p.add_argument("--seconds", type=float, default=2.0, help="how long to follow (default 2)")
    p.add_argument("--index", type=int, default=0, help="which trace buffer (default 0)")
    p.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="CHANNEL:TEXT",
        help="send TEXT to CHANNEL first (repeatable), e.g. to make the firmware log",
    )
    p.add_argument("--json", action="store_true", help='JSON lines: {"trace": I, "line": TEXT} per line')
    p.set_defaults(func=cmd_trace)

    p = sub.add_parser("info", help="ELF summary and resource table of a firmware file")
    p.add_argument("firmware")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--svg", metavar="FILE", help="also draw the memory map (segments, table, resources) as SVG")
    dialect_arg(p)
    p.set_defaults(func=cmd_info)

    rsc = sub.add_parser("rsc", help="resource tables: show, check, build").add_subparsers(
        dest="rsc_command", metavar="ACTION"
    )
    rsc.required = True
    p = rsc.add_parser("show", help="pretty-print a table (raw .bin, ELF section, or .json/.toml description)")
    p.add_argument("table")
    p.add_argument("--json", action="store_true")
    dialect_arg(p)
    p.set_defaults(func=cmd_rsc_show)

    p = rsc.add_parser("check", help="validate a table; exit 1 when it fails")
    p.add_argument("table")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--strict", dest="strict", action="store_true", default=True, help="warnings fail too (default)")
    mode.add_argument(
        "--lenient", dest="strict", action="store_false", help="only what Linux or OpenAMP would refuse fails"
    )
    dialect_arg(p)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_rsc_check)

    p = rsc.add_parser("build", help="build a table from a JSON or TOML description")
    p.add_argument("spec")
    p.add_argument("--bin", metavar="FILE", help="write the table bytes ('-' for stdout)")
    p.add_argument("--c", metavar="FILE", help="write C source for firmware ('-' for stdout)")
    p.add_argument("--json", metavar="FILE", help="write the normalized JSON description")
    p.add_argument("--to-version", type=int, choices=(1, 2), help="convert to table version 1 or 2 first")
    p.add_argument("--align", type=_int, help="align version-1 entries (default: packed, like C __packed)")
    p.add_argument("--symbol", default="resource_table", help="C variable name (default resource_table)")
    p.set_defaults(func=cmd_rsc_build)

    p = sub.add_parser("conformance", help="run the rpmsg conformance scenarios against a remote (rproc as host)")
    p.add_argument(
        "--peer",
        choices=(
            "rproc-remote",
            "openamp-remote",
            "firmware",
            "rproc-host",
            "openamp-host",
            "linux",
            "linux-remoteproc",
            "rpmsg-lite-remote",
            "rpmsg-lite-master",
        ),
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
    p.add_argument("--shm", default="/dev/shm/openamp.shm", help="openamp-remote: the shared file")
    p.add_argument("--event", default="/tmp/openamp.event.0", help="openamp-remote: the kick socket")
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

    p = sub.add_parser("doctor", help="what this installation and machine can do: engines, tools, kernel devices")
    p.add_argument("--root", default="/", help="look for /sys and /dev under this directory (default /)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("layout", help="place vrings and rpmsg buffers in shared memory")
    p.add_argument("--base", type=_int, required=True, help="first device address of the shared memory")
    p.add_argument("--window-size", type=_int, help="size of the shared memory: check that everything fits")
    p.add_argument("--vrings", type=int, default=2, help="number of vrings (rpmsg: 2)")
    p.add_argument("--num", type=_int, default=256, help="entries per vring (power of two, default 256)")
    p.add_argument("--align", type=_int, default=0x1000, help="vring alignment (default 0x1000)")
    p.add_argument("--rx-count", type=_int, help="host receive buffers (default: Linux's, min(2*num,512)/2)")
    p.add_argument("--tx-count", type=_int, help="host send buffers (default: as rx)")
    p.add_argument(
        "--rx-size", type=_int, default=DEFAULT_BUFFER_SIZE, help="bytes per receive buffer (default Linux's 512)"
    )
    p.add_argument(
        "--tx-size", type=_int, default=DEFAULT_BUFFER_SIZE, help="bytes per send buffer (default Linux's 512)"
    )
    p.add_argument("--buffer-align", type=_int, default=64, help="alignment of each buffer pool (default 64)")
    p.add_argument("--json", action="store_true")
    p.add_argument("--svg", metavar="FILE", help="also draw the memory map (vring parts, buffer pools) as SVG")
    p.set_defaults(func=cmd_layout)
    return parser


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


SESSION_COMMANDS = frozenset({"load", "ping", "send", "echo", "listen", "trace", "attach", "demo", "bench"})


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
