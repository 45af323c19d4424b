"""The remote role's catalogue: each scenario judges one rule of the host on the :class:`Record` of a session
(session.py); :func:`run_remote_role` runs one session with a host peer and judges every scenario on it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from remoteproc.conformance.common import NotApplicable, ScenarioFailed
from remoteproc.conformance.remote_role.session import WRAP, HostPeer, Record, observe_start, serve
from remoteproc.conformance.report import Outcome, Report, Result
from rpmsg.protocol import HEADER_SIZE


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
    return (
        f"{r.replies} replies ({r.zero_copy_replies} written in place by zero-copy sends) through {r.rx_posted} "
        "receive buffers: the host posts them again"
    )


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
        observe_start(host, record)
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
