"""The host role's catalogue: rproc plays the rpmsg host (virtio driver), the peer under test the remote.

Each scenario checks one rule and returns its evidence (bytes seen, counts, timings). The peer must serve an
echo channel (``HostContext.channel``): every message sent to it comes back to its sender unchanged — what
OpenAMP's, RPMsg-Lite's and rproc's echo demos do.

Rules and their sources are in docs/conformance.md.
"""

from __future__ import annotations

import contextlib
import select
import struct
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from remoteproc.conformance.common import CountingDoorbell, NotApplicable, ScenarioFailed, pattern
from remoteproc.conformance.host_role.context import HostContext, echo, expect_echo, u16
from rpmsg.device import Endpoint, RpmsgDevice, WaitMode
from rpmsg.errors import MessageTooLong, PeerLost, RpmsgError
from rpmsg.protocol import HEADER, HEADER_SIZE, LINUX_BUFFER_SIZE, RESERVED_ADDRESSES


# --- the scenarios -----------------------------------------------------------------------------------------------
def status_and_features(ctx: HostContext) -> str:
    if ctx.table is None:
        raise NotApplicable("this profile has no resource table (status and features are not in shared memory)")
    t = ctx.table
    mem = ctx.core.memory
    # Judged once the remote runs (has announced, when it does): it must not have reset what the host wrote.
    with contextlib.suppress(RpmsgError):
        ctx.device.wait_for_channel(ctx.channel, timeout=ctx.timeout)
    gfeatures = int.from_bytes(mem.read(t.gfeatures_da, 4), "little")
    status = mem.read(t.status_da, 1)[0]
    if gfeatures != t.expected_gfeatures or status != t.expected_status:
        raise ScenarioFailed(
            f"gfeatures {gfeatures:#x} (expected {t.expected_gfeatures:#x}), status {status:#04x} "
            f"(expected {t.expected_status:#04x})"
        )
    return f"gfeatures {gfeatures:#x} at {t.gfeatures_da:#x}, status {status:#04x} at {t.status_da:#x}"


def name_service_create(ctx: HostContext) -> str:
    start = time.monotonic()
    try:
        addr = ctx.device.wait_for_channel(ctx.channel, timeout=ctx.timeout)
    except RpmsgError as exc:
        raise ScenarioFailed(str(exc)) from None
    return f"{ctx.channel!r} announced at {addr:#x} within {time.monotonic() - start:.3f} s"


def echo_every_size(ctx: HostContext) -> str:
    with ctx.open() as ep:
        top = ctx.core.max_payload
        for size in range(1, top + 1):
            echo(ep, pattern(size, size), f"{size} bytes")
    return f"every size 1..{top} echoed byte for byte"


def max_size_and_one_over(ctx: HostContext) -> str:
    top = ctx.core.max_payload
    with ctx.open() as ep:
        echo(ep, pattern(top, 7), f"the maximum, {top} bytes")
        try:
            ep.send(bytes(top + 1))
        except MessageTooLong as exc:
            if exc.limit != top:
                raise ScenarioFailed(f"{top + 1} bytes refused, but the error names a {exc.limit}-byte limit") from None
            return f"{top} bytes echoed; {top + 1} refused before sending ({exc.limit}-byte limit)"
    raise ScenarioFailed(f"{top + 1} bytes were accepted for sending")


def reserved_ignored(ctx: HostContext) -> str:
    with ctx.open() as ep:
        payload = b"reserved field set"
        assert ep.peer is not None
        buf = ep.get_buffer()
        buf.view[: len(payload)] = payload
        ctx.device.send_buffer(buf, ep.addr, ep.peer, len(payload), reserved=0xDEADBEEF)
        expect_echo(ep, payload, "a message with reserved = 0xdeadbeef")
    return "a message with reserved = 0xdeadbeef was echoed"


def low_endpoint_address(ctx: HostContext) -> str:
    low = 0x20
    with ctx.open() as shared:
        assert shared.peer is not None
        with ctx.device.endpoint(addr=low, peer=shared.peer) as ep:
            ep.settimeout(ctx.timeout)
            ep.send(b"from a low address")
            try:
                got = ep.recv()
            except RpmsgError as exc:
                shared.settimeout(0)
                try:
                    shared.recv()
                except RpmsgError:
                    raise ScenarioFailed(f"no answer to a message from {low:#x}: {exc}") from None
                raise ScenarioFailed(
                    f"the message from {low:#x} was answered to {shared.addr:#x} (an earlier sender), not to its "
                    "source: the peer replies to a fixed destination"
                ) from None
    if got != b"from a low address":
        raise ScenarioFailed(f"echo differs: {got!r}")
    return f"a message from address {low:#x} (< {RESERVED_ADDRESSES}) was answered to {low:#x}"


def used_len(ctx: HostContext) -> str:
    size = 100
    core = ctx.core
    lay = core.rx.layout
    with ctx.open() as ep:
        before = u16(ctx, lay.used + 2)
        ep.send(pattern(size, 3))
        failure = None
        try:
            got = ep.recv()
            if len(got) != size:
                failure = f"echo of {len(got)} bytes"
        except RpmsgError as exc:
            failure = f"no echo: {exc}"
        after = u16(ctx, lay.used + 2)
    if after == before:
        raise ScenarioFailed(failure or "the peer returned no buffer on vring 0")
    k = (after - 1) % lay.num
    uid, ulen = struct.unpack("<II", core.memory.read(lay.used + 4 + 8 * k, 8))
    if uid >= lay.num:
        raise ScenarioFailed(f"used.id {uid} is not a descriptor of vring 0 ({lay.num})")
    addr = int(struct.unpack("<Q", core.memory.read(lay.desc + 16 * uid, 8))[0])
    hdr_len = HEADER.unpack(core.memory.read(addr, HEADER_SIZE))[3]
    style = (
        "exact, as Linux"
        if ulen == HEADER_SIZE + hdr_len
        else "the whole buffer, as OpenAMP and RPMsg-Lite"
        if ulen == core.rx_size
        else "neither exact nor the whole buffer"
    )
    if ulen < HEADER_SIZE + hdr_len or ulen > core.rx_size:
        raise ScenarioFailed(f"used.len {ulen} for hdr.len {hdr_len}: outside {HEADER_SIZE + hdr_len}..{core.rx_size}")
    if failure:
        raise ScenarioFailed(failure)
    return f"used.len {ulen} for hdr.len {hdr_len} ({style}); the host takes the length from hdr.len"


@contextlib.contextmanager
def _counting_in(ctx: HostContext, mode: WaitMode) -> Iterator[RpmsgDevice]:
    """The device in wait mode ``mode`` for the duration, its kicks counted (n/a when they cannot be)."""
    device = ctx.device
    if not isinstance(device.doorbell, CountingDoorbell):
        raise NotApplicable("the peer's kicks cannot be counted on this transport")
    saved, device.wait_mode = device.wait_mode, mode
    try:
        yield device
    finally:
        device.wait_mode = saved


def _drain_kicks(device: RpmsgDevice, settle: float) -> None:
    """Take in (and so count) every kick already sent, waiting ``settle`` seconds for late ones."""
    while select.select([device.doorbell.fileno()], [], [], settle)[0]:
        device.doorbell.wait(0)


def _kicked_within(device: RpmsgDevice, timeout: float) -> bool:
    """Wait on the doorbell itself (not in a receive) for the peer's kick, and take it in (so it is counted)."""
    if not select.select([device.doorbell.fileno()], [], [], timeout)[0]:
        return False
    device.doorbell.wait(0)
    return True


def notification_delivery(ctx: HostContext) -> str:
    count = 20
    # The host asks for kicks, sends, and waits on the doorbell: every reply must be announced by a kick. (Not
    # through a receive: a blocking receive asks for kicks only while it sleeps, so a reply that comes before it
    # sleeps needs none; with a fast peer no receive ever slept and the count was 0, failing about one run in
    # three of the shared suite's shm transport at stop 28.)
    with _counting_in(ctx, "block") as device, ctx.open() as ep:
        _drain_kicks(device, 0.02)
        first = ctx.kicks
        slowest = 0.0
        for i in range(count):
            device.request_kicks(True)  # afresh: the last receive may have turned them off while it looked
            payload = i.to_bytes(4, "little")
            t0 = time.monotonic()
            ep.send(payload)
            if not _kicked_within(device, ctx.timeout):
                raise ScenarioFailed(
                    f"{ctx.kicks - first} kicks for {i} replies, then none within {ctx.timeout} s for message {i} "
                    "while the host waited on the doorbell with kicks asked for"
                )
            slowest = max(slowest, time.monotonic() - t0)
            expect_echo(ep, payload, f"message {i} (the host waits for a kick)")
        _drain_kicks(device, 0.02)
        kicks = ctx.kicks - first
    return f"{count} replies announced by {kicks} kicks while the host waited on the doorbell (slowest {slowest:.4f} s)"


def notification_suppression(ctx: HostContext) -> str:
    count = 200
    # "busy": the host polls and sets NO_INTERRUPT on vring 0 (virtio 1.2, 2.7.7)
    with _counting_in(ctx, "busy") as device, ctx.open() as ep:
        device.request_kicks(False)  # busy mode keeps them off
        echo(ep, b"warm", "first message")
        _drain_kicks(device, 0.05)
        flags = u16(ctx, ctx.core.rx.layout.avail)
        before = ctx.kicks
        for i in range(count):
            echo(ep, i.to_bytes(4, "little"), f"message {i}")
        time.sleep(0.05)
        _drain_kicks(device, 0)
        kicks = ctx.kicks - before
    if not flags & 1:
        raise ScenarioFailed(f"the host did not set NO_INTERRUPT (vring 0 avail.flags {flags:#x})")
    if kicks:
        raise ScenarioFailed(f"the peer kicked {kicks} times for {count} messages while avail.flags = NO_INTERRUPT")
    return f"{count} messages, 0 kicks while vring 0 avail.flags = NO_INTERRUPT"


def burst_fills_ring(ctx: HostContext) -> str:
    core = ctx.core
    count = min(core.tx_count, core.rx_count)
    with ctx.open() as ep:
        start = time.monotonic()
        for i in range(count):
            ep.send(i.to_bytes(4, "little") + pattern(60, i))
        for i in range(count):
            try:
                got = ep.recv()
            except RpmsgError as exc:
                raise ScenarioFailed(f"{i} of {count} echoes came back: {exc}") from None
            if got != i.to_bytes(4, "little") + pattern(60, i):
                raise ScenarioFailed(f"echo {i} of the burst is wrong or out of order: {got[:8].hex()}")
    return f"{count} messages sent before reading any, all echoed in order in {time.monotonic() - start:.3f} s"


def index_wraparound(ctx: HostContext) -> str:
    lay = ctx.core.tx.layout
    total = 70_000  # > 65536: both rings' 16-bit indices wrap
    window = 16
    with ctx.open() as ep:
        start_idx = u16(ctx, lay.avail + 2)
        start = time.monotonic()
        sent = received = 0
        while received < total:
            while sent < total and sent - received < window:
                ep.send(sent.to_bytes(4, "little"))
                sent += 1
            waited = time.monotonic()
            try:
                got = ep.recv()
            except RpmsgError as exc:
                raise ScenarioFailed(f"after {received} echoes: {exc}") from None
            waited = time.monotonic() - waited
            if waited > ctx.timeout * 0.9:
                # The echoes were there, but no kick woke the receive: it found them when its wait ran out.
                # Failing here keeps a lost kick from crawling through 70,000 echoes, one window per wait.
                raise ScenarioFailed(f"echo {received} took {waited:.1f} s: the remote's kick was lost")
            if got != received.to_bytes(4, "little"):
                raise ScenarioFailed(f"echo {received} wrong or out of order: {got.hex()}")
            received += 1
        end_idx = u16(ctx, lay.avail + 2)
    seconds = time.monotonic() - start
    return (
        f"{total} messages echoed in order; vring 1 avail.idx {start_idx} -> {end_idx} (wrapped) "
        f"in {seconds:.2f} s ({total / seconds:,.0f} msgs/s)"
    )


def big_buffers(ctx: HostContext) -> str:
    core = ctx.core
    top = min(core.rx_size - HEADER_SIZE, core.max_payload)  # the largest echo: it comes back in a receive buffer
    if top <= LINUX_BUFFER_SIZE - HEADER_SIZE:
        raise NotApplicable(
            f"the host's buffers are {core.rx_size}/{core.tx_size} bytes (receive/send): no big buffers "
            "(Profile rx_size/tx_size above 512)"
        )
    sizes = sorted({LINUX_BUFFER_SIZE - HEADER_SIZE + 1, *(1 << k for k in range(9, 17) if 1 << k < top), top})
    count = min(core.tx_count, core.rx_count)
    with ctx.open() as ep:
        for size in sizes:
            echo(ep, pattern(size, size), f"{size} bytes")
        for i in range(count):  # every buffer of both pools carries the largest message at once
            ep.send(pattern(top, i))
        for i in range(count):
            expect_echo(ep, pattern(top, i), f"message {i} of a burst of {count} of {top} bytes")
    return (
        f"{len(sizes)} sizes {sizes[0]}..{top} echoed through {core.rx_size}/{core.tx_size}-byte buffers, then a "
        f"burst of {count} x {top} bytes in order"
    )


def batches(ctx: HostContext) -> str:
    core = ctx.core
    count = min(core.tx_count, core.rx_count, 64)
    sent = [i.to_bytes(4, "little") + pattern(i % 61, i) for i in range(3 * count)]
    with ctx.open() as ep:
        calls = got = 0
        for start in range(0, len(sent), count):
            batch = sent[start : start + count]
            if ep.send_many(batch) != len(batch):
                raise ScenarioFailed(f"send_many sent fewer than the {len(batch)} messages of a batch")
            received: list[bytes] = []
            while len(received) < len(batch):
                try:
                    received += ep.recv_many(len(batch) - len(received))
                except RpmsgError as exc:
                    raise ScenarioFailed(f"{got + len(received)} of {len(sent)} echoes came back: {exc}") from None
                calls += 1
            for k, data in enumerate(received):
                if data != batch[k]:
                    raise ScenarioFailed(f"echo {start + k} of the batches is wrong or out of order: {data[:8].hex()}")
            got += len(received)
    batches = len(sent) // count
    return f"{len(sent)} messages in {batches} send_many calls of {count}, back in order in {calls} recv_many calls"


def ns_from_host(ctx: HostContext) -> str:
    name = "rproc-conformance"
    with ctx.device.endpoint(name, announce=True) as announced:
        addr = announced.addr
    with ctx.open() as ep:
        echo(ep, b"after NS create and destroy", "echo after the host's announcements")
    return f"the host announced {name!r} at {addr:#x} and withdrew it; the peer went on echoing"


def _lost_within(ep: Endpoint, limit: float) -> float:
    start = time.monotonic()
    try:
        while time.monotonic() - start < limit:
            ep.send(b"are you there")
            ep.recv()
    except PeerLost:
        return time.monotonic() - start
    except RpmsgError:
        pass
    raise ScenarioFailed(f"the peer's death was not reported within {limit} s")


def peer_death(ctx: HostContext) -> str:
    with ctx.open() as ep:
        echo(ep, b"alive", "before")
        ctx.lifecycle.kill()
        ep.settimeout(1.0)
        seconds = _lost_within(ep, 5.0)
    return f"killed the peer: PeerLost after {seconds:.3f} s"


def peer_restart(ctx: HostContext) -> str:
    announced = name_service_create(ctx)
    with ctx.open() as ep:
        echo(ep, b"after the restart", "after the restart")
    return f"after the previous peer was killed: {announced}; echo works"


def shutdown(ctx: HostContext) -> str:
    if ctx.shutdown_message is not None:
        with ctx.open() as ep:
            ep.send(ctx.shutdown_message)
    ctx.close()
    code = ctx.lifecycle.exit_code(5.0)
    if code is None:
        raise ScenarioFailed("the peer did not end within 5 s of the host closing")
    if code != 0:
        raise ScenarioFailed(f"the peer ended with status {code}")
    return "the host closed; the peer noticed and ended with status 0"


@dataclass(frozen=True)
class Scenario:
    name: str
    rule: str
    run: Callable[[HostContext], str]


CATALOGUE: tuple[Scenario, ...] = (
    Scenario("status-and-features", "host writes gfeatures, then DRIVER_OK in the status byte", status_and_features),
    Scenario("name-service-create", "the remote announces its channel at address 53 (NS create)", name_service_create),
    Scenario("echo-every-size", "every payload size 1..max crosses both vrings intact", echo_every_size),
    Scenario("max-size-and-one-over", "max = buffer - 16 bytes; one over is refused", max_size_and_one_over),
    Scenario("reserved-ignored", "the reserved header field is not validated", reserved_ignored),
    Scenario("low-endpoint-address", "peer addresses below 1024 are accepted", low_endpoint_address),
    Scenario("used-len", "used.len covers header + hdr.len and stays within the buffer", used_len),
    Scenario("notification-delivery", "the remote kicks after sending while the host waits", notification_delivery),
    Scenario("notification-suppression", "no kick while avail.flags = NO_INTERRUPT", notification_suppression),
    Scenario("burst-fills-ring", "a full ring of messages is delivered in order", burst_fills_ring),
    Scenario("index-wraparound", "buffers recycle across the 16-bit index wrap", index_wraparound),
    Scenario("ns-from-host", "NS create/destroy sent by the host is accepted", ns_from_host),
    Scenario("big-buffers", "buffers above 512 bytes carry up to buffer - 16 bytes each way", big_buffers),
    Scenario("batches", "send_many/recv_many carry many messages per call, in order", batches),
)
"""Run in this order on one started peer; then the lifecycle scenarios below, each on its own start."""

LIFECYCLE: tuple[Scenario, ...] = (
    Scenario("shutdown", "when the host goes, the remote notices and ends cleanly", shutdown),
    Scenario("peer-death", "the host reports a dead remote (PeerLost) within 5 s", peer_death),
    Scenario("peer-restart", "a restarted remote announces its channel again and serves", peer_restart),
)
