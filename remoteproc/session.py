"""``rproc load``: load a firmware on a platform, start it, talk to its channels, show its trace, stop.

The platform's state lives in this process (QEMU and the sim remote are its children), so one command runs a
whole session: messages come from ``--send CHANNEL:TEXT`` options or, with ``--stdin``, from lines
``CHANNEL TEXT`` on standard input.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from remoteproc.boards import MPS2_AN505
from remoteproc.errors import RemoteprocError
from remoteproc.loader import Progress
from remoteproc.platforms.base import Platform
from remoteproc.rproc import RemoteProc
from rpmsg import RpmsgDevice, RpmsgError, RpmsgTimeout
from rpmsg.device import Endpoint
from rpmsg.protocol import LINUX_BUFFER_SIZE, LINUX_MAX_BUFFERS, safe_name

PLATFORMS = ("qemu-an505", "sim", "devmem")


def make_platform(name: str, board: str | Path | None = None) -> Platform:
    """A platform by name; ``devmem`` needs its board file (``--board``)."""
    if name == "devmem" or board is not None:
        from remoteproc.platforms.devmem import DevmemBoard, DevmemPlatform

        if board is None:
            raise RemoteprocError("the devmem platform needs a board file: --board FILE.toml")
        return DevmemPlatform(DevmemBoard.load(board))
    if name == "qemu-an505":
        from remoteproc.platforms.qemu import QemuPlatform

        return QemuPlatform(MPS2_AN505)
    if name == "sim":
        from remoteproc.platforms.sim import SimPlatform

        return SimPlatform(MPS2_AN505)
    raise RemoteprocError(f"unknown platform {name!r} (known: {', '.join(PLATFORMS)})")


@dataclass
class SessionResult:
    channels: dict[str, int]
    replies: list[tuple[str, bytes | None]] = field(default_factory=list)
    trace: str = ""


def parse_send(item: str) -> tuple[str, bytes]:
    channel, sep, text = item.partition(":")
    if not sep or not channel:
        raise RemoteprocError(f"--send wants CHANNEL:TEXT, not {item!r}")
    return channel, text.encode()


def run_session(
    firmware: Path,
    platform: Platform,
    sends: Iterable[tuple[str, bytes]],
    *,
    timeout: float = 5.0,
    show_trace: bool = False,
    progress: Progress | None = None,
    say: Callable[[str], None] = print,
    rx_size: int = LINUX_BUFFER_SIZE,
    tx_size: int = LINUX_BUFFER_SIZE,
    buffers: int = LINUX_MAX_BUFFERS,
) -> SessionResult:
    """``rx_size`` / ``tx_size`` / ``buffers``: the host's rpmsg buffer sizes and most buffers (:class:`RemoteProc`)."""
    sends = list(sends)
    with RemoteProc(platform, rx_size=rx_size, tx_size=tx_size, buffers=buffers) as rp:
        rp.load(firmware, progress=progress)
        rp.start()
        if rp.rpmsg is None and not sends:  # a table without a vdev is legal: the remote runs, nothing to talk to
            say("no vdev in the resource table: no rpmsg channels")
            result = SessionResult(channels={})
        else:
            result = _exchange(rp, sends, timeout, say)
        if show_trace:
            for index in range(len(rp.traces())):
                result.trace = rp.read_trace(index)
                say(f"trace{index}:")
                for line in result.trace.splitlines():
                    say(f"  {safe_name(line.encode())}")
        rp.stop()
        return result


def follow_trace(
    firmware: Path,
    platform: Platform,
    *,
    seconds: float,
    index: int = 0,
    sends: Iterable[tuple[str, bytes]] = (),
    say: Callable[[str], None] = print,
) -> str:
    """Load and start the firmware, then print what it writes to trace buffer ``index`` as it appears, for
    ``seconds`` (messages in ``sends`` go out first, so they can make the firmware log); returns the text."""
    with RemoteProc(platform) as rp:
        rp.load(firmware)
        rp.start()
        pending = list(sends)
        device = rp.rpmsg_device() if pending else rp.rpmsg  # a firmware without a vdev can still log
        shown = ""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if pending:
                channel, payload = pending.pop(0)
                assert device is not None
                ep = device.open(channel, timeout=max(0.1, deadline - time.monotonic()))
                ep.send(payload)
            text = rp.read_trace(index)
            if len(text) > len(shown) and text.startswith(shown):
                for line in text[len(shown) :].splitlines(keepends=True):
                    say(safe_name(line.rstrip("\n").encode()))
                shown = text
            elif text != shown:  # the buffer wrapped or was rewritten: show it again whole, line by line
                for line in text.splitlines():
                    say(safe_name(line.encode()))
                shown = text
            if device is not None:
                device.process()
            time.sleep(0.02)
        rp.stop()
        return shown


def _exchange(
    rp: RemoteProc, sends: Iterable[tuple[str, bytes]], timeout: float, say: Callable[[str], None]
) -> SessionResult:
    """List the channels the remote announced, then send each message and wait for one reply to it (an
    endpoint per channel, opened on first use and closed at the end)."""
    device = rp.rpmsg_device()
    result = SessionResult(channels={})
    for name, addr in sorted(_settle(device, timeout).items()):
        say(f"channel {name} at {addr:#x}")
        result.channels[name] = addr
    endpoints: dict[str, Endpoint] = {}
    try:
        for channel, payload in sends:
            if channel not in endpoints:
                endpoints[channel] = device.open(channel, timeout=timeout)
                endpoints[channel].settimeout(timeout)
            ep = endpoints[channel]
            ep.send(payload)
            try:
                reply: bytes | None = ep.recv()
            except RpmsgError:
                reply = None
            result.replies.append((channel, reply))
            say(f"{channel} <- {_show(reply) if reply is not None else '(no reply within the timeout)'}")
    finally:
        for ep in endpoints.values():
            ep.close()
    return result


def _settle(device: RpmsgDevice, timeout: float) -> dict[str, int]:
    """Channels announced so far, after giving the remote a moment to announce (the first one, at least)."""
    deadline = time.monotonic() + min(timeout, 1.0)
    while time.monotonic() < deadline:
        device.process()
        if device.channels():
            time.sleep(0.05)
            device.process()
            break
        time.sleep(0.01)
    return device.channels()


def _show(data: bytes) -> str:
    text = data.decode("utf-8", errors="replace")
    return text if text.isprintable() else data.hex(" ")


def stdin_sends() -> list[tuple[str, bytes]]:
    out = []
    for line in sys.stdin:
        line = line.rstrip("\n")
        if not line.strip():
            continue
        channel, _, text = line.partition(" ")
        out.append((channel, text.encode()))
    return out


def attach_session(
    platform: Platform,
    sends: Iterable[tuple[str, bytes]],
    *,
    timeout: float = 5.0,
    table: int | None = None,
    say: Callable[[str], None] = print,
) -> SessionResult:
    """Attach to a remote that already runs (its live table where the board says, or at ``table``), talk to
    its channels, detach and leave it running."""
    rp = RemoteProc(platform)
    try:
        rp.attach(table)
        result = _exchange(rp, sends, timeout, say)
        rp.detach()
        say("detached: the remote keeps running")
        return result
    finally:
        rp.close()


@dataclass
class PingReport:
    times_us: list[float]

    @property
    def summary(self) -> str:
        t = sorted(self.times_us)
        return (
            f"{len(t)} round trips: min {t[0]:.1f} us, avg {sum(t) / len(t):.1f} us, "
            f"p50 {t[len(t) // 2]:.1f} us, max {t[-1]:.1f} us"
        )


def ping(
    firmware: Path,
    platform: Platform,
    *,
    channel: str = "rpmsg-echo",
    count: int = 10,
    size: int = 16,
    timeout: float = 5.0,
    say: Callable[[str], None] = print,
) -> PingReport:
    """Round trips through an echo channel, printed like ping(8)."""
    with RemoteProc(platform) as rp:
        rp.load(firmware)
        rp.start()
        ep = rp.rpmsg_device().open(channel, timeout=timeout)
        ep.settimeout(timeout)
        times = []
        for seq in range(1, count + 1):
            payload = seq.to_bytes(4, "little").ljust(size, b"\xa5")
            start = time.perf_counter()
            ep.send(payload)
            reply = ep.recv()
            took = (time.perf_counter() - start) * 1e6
            if reply != payload:
                raise RemoteprocError(f"{channel}: reply {seq} differs from what was sent")
            times.append(took)
            say(f"{len(reply)} bytes from {channel} ({ep.peer:#x}): seq={seq} time={took:.1f} us")
        report = PingReport(times)
        say(report.summary)
        rp.stop()
        return report


def listen(
    firmware: Path,
    platform: Platform,
    channel: str,
    *,
    seconds: float,
    send: bytes | None = None,
    timeout: float = 5.0,
    say: Callable[[str], None] = print,
) -> list[bytes]:
    """Print every message ``channel`` sends for ``seconds`` (after sending ``send``, to start a stream)."""
    with RemoteProc(platform) as rp:
        rp.load(firmware)
        rp.start()
        ep = rp.rpmsg_device().open(channel, timeout=timeout)
        if send is not None:
            ep.send(send)
        got: list[bytes] = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            ep.settimeout(left)
            try:
                data = ep.recv()
            except RpmsgTimeout:
                break
            got.append(data)
            say(f"{channel} <- {_show(data)}")
        rp.stop()
        return got
