"""``rproc demo``: load the example firmware on the sim platform, exchange messages, summarise, stop."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from remoteproc.boards import MPS2_AN505
from remoteproc.errors import RemoteprocError
from remoteproc.platforms.base import Platform
from remoteproc.platforms.qemu import QemuPlatform
from remoteproc.platforms.sim import SimPlatform
from remoteproc.rproc import RemoteProc
from rpmsg.device import Endpoint
from rpmsg.protocol import LINUX_BUFFER_SIZE

# A wheel carries the example firmware in remoteproc/example_firmware/ (setup.py builds it when
# arm-none-eabi-gcc is there at build time); a source checkout has it in firmware/build/ (make -C firmware).
PACKAGED_FIRMWARE = Path(__file__).resolve().parent / "example_firmware" / "services.elf"
SOURCE_FIRMWARE = Path(__file__).resolve().parent.parent / "firmware" / "build" / "services.elf"
DEFAULT_FIRMWARE = PACKAGED_FIRMWARE if PACKAGED_FIRMWARE.is_file() else SOURCE_FIRMWARE


@dataclass
class DemoReport:
    firmware: str
    sizes_checked: int
    rtt_p50_us: float
    rtt_p99_us: float
    msgs_per_s: float
    trace: str


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
    with RemoteProc(platform) as rp:
        last = [0.0]

        def progress(done: int, total: int) -> None:
            if done == total or time.monotonic() - last[0] > 0.2:
                last[0] = time.monotonic()
                say(f"  loading {done}/{total} bytes")

        rp.load(firmware, progress=progress)
        assert rp.resources is not None
        for c in rp.resources.carveouts:
            say(f"  carveout {c.name!r}: {c.da:#x}, {c.len:#x} bytes")
        for v in rp.resources.vdevs:
            rings = ", ".join(f"vring {r.notifyid} at {r.da:#x} ({r.num} entries)" for r in v.vrings)
            say(f"  rpmsg vdev: {rings}; buffers at {v.buffers_da:#x}")
        started = time.perf_counter()
        rp.start()
        device = rp.rpmsg_device()
        say(f"started in {1000 * (time.perf_counter() - started):.0f} ms: DRIVER_OK, first kick sent")
        ep = device.open("rpmsg-echo", timeout=10)
        ep.settimeout(10)
        say(f"channels announced: {', '.join(f'{n} at {a:#x}' for n, a in sorted(device.channels().items()))}")

        limit = LINUX_BUFFER_SIZE - 16
        for size in range(1, limit + 1):
            payload = bytes((size + i) & 0xFF for i in range(size))
            ep.send(payload)
            if ep.recv() != payload:
                raise RemoteprocError(f"echo of {size} bytes came back different")
        say(f"echoed every size from 1 to {limit} bytes: all identical")

        p50, p99 = round_trip_us(ep, rounds)
        say(f"round trip, 16 bytes, {rounds} times: p50 {p50:.1f} us, p99 {p99:.1f} us")

        window = 64
        rate = echo_stream_rate(ep, bytes(limit), stream, window)
        say(
            f"echo stream, {limit} bytes, {stream} messages, window {window}: {rate:,.0f} msgs/s each way "
            f"({rate * limit / 1e6:.1f} MB/s)"
        )
        ep.close()
        trace = rp.read_trace()
        say("trace0:")
        for line in trace.splitlines():
            say(f"  {line}")
        rp.stop()
        say(f"stopped: {rp.state.value}")
        return DemoReport(str(firmware), limit, p50, p99, rate, trace)


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
