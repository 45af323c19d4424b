"""The remote role: rproc is the rpmsg remote (virtio device), the peer under test is the host.

The host decides the traffic, so this side observes: rproc serves an echo channel, starts the host program,
records what the host does (buffers posted, status written, messages and their headers, kicks while it was asked
not to kick, how it ends) and judges each rule from the record. A host program that exercises the channel more
(every size, bursts, many messages) lets more scenarios apply; rproc's own host peer
(:mod:`remoteproc.conformance.host_peer`) does all of it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from remoteproc import children
from remoteproc.conformance.breaks import ECHO_CHANNEL, HOST_BREAKS
from remoteproc.conformance.program import PeerProgram, reported_errors
from remoteproc.conformance.report import Outcome, Report, Result
from remoteproc.conformance.scenarios import CountingDoorbell, NotApplicable, ScenarioFailed
from remoteproc.errors import RemoteprocError
from rpmsg.core import RemoteCore
from rpmsg.device import RpmsgDevice
from rpmsg.errors import EndpointClosed, PeerLost, RpmsgTimeout
from rpmsg.protocol import HEADER_SIZE

WRAP = 65536


@dataclass
class Record:
    """What the remote saw during one session with the host."""

    rx_posted: int = 0
    rx_sizes: set[int] = field(default_factory=set)
    rx_not_writable: int = 0
    status: int | None = None
    gfeatures: int | None = None
    dfeatures: int | None = None
    first_message_after: float | None = None
    messages: int = 0
    sizes: list[int] = field(default_factory=list)
    replies: int = 0
    reply_failures: list[str] = field(default_factory=list)
    dropped: int = 0
    kicks_while_suppressed: int | None = None  # None: the host never published past the suppression point
    kicks_allowed: int = 0  # kicks the remote asked for meanwhile (waiting for receive buffers), at most
    messages_judged: int = 0  # messages after the point from which every kick counts
    kicks_per_wait: bool = False  # the doorbell does not count kicks: waits that consumed some are counted
    ended: str = ""
    exit_code: int | None = None
    complaints: list[str] = field(default_factory=list)  # a kernel host's BUG/Oops/panic/WARNING reports
    event_idx: bool = False
    buffer_waits: int = 0  # times the remote asked to be kicked for a receive buffer (those kicks are due)
    reported_errors: tuple[int, str] | None = None  # the host program's own tally ("Error count = N"), its line


class HostRun(Protocol):
    """A started host program with rproc's remote device connected to it."""

    description: str
    device: RpmsgDevice
    table: tuple[int, int, int] | None  # (status da, gfeatures da, dfeatures da) for profiles with a table
    channel: str
    channel_addr: int

    def exit_code(self, timeout: float) -> int | None: ...

    def close(self) -> None: ...


class HostPeer(Protocol):
    description: str

    def start(self, timeout: float) -> HostRun: ...


def _observe_start(run: HostRun, record: Record) -> None:
    core = run.device.core
    assert isinstance(core, RemoteCore)
    lay = core.to_host.layout
    mem = core.memory
    record.event_idx = core.from_host.event_idx
    record.rx_posted = int.from_bytes(mem.read(lay.avail + 2, 2), "little")
    for k in range(min(record.rx_posted, lay.num)):
        head = int.from_bytes(mem.read(lay.avail + 4 + 2 * k, 2), "little") % lay.num
        length, flags = (
            int.from_bytes(mem.read(lay.desc + 16 * head + 8, 4), "little"),
            mem.read(lay.desc + 16 * head + 12, 1)[0],
        )
        record.rx_sizes.add(length)
        record.rx_not_writable += not flags & 2  # VRING_DESC_F_WRITE
    if run.table is not None:
        status_da, gfeatures_da, dfeatures_da = run.table
        record.status = mem.read(status_da, 1)[0]
        record.gfeatures = int.from_bytes(mem.read(gfeatures_da, 4), "little")
        record.dfeatures = int.from_bytes(mem.read(dfeatures_da, 4), "little")


def _u16(core: RemoteCore, da: int) -> int:
    return int.from_bytes(core.memory.read(da, 2), "little")


class KickLedger:
    """The host's kicks that break the remote's suppression, counted exactly (docs/conformance.md, "Counting the
    host's kicks"). A kick is a byte (eventfd write, datagram), not a wait that consumed some.

    1. The remote sets vring 1 used.flags = NO_NOTIFY (:meth:`suppress`, on the first message).
    2. After the next full fence (the one in the reply's publish: ``rp_mb`` in vring.c) it reads vring 1's
       avail.idx, A (:meth:`after_reply`). The host publishes, fences, then reads the flags (virtio 1.2 2.7.7), so
       by the store/load argument of both fences, a publication that the remote had not seen at A was made by a
       host that could see NO_NOTIFY: it must not be kicked. Publications up to A may be.
    3. A host kicks for a publication before it makes the next one (publish and kick under one lock: Linux's
       ``tx_lock``, OpenAMP's ``rdev->lock``, rproc's device lock); and a kick written is in our socket or eventfd.
       So once the remote sees avail.idx pass A, every kick of a publication up to A has arrived: it drains the
       doorbell and counts every kick from there (:meth:`after_message`). (The kick of publication A + 1 itself
       may be among those drained: at most that one goes uncounted.)
    4. Kicks the remote asked for do not count: while it waits for a receive buffer (vring 0 used.flags clear),
       the host may kick once per buffer it posts then, plus one for a publication it made just before.
    """

    def __init__(self, core: RemoteCore, bell: CountingDoorbell) -> None:
        self.core = core
        self.bell = bell
        self.avail1 = core.from_host.layout.avail + 2
        self.avail0 = core.to_host.layout.avail + 2
        self.per_wait = bell.kick_bytes is None
        self.suppressed = False
        self.visible_at: int | None = None
        self.baseline: int | None = None
        self.allowed = 0
        self._open_at: int | None = None
        self._closed: list[int] = []

    def kicks(self) -> int:
        counted = self.bell.kicks if self.per_wait else self.bell.kick_bytes
        return int(counted or 0)

    def suppress(self, device: RpmsgDevice) -> None:
        device.wait_mode = "busy"  # from now on the host is asked not to kick
        device.request_kicks(False)  # vring 1 used.flags = NO_NOTIFY, now
        self.suppressed = True

    def after_reply(self) -> None:
        """After a reply was published (a full fence since the last flag change)."""
        if self.suppressed and self.visible_at is None:
            self.visible_at = _u16(self.core, self.avail1)
        self._bound_windows()

    def after_message(self) -> bool:
        """When a message arrived; True once the kicks count (this message is the first judged one)."""
        if self.visible_at is None or self.baseline is not None:
            return False
        if not 0 < (_u16(self.core, self.avail1) - self.visible_at) & 0xFFFF < 0x8000:
            return False
        while self.bell.wait(0):  # every kick of a publication up to A is here: they do not count
            pass
        self.baseline = self.kicks()
        return True

    def buffer_wakeup(self, asked: Callable[[bool], bool], on: bool) -> bool:
        """In place of the core's ``want_buffer_wakeup``: notes the windows in which kicks are due."""
        result = asked(on)  # enabling fences before it looks at the ring
        if on and self._open_at is None:
            self._open_at = _u16(self.core, self.avail0)
        elif not on and self._open_at is not None:
            self._closed.append(self._open_at)  # bounded after the next fence (after_reply)
            self._open_at = None
        return result

    def _bound_windows(self) -> None:
        now = _u16(self.core, self.avail0)
        for opened in self._closed:
            self.allowed += ((now - opened) & 0xFFFF) + 1
        self._closed.clear()

    def finish(self, record: Record) -> None:
        self._bound_windows()
        if self._open_at is not None:  # still waiting when the host went
            self.allowed += ((_u16(self.core, self.avail0) - self._open_at) & 0xFFFF) + 1
        record.kicks_per_wait = self.per_wait
        record.kicks_allowed = self.allowed
        if self.baseline is not None:
            record.kicks_while_suppressed = self.kicks() - self.baseline


def serve(run: HostRun, record: Record, timeout: float, overall: float) -> None:
    """Echo on the channel until the host goes (or ``overall`` seconds pass), recording everything."""
    device = run.device
    bell = device.doorbell
    core = device.core
    assert isinstance(core, RemoteCore)
    ledger = KickLedger(core, bell) if isinstance(bell, CountingDoorbell) else None
    asked = core.want_buffer_wakeup

    def want_buffer_wakeup(on: bool) -> bool:
        record.buffer_waits += on  # the host must kick for this one: not counted against its suppression
        return ledger.buffer_wakeup(asked, on) if ledger is not None else asked(on)

    setattr(core, "want_buffer_wakeup", want_buffer_wakeup)  # noqa: B010 - instrumenting this session's core
    try:
        ep = device.endpoint(run.channel, addr=run.channel_addr, timeout=timeout)
    except (PeerLost, EndpointClosed, RpmsgTimeout) as exc:
        record.ended = f"the channel could not be announced: {exc}"
        record.exit_code = run.exit_code(5.0)
        return
    ep.settimeout(0.2)
    start = time.monotonic()
    idle_since = start
    try:
        while time.monotonic() - start < overall:
            try:
                data, src = ep.recvfrom()
            except RpmsgTimeout:
                if run.exit_code(0) is not None and time.monotonic() - idle_since > 0.5:
                    record.ended = "the host program ended"
                    break
                continue
            idle_since = time.monotonic()
            if record.first_message_after is None:
                record.first_message_after = idle_since - start
                if ledger is not None:
                    ledger.suppress(device)
                else:
                    device.wait_mode = "busy"
            record.messages += 1
            record.sizes.append(len(data))
            if ledger is not None and (ledger.after_message() or ledger.baseline is not None):
                record.messages_judged += 1
            try:
                device.send(ep.addr, src, data, timeout)
                if ledger is not None:
                    ledger.after_reply()
                record.replies += 1
            except RpmsgTimeout as exc:
                record.reply_failures.append(f"reply {record.replies + 1}: {exc}")
                if len(record.reply_failures) > 3:
                    record.ended = "replies could not be sent"
                    break
        else:
            record.ended = f"still running after {overall} s"
    except (PeerLost, EndpointClosed) as exc:
        record.ended = f"the host went away ({exc})"
    record.dropped = core.dropped
    if ledger is not None:
        ledger.finish(record)
    record.exit_code = run.exit_code(5.0)
    output = getattr(run, "output", None)
    if callable(output):
        record.reported_errors = reported_errors(output())
    complaints = getattr(run, "complaints", None)
    if callable(complaints):
        record.complaints = list(complaints())


# --- the rules ---------------------------------------------------------------------------------------------------
def status_handshake(r: Record) -> str:
    if r.status is None:
        raise NotApplicable("this profile has no resource table: the remote sees no status byte")
    if not r.status & 0x04:
        raise ScenarioFailed(f"status {r.status:#04x} has no DRIVER_OK when the host started talking")
    if r.gfeatures is not None and r.dfeatures is not None and r.gfeatures & ~r.dfeatures:
        raise ScenarioFailed(f"gfeatures {r.gfeatures:#x} includes bits the remote never offered ({r.dfeatures:#x})")
    return f"status {r.status:#04x} (DRIVER_OK set), gfeatures {r.gfeatures:#x} of {r.dfeatures:#x} offered"


def rx_buffers_at_start(r: Record) -> str:
    if r.rx_posted == 0:
        raise ScenarioFailed("no receive buffer posted on vring 0 when the host started the device")
    if r.rx_not_writable:
        raise ScenarioFailed(f"{r.rx_not_writable} of {r.rx_posted} receive buffers are not device-writable")
    small = sorted(s for s in r.rx_sizes if s <= HEADER_SIZE)
    if small:
        raise ScenarioFailed(f"receive buffers of {small} bytes cannot hold a message")
    return f"{r.rx_posted} device-writable buffers of {sorted(r.rx_sizes)} bytes posted before the start"


def channel_used(r: Record) -> str:
    if r.first_message_after is None:
        raise ScenarioFailed(f"the host never sent to the announced channel ({r.ended})")
    return f"first message to the announced channel {r.first_message_after:.3f} s after the start"


def messages_well_formed(r: Record) -> str:
    if r.dropped:
        raise ScenarioFailed(f"{r.dropped} malformed messages dropped (header length beyond the buffer, or short)")
    if not r.messages:
        raise NotApplicable("the host sent no message")
    return f"{r.messages} messages of {min(r.sizes)}..{max(r.sizes)} bytes, none malformed"


def buffers_recycled(r: Record) -> str:
    if r.reply_failures:
        raise ScenarioFailed(f"no host receive buffer to answer in: {r.reply_failures[0]}")
    if r.replies <= r.rx_posted:
        raise NotApplicable(f"{r.replies} replies never needed more than the {r.rx_posted} buffers posted at start")
    return f"{r.replies} replies through {r.rx_posted} receive buffers: the host posts them again"


def index_wraparound(r: Record) -> str:
    if r.messages < WRAP:
        raise NotApplicable(f"{r.messages} messages do not wrap the 16-bit indices")
    if r.dropped or r.reply_failures:
        raise ScenarioFailed(
            f"{r.messages} messages, but {r.dropped} malformed and {len(r.reply_failures)} replies without a buffer"
        )
    return f"{r.messages} messages: both vrings' indices wrapped, every message well-formed, every reply sent"


def host_honours_suppression(r: Record) -> str:
    counted = r.messages_judged
    if r.kicks_while_suppressed is None or counted <= 0:
        raise NotApplicable(
            f"{r.messages} messages: the host never published past the point where the remote's suppression "
            "was visible to it"
        )
    kicks = r.kicks_while_suppressed
    unit = "wakeups by kicks" if r.kicks_per_wait else "kicks"
    if r.event_idx:
        # With EVENT_IDX the remote suppresses by not moving avail_event; the host still kicks each time its
        # avail index passes that stale value: once soon after, then once per 65536 messages (virtio 1.2 2.7.10).
        allowed = 1 + -(-counted // WRAP) + r.kicks_allowed
        if kicks > allowed:
            raise ScenarioFailed(
                f"the host sent {kicks} {unit} in {counted} messages with EVENT_IDX and a stale avail_event (at "
                f"most {allowed}: one per crossing, and {r.kicks_allowed} asked for)"
            )
        return (
            f"{kicks} {unit} in {counted} messages with EVENT_IDX, avail_event left behind (one per crossing "
            f"allowed, and {r.kicks_allowed} asked for: {allowed})"
        )
    if kicks > r.kicks_allowed:
        raise ScenarioFailed(
            f"the host sent {kicks} {unit} in {counted} messages published after vring 1 used.flags = NO_NOTIFY "
            f"was visible to it (at most {r.kicks_allowed}: asked for in {r.buffer_waits} waits for receive buffers)"
        )
    return (
        f"{kicks} {unit} in {counted} messages published after vring 1 used.flags = NO_NOTIFY was visible to the "
        f"host ({r.buffer_waits} waits for receive buffers allowed {r.kicks_allowed})"
    )


def host_ends_cleanly(r: Record) -> str:
    if r.complaints:
        raise ScenarioFailed(f"the host's kernel complained: {r.complaints[0][:300]}")
    if r.exit_code is None:
        raise ScenarioFailed(f"the host program did not end ({r.ended})")
    if r.exit_code != 0:
        raise ScenarioFailed(f"the host program ended with status {r.exit_code} ({r.ended})")
    if r.reported_errors is not None and r.reported_errors[0]:
        # OpenAMP's pingers count wrong or missing echoes and exit 0 all the same: their count is the verdict.
        raise ScenarioFailed(
            f"the host program ended with status 0 but counted {r.reported_errors[0]} errors of its own: "
            f"{r.reported_errors[1]!r} ({r.ended})"
        )
    said = f" and reported {r.reported_errors[1]!r}" if r.reported_errors is not None else ""
    return f"the host program ended with status 0{said}; {r.ended}"


@dataclass(frozen=True)
class RemoteScenario:
    name: str
    rule: str
    judge: Callable[[Record], str]


REMOTE_CATALOGUE: tuple[RemoteScenario, ...] = (
    RemoteScenario("status-handshake", "DRIVER_OK set, gfeatures a subset of dfeatures", status_handshake),
    RemoteScenario(
        "rx-buffers-at-start", "device-writable receive buffers posted before the start", rx_buffers_at_start
    ),
    RemoteScenario("channel-used", "the host talks to the channel the remote announced", channel_used),
    RemoteScenario("messages-well-formed", "every header length fits its buffer", messages_well_formed),
    RemoteScenario("buffers-recycled", "the host posts receive buffers again after reading", buffers_recycled),
    RemoteScenario("index-wraparound", "traffic goes on across the 16-bit index wrap", index_wraparound),
    RemoteScenario("host-honours-suppression", "no kick while used.flags = NO_NOTIFY", host_honours_suppression),
    RemoteScenario(
        "host-ends-cleanly",
        "the host program ends with status 0 and counts no errors of its own (a kernel host: no BUG/Oops/panic)",
        host_ends_cleanly,
    ),
)


def run_remote_role(peer: HostPeer, *, timeout: float = 5.0, overall: float = 120.0) -> Report:
    report = Report(f"{peer.description} (rproc as remote)")
    t0 = time.monotonic()
    record = Record()
    try:
        host = peer.start(timeout)
    except Exception as exc:
        for s in REMOTE_CATALOGUE:
            report.results.append(Result(s.name, s.rule, Outcome.FAIL, f"the session did not start: {exc}", 0.0))
        return report
    try:
        _observe_start(host, record)
        serve(host, record, timeout, overall)
    finally:
        host.close()
    seconds = time.monotonic() - t0
    for s in REMOTE_CATALOGUE:
        try:
            outcome, evidence = Outcome.PASS, s.judge(record)
        except NotApplicable as exc:
            outcome, evidence = Outcome.NOT_APPLICABLE, str(exc)
        except ScenarioFailed as exc:
            outcome, evidence = Outcome.FAIL, str(exc)
        report.results.append(Result(s.name, s.rule, outcome, evidence, seconds))
    return report


# --- host peers ----------------------------------------------------------------------------------------------------
@dataclass
class _ProcessRun:
    description: str
    device: RpmsgDevice
    proc: subprocess.Popen[bytes]
    closers: list[Callable[[], None]]
    channel: str
    channel_addr: int = 0x400
    table: tuple[int, int, int] | None = None
    program: PeerProgram | None = None  # a program whose output is kept (the host's own error count)

    def exit_code(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout) if timeout else self.proc.poll()
        except subprocess.TimeoutExpired:
            return None

    def output(self) -> bytes:
        return self.program.output() if self.program is not None else b""

    def close(self) -> None:
        self.device.close()
        for close in self.closers:
            close()
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if self.program is not None:
            self.program.close()


class RprocHostPeer:
    """rproc's host in another process over the shm profile (optionally broken on purpose)."""

    def __init__(self, break_mode: str = "") -> None:
        if break_mode and break_mode not in HOST_BREAKS:
            raise RemoteprocError(f"unknown host break mode {break_mode!r} (known: {', '.join(sorted(HOST_BREAKS))})")
        self.break_mode = break_mode
        self.description = "rproc host over shm" + (f", broken: {HOST_BREAKS[break_mode]}" if break_mode else "")

    def start(self, timeout: float) -> HostRun:
        from rpmsg.wiring import remote_on
        from transports.url import open_link

        name = f"rproc-conformance-h-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        args = [sys.executable, "-m", "remoteproc.conformance.host_peer", name, "--timeout", str(timeout)]
        if self.break_mode:
            args += ["--break", self.break_mode]
        proc = children.start(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            link = open_link(f"shm://{name}", role="remote", timeout=timeout * 4)
            device = remote_on(link)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        device.doorbell = CountingDoorbell(device.doorbell)
        return _ProcessRun(self.description, device, proc, [link.close], ECHO_CHANNEL)


class OpenAmpHostPeer:
    """A program playing the host of OpenAMP's Linux-userspace machine (OpenAMP's echo pingers): rproc writes
    the table, listens on ``event``, then starts ``command``."""

    def __init__(self, command: str, *, shm: str, event: str) -> None:
        import shlex

        self.command = shlex.split(command)
        self.shm, self.event = shm, event
        self.description = f"OpenAMP-profile host: {command}"

    def start(self, timeout: float) -> HostRun:
        from remoteproc.platforms.openamp import CHANNEL, GFEATURES_OFFSET, STATUS_OFFSET, remote_device
        from transports.openamp import OpenAmpLink

        link = OpenAmpLink("remote", shm=self.shm, event=self.event)
        try:
            program = PeerProgram(self.command)
        except BaseException:
            link.close()
            raise
        link.check = program.check  # every wait gives up as soon as the program has ended, with its status
        try:
            device = remote_device(link, timeout=timeout * 4, check=program.check)
        except BaseException:
            program.close()
            link.close()
            raise
        device.doorbell = CountingDoorbell(device.doorbell)

        def remove_files() -> None:
            link.close()
            Path(self.shm).unlink(missing_ok=True)
            Path(self.event).unlink(missing_ok=True)

        dfeatures = 0x14 + 12  # vdev entry at 0x14: type, id, notifyid, dfeatures
        return _ProcessRun(
            self.description,
            device,
            program.proc,
            [remove_files],
            CHANNEL,
            table=(STATUS_OFFSET, GFEATURES_OFFSET, dfeatures),
            program=program,
        )


class RpmsgLiteMasterPeer:
    """A program playing an RPMsg-Lite master on rproc's shm profile with RPMsg-Lite's layout: it is started
    with the shm name appended, creates /dev/shm/NAME as ``rpmsg_lite_master_init`` lays it out, listens on
    /dev/shm/NAME.sock (kicks: one byte, the queue number), kicks vring 0, and talks to the channel
    ``rpmsg-echo`` rproc announces (docs/conformance.md, "Peer programs"). rproc's remote uses the profile with
    the master's quirks allowed and maps the whole file."""

    def __init__(self, command: str, profile: object = None) -> None:
        import shlex

        from rpmsg.profiles import Profile
        from rpmsg.rpmsg_lite import PROFILE

        self.command = shlex.split(command)
        self.profile = profile if isinstance(profile, Profile) else PROFILE
        self.description = f"RPMsg-Lite master: {command}"

    def start(self, timeout: float) -> HostRun:
        from rpmsg.wiring import remote_on
        from transports.url import open_link

        name = f"rproc-rlm-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        program = PeerProgram([*self.command, name])
        try:
            link = open_link(f"shm://{name}", role="remote", timeout=timeout * 4)  # the whole file mapped
            device = remote_on(link, self.profile)
        except BaseException:
            program.close()
            for leftover in (Path("/dev/shm") / name, Path("/dev/shm") / f"{name}.sock"):
                leftover.unlink(missing_ok=True)
            raise
        device.doorbell = CountingDoorbell(device.doorbell)

        def close() -> None:
            link.close()
            for leftover in (Path("/dev/shm") / name, Path("/dev/shm") / f"{name}.sock"):
                leftover.unlink(missing_ok=True)  # a master that did not end by itself (killed) leaves them

        return _ProcessRun(self.description, device, program.proc, [close], ECHO_CHANNEL, program=program)
