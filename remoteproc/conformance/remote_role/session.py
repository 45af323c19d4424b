"""The remote role's session: rproc is the rpmsg remote (virtio device), the peer under test is the host.

The host decides the traffic, so this side observes: rproc serves an echo channel while the host program runs
and records what the host does (buffers posted, status written, messages and their headers, kicks while it was
asked not to kick, how it ends) in a :class:`Record`, which the catalogue (scenarios.py) judges. A host program
that exercises the channel more (every size, bursts, many messages) lets more scenarios apply; rproc's own host
peer (:mod:`remoteproc.conformance.peers.rproc_host`) does all of it.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from remoteproc.conformance.common import CountingDoorbell
from rpmsg.core import RemoteCore
from rpmsg.device import RpmsgDevice
from rpmsg.errors import EndpointClosed, PeerLost, RpmsgTimeout

WRAP = 65536
_ERROR_COUNT = re.compile(rb"Error count\s*=\s*(\d+)")


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
    zero_copy_replies: int = 0  # of them, sent by get_buffer + send_buffer (every other one)
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


def observe_start(run: HostRun, record: Record) -> None:
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
       ``tx_lock``, OpenAMP's ``rdev->lock``, rproc's device lock); and a kick written is in our socket or eventfd,
       or (an interrupt controller between them: ``settle``) is once the controller has passed on what it holds.
       So once the remote sees avail.idx pass A, every kick of a publication up to A has been written: it waits
       for the controller, drains the doorbell and counts every kick from there (:meth:`after_message`). (The
       kick of publication A + 1 itself may be among those drained: at most that one goes uncounted.)
    4. Kicks the remote asked for do not count: while it waits for a receive buffer (vring 0 used.flags clear),
       the host may kick once per buffer it posts then, plus one for a publication it made just before.
    """

    def __init__(self, core: RemoteCore, bell: CountingDoorbell, settle: Callable[[], None] | None = None) -> None:
        self.core = core
        self.bell = bell
        self.settle = settle  # returns once every kick written before it is on the doorbell (or a masked line's)
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
        # Every kick of a publication up to A is written: they do not count. Through an interrupt controller, the
        # drain's re-enable lets a masked line fire what it held: settled and drained twice.
        for _ in range(1 if self.settle is None else 2):
            if self.settle is not None:
                self.settle()
            while self.bell.wait(0):
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
    """Echo on the channel until the host goes (or ``overall`` seconds pass), recording everything; every other
    reply is a zero-copy send (the host's posted buffer lent by ``get_buffer``, written in place)."""
    device = run.device
    bell = device.doorbell
    core = device.core
    assert isinstance(core, RemoteCore)
    settle = getattr(run, "settle_kicks", None)  # a run whose kicks pass an interrupt controller has one
    ledger = KickLedger(core, bell, settle) if isinstance(bell, CountingDoorbell) else None
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
                buf = None if record.messages % 2 else device.get_buffer(timeout)
                if buf is not None and len(data) > buf.capacity:
                    core.give_back(buf)  # kept for the send below, which says what does not fit
                    buf = None
                if buf is None:
                    device.send(ep.addr, src, data, timeout)
                else:  # every other reply written in place into the host's receive buffer (a zero-copy send)
                    buf[: len(data)] = data
                    device.send_buffer(buf, ep.addr, src, len(data))
                    record.zero_copy_replies += 1
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


def reported_errors(output: bytes) -> tuple[int, str] | None:
    """The error count a host program printed ("Error count = N", OpenAMP's pingers; the last one if several),
    with its line; None if it printed none."""
    found = list(_ERROR_COUNT.finditer(output))
    if not found:
        return None
    last = found[-1]
    start = output.rfind(b"\n", 0, last.start()) + 1
    end = output.find(b"\n", last.end())
    line = output[start : end if end >= 0 else len(output)].decode(errors="replace").strip()
    return int(last.group(1)), line
