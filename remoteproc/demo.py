"""``rproc demo``: load the example firmware on the sim platform, exchange messages, summarise, stop.

:func:`run_demo` narrates as it goes through ``say`` (the CLI prints it, or sends it to stderr with ``--json``)
and returns a :class:`DemoReport` holding every fact it said, for the CLI to print as JSON.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from remoteproc.boards import MPS2_AN505
from remoteproc.errors import RemoteprocError
from remoteproc.platforms.base import Platform
from remoteproc.platforms.qemu import QemuPlatform
from remoteproc.platforms.sim import SimPlatform
from remoteproc.rproc import RemoteProc
from rpmsg.endpoint import Endpoint
from rpmsg.protocol import LINUX_BUFFER_SIZE

# A wheel carries the example firmware in remoteproc/example_firmware/ (setup.py builds it when
# arm-none-eabi-gcc is there at build time); a source checkout has it in firmware/build/ (make -C firmware).
PACKAGED_FIRMWARE = Path(__file__).resolve().parent / "example_firmware" / "services.elf"
SOURCE_FIRMWARE = Path(__file__).resolve().parent.parent / "firmware" / "build" / "services.elf"
DEFAULT_FIRMWARE = PACKAGED_FIRMWARE if PACKAGED_FIRMWARE.is_file() else SOURCE_FIRMWARE


@dataclass
class DemoReport:
    """What a demo run found and measured (addresses as numbers; :meth:`to_dict` writes them as "0x...")."""

    firmware: str
    sizes_checked: int
    rtt_p50_us: float
    rtt_p99_us: float
    msgs_per_s: float
    trace: str
    platform: str = ""
    carveouts: list[tuple[str, int, int]] = field(default_factory=list)  # name, da, len
    vdevs: list[tuple[list[tuple[int, int, int]], int]] = field(default_factory=list)  # [(notifyid, da, num)], buf da
    start_ms: float = 0.0
    channels: dict[str, int] = field(default_factory=dict)
    rounds: int = 0
    rtt_size: int = 16
    stream_messages: int = 0
    stream_size: int = 0
    stream_window: int = 0
    state: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "firmware": self.firmware,
            "platform": self.platform,
            "carveouts": [{"name": n, "da": f"{da:#x}", "len": f"{size:#x}"} for n, da, size in self.carveouts],
            "vdevs": [
                {
                    "vrings": [{"notifyid": i, "da": f"{da:#x}", "num": num} for i, da, num in rings],
                    "buffers_da": f"{buffers:#x}",
                }
                for rings, buffers in self.vdevs
            ],
            "start_ms": round(self.start_ms, 3),
            "channels": {name: f"{addr:#x}" for name, addr in sorted(self.channels.items())},
            "echo_sizes": {"first": 1, "last": self.sizes_checked, "identical": True},
            "round_trip": {
                "size": self.rtt_size,
                "rounds": self.rounds,
                "p50_us": self.rtt_p50_us,
                "p99_us": self.rtt_p99_us,
            },
            "stream": {
                "size": self.stream_size,
                "messages": self.stream_messages,
                "window": self.stream_window,
                "msgs_per_s": self.msgs_per_s,
                "mb_per_s": self.msgs_per_s * self.stream_size / 1e6,
            },
            "trace": self.trace,
            "state": self.state,
        }


def choose_platform(name: str, say: Callable[[str], None]) -> Platform:
    """``qemu``: the firmware runs on an emulated Cortex-M33; ``sim``: a Python process plays the remote;
    ``auto``: qemu when qemu-system-arm is installed, else sim (saying so)."""
    if name in ("auto", "qemu"):
        if shutil.which("qemu-system-arm"):
            platform = QemuPlatform(MPS2_AN505)
            say(
                "platform qemu-an505: the firmware runs on an emulated Cortex-M33; its 16 MiB RAM is "
                f"{platform.ram_path}, shared with this process"
            )
            return platform
        if name == "qemu":
            raise FileNotFoundError("qemu-system-arm is not installed: run ./scripts/setup")
        say(
            "qemu-system-arm is not installed: falling back to the sim platform (a Python process plays the "
            "remote; ./scripts/setup installs QEMU)"
        )
    sim = SimPlatform(MPS2_AN505)
    say(f"platform sim, board {MPS2_AN505.name}: the remote's RAM is {sim.path}")
    return sim


def run_demo(
    firmware: Path = DEFAULT_FIRMWARE,
    *,
    platform_name: str = "auto",
    rounds: int = 2000,
    stream: int = 20000,
    say: Callable[[str], None] = print,
) -> DemoReport:
    if not firmware.is_file():
        raise FileNotFoundError(
            f"{firmware} is missing: in a checkout, build it with ./scripts/setup (make -C firmware); an installed "
            "wheel carries it only when arm-none-eabi-gcc was there when the wheel was built: give --firmware FW.elf"
        )
    platform = choose_platform(platform_name, say)
    report = DemoReport(str(firmware), 0, 0.0, 0.0, 0.0, "", platform=platform.name)
    with RemoteProc(platform) as rp:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if done == total or time.monotonic() - last[0] > 0.2:
                last[0] = time.monotonic()
                say(f"  loading {done}/{total} bytes")

        rp.load(firmware, progress=progress)
        assert rp.resources is not None
        for c in rp.resources.carveouts:
            report.carveouts.append((c.name, c.da, c.len))
            say(f"  carveout {c.name!r}: {c.da:#x}, {c.len:#x} bytes")
        for v in rp.resources.vdevs:
            report.vdevs.append(([(r.notifyid, r.da, r.num) for r in v.vrings], v.buffers_da))
            rings = ", ".join(f"vring {r.notifyid} at {r.da:#x} ({r.num} entries)" for r in v.vrings)
            say(f"  rpmsg vdev: {rings}; buffers at {v.buffers_da:#x}")
        started = time.perf_counter()
        rp.start()
        device = rp.rpmsg_device()
        report.start_ms = 1000 * (time.perf_counter() - started)
        say(f"started in {report.start_ms:.0f} ms: DRIVER_OK, first kick sent")
        ep = device.open("rpmsg-echo", timeout=10)
        ep.settimeout(10)
        report.channels = dict(device.channels())
        say(f"channels announced: {', '.join(f'{n} at {a:#x}' for n, a in sorted(report.channels.items()))}")

        limit = LINUX_BUFFER_SIZE - 16
        for size in range(1, limit + 1):
            payload = bytes((size + i) & 0xFF for i in range(size))
            ep.send(payload)
            if ep.recv() != payload:
                raise RemoteprocError(f"echo of {size} bytes came back different")
        report.sizes_checked = limit
        say(f"echoed every size from 1 to {limit} bytes: all identical")

        p50, p99 = round_trip_us(ep, rounds)
        report.rounds, report.rtt_p50_us, report.rtt_p99_us = rounds, p50, p99
        say(f"round trip, 16 bytes, {rounds} times: p50 {p50:.1f} us, p99 {p99:.1f} us")

        window = 64
        rate = echo_stream_rate(ep, bytes(limit), stream, window)
        report.stream_messages, report.stream_size, report.stream_window = stream, limit, window
        report.msgs_per_s = rate
        say(
            f"echo stream, {limit} bytes, {stream} messages, window {window}: {rate:,.0f} msgs/s each way "
            f"({rate * limit / 1e6:.1f} MB/s)"
        )
        ep.close()
        report.trace = rp.read_trace()
        say("trace0:")
        for line in report.trace.splitlines():
            say(f"  {line}")
        rp.stop()
        report.state = rp.state.value
        say(f"stopped: {report.state}")
        return report


def round_trip_us(ep: Endpoint, rounds: int) -> tuple[float, float]:
    """p50 and p99, in microseconds, of ``rounds`` 16-byte round trips through an echo endpoint."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        ep.send(b"0123456789abcdef")
        ep.recv()
        times.append(time.perf_counter_ns() - t0)
    times.sort()
    return times[len(times) // 2] / 1000, times[int(len(times) * 0.99)] / 1000


def echo_stream_rate(ep: Endpoint, payload: bytes, count: int, window: int = 64) -> float:
    """Messages per second each way when ``count`` copies of ``payload`` go through an echo endpoint with up
    to ``window`` in flight."""
    sent = got = 0
    begin = time.perf_counter()
    while got < count:
        while sent < count and sent - got < window:
            ep.send(payload)
            sent += 1
        ep.recv()
        got += 1
    return count / (time.perf_counter() - begin)
