"""Benchmark: the uart: link (COBS + CRC-32 frames, go-back-N) over a pty pair, next to raw bytes through the same
pty in the same run. Reports the protocol's efficiency (payload bytes / line bytes) and its throughput as a
fraction of the raw pty's. A pty is not a UART: the numbers say what the protocol costs, not a baud rate.

    .venv/bin/python benchmarks/uart_link.py [--messages 3000] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import Results  # noqa: E402
from transports.uart import FdPort, UartLink  # noqa: E402


def raw_rate(total: int) -> float:
    """Bytes per second from the pty master to its tty, no protocol."""
    import serial

    master, slave = os.openpty()
    port = serial.serial_for_url(os.ttyname(slave), timeout=0.05)
    got = 0

    def reader() -> None:
        nonlocal got
        while got < total:
            got += len(port.read(65536))

    t = threading.Thread(target=reader)
    start = time.perf_counter()
    t.start()
    FdPort(master).write(bytes(range(256)) * (total // 256))
    t.join()
    seconds = time.perf_counter() - start
    port.close()
    os.close(master)
    os.close(slave)
    return total / seconds


def link_run(messages: int, size: int) -> tuple[float, float, int]:
    master, slave = os.openpty()
    counting = FdPort(master)  # counts the bytes it puts on the line
    with UartLink.open(f"uart://{os.ttyname(slave)}") as rx, UartLink(counting, name="tx") as tx:
        tx.wait_connected(5)
        rx.wait_connected(5)
        payload = bytes(range(256)) * (size // 256) + bytes(size % 256)
        line_before = counting.written
        start = time.perf_counter()

        def send() -> None:
            for _ in range(messages):
                tx.send(payload, timeout=30)

        t = threading.Thread(target=send)
        t.start()
        for _ in range(messages):
            assert rx.recv(timeout=30) == payload
        seconds = time.perf_counter() - start
        t.join()
        line = counting.written - line_before
        retrans = tx.core.retransmissions
    os.close(master)
    os.close(slave)
    return messages * size / line, messages * size / seconds, retrans


class CountingWrapper:
    """Counts the bytes a link reads and writes on its port."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.read_bytes = self.written = 0

    def read(self, size: int = 1) -> bytes:
        data: bytes = self.inner.read(size)  # type: ignore[attr-defined]
        self.read_bytes += len(data)
        return data

    def write(self, data: bytes) -> int:
        self.written += len(data)
        return int(self.inner.write(data) or len(data))  # type: ignore[attr-defined]

    @property
    def in_waiting(self) -> int:
        return int(getattr(self.inner, "in_waiting", 0))

    def close(self) -> None:
        self.inner.close()  # type: ignore[attr-defined]


def round_trips(ep: Any, rounds: int, size: int) -> list[float]:
    """Seconds of each of ``rounds`` round trips of ``size`` bytes through an echoing endpoint."""
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        ep.send(bytes(size))
        ep.recv()
        times.append(time.perf_counter() - t0)
    return times


def qemu_run(rounds: int, messages: int, res: Results) -> None:
    """rpmsg through the firmware on QEMU's emulated UART (firmware/examples/uart_echo), the host's endpoints on
    the C path and on the Python path in turn (RPROC_RPMSG_FASTPATH)."""
    for c_path in (False, True):
        os.environ["RPROC_RPMSG_FASTPATH"] = "1" if c_path else "0"
        try:
            qemu_once(rounds, messages, res, "C path" if c_path else "Python path")
        finally:
            os.environ.pop("RPROC_RPMSG_FASTPATH", None)


def qemu_once(rounds: int, messages: int, res: Results, path: str) -> None:
    """One QEMU session of :func:`qemu_run`."""
    import shutil
    import statistics

    from remoteproc.platforms.qemu_uart import QemuUartSession

    firmware = REPO / "firmware" / "build" / "uart_echo.elf"
    if rounds < 1 or messages < 1:
        print("(QEMU run skipped: --qemu-rounds and --qemu-messages must be at least 1)")
        return
    if shutil.which("qemu-system-arm") is None or not firmware.exists():
        print("(QEMU or firmware/build/uart_echo.elf missing: run ./scripts/setup)")
        return
    with QemuUartSession(firmware) as s:
        counter = CountingWrapper(s.link.port)
        s.link.port = counter
        ep = s.rpmsg.open("rpmsg-echo", timeout=30)
        ep.settimeout(30)
        times = round_trips(ep, rounds, 16)
        line0 = counter.read_bytes + counter.written
        start = time.perf_counter()
        sent = received = 0
        while received < messages:
            while sent < messages and sent - received < 8:
                ep.send(os.urandom(256))  # random: the mirror sends only blocks that changed
                sent += 1
            ep.recv()
            received += 1
        seconds = time.perf_counter() - start
        line = counter.read_bytes + counter.written - line0
    payload = 2 * messages * 256
    res.add(f"QEMU M33 over its UART, {path}: round trip 16 B p50", statistics.median(times) * 1e6, "us",
            better="lower")  # fmt: skip
    res.add(f"QEMU M33 over its UART, {path}: echo 256 B, 8 in flight", messages / seconds, "msgs/s",
            better="higher")  # fmt: skip
    res.add(f"QEMU M33 over its UART, {path}: payload / line bytes", payload / line, "fraction", better="higher")
    print(f"firmware on QEMU's M33 over its emulated UART (rpmsg + mirror + link), {path}: round trip 16 B p50 "
          f"{statistics.median(times) * 1e3:.1f} ms; 256 B echoed, 8 in flight: {messages / seconds:.0f} msgs/s, "
          f"{payload / seconds / 1e3:.1f} KB/s of payload, payload / line bytes {payload / line:.1%}")  # fmt: skip


def mirror_cost(messages: int) -> tuple[float, float]:
    """What the uart: link's mirror costs the host per 496-byte message in Python (transports/mirror.py, the
    doorbell C cannot kick): seconds of ``Mirror.changes`` after a send's writes (a buffer, its descriptor, the avail
    entry and index, on rproc's 16-entry UART profile), and the bytes of mirror messages it makes for the line."""
    from rpmsg.wiring import UART_PROFILE, mirror_writes
    from transports.memory import MappedRegion, RegionMemory
    from transports.mirror import Mirror

    p = UART_PROFILE
    mem = RegionMemory([MappedRegion("window", p.base, p.size, bytearray(p.size))])
    ranges, index_fields = mirror_writes(p, "host")
    mirror = Mirror(mem, ranges, index_fields=index_fields)
    mirror.changes()
    pool, v = ranges[-1][0], p.tx_layout
    made = 0
    spent = 0.0
    for i in range(messages):
        slot = i % p.tx_count
        mem.write(pool + slot * p.tx_size, i.to_bytes(16, "little") + os.urandom(496))  # every block changed
        mem.write(v.desc + 16 * slot, (pool + slot * p.tx_size).to_bytes(8, "little") + (512).to_bytes(8, "little"))
        mem.write(v.avail + 4 + 2 * (i % v.num), slot.to_bytes(2, "little"))
        mem.write(v.avail + 2, (i + 1 & 0xFFFF).to_bytes(2, "little"))
        start = time.perf_counter()
        made += sum(map(len, mirror.changes()))
        spent += time.perf_counter() - start
    return spent / messages, made / messages


def remote_child(fd: int, rounds: int, messages: int, wait: str) -> None:
    """The remote side of :func:`rpmsg_run`, in its own process on the pty's master: echoes ``rounds`` messages,
    then takes ``messages`` and says "done"."""
    from rpmsg.wiring import UART_PROFILE, remote_on
    from transports.uart import UartWindowLink

    p = UART_PROFILE
    with UartLink(FdPort(fd), name="remote", rto=0.03) as link:
        link.wait_connected(10)
        remote = remote_on(UartWindowLink(link, p.size, "remote"), p, wait=wait)  # type: ignore[arg-type]
        served = remote.endpoint("bench")
        served.settimeout(60)
        src = 0
        for _ in range(rounds):
            data, src = served.recvfrom()
            served.sendto(data, src)
        for _ in range(messages):
            served.recvfrom()
        served.sendto(b"done", src)
        time.sleep(0.5)  # the reply crosses the line before the link closes
        remote.close()


def rpmsg_once(c_path: bool, wait: str, rounds: int, messages: int) -> tuple[float, float]:
    """rproc's host -> rproc's remote over a pty, each in its own process, both on the C path or both on the
    Python path (RPROC_RPMSG_FASTPATH): (64-byte round trip p50 in s, 496-byte one-way msgs/s)."""
    import statistics
    import subprocess

    from rpmsg.wiring import UART_PROFILE, host_on
    from transports.uart import UartWindowLink

    env = dict(os.environ, RPROC_RPMSG_FASTPATH="1" if c_path else "0")
    os.environ["RPROC_RPMSG_FASTPATH"] = env["RPROC_RPMSG_FASTPATH"]
    master, slave = os.openpty()
    child = subprocess.Popen(
        [sys.executable, __file__, "--remote-child", str(master), str(rounds), str(messages), wait],
        pass_fds=(master,), env=env,
    )  # fmt: skip
    os.close(master)
    p = UART_PROFILE
    try:
        with UartLink.open(f"uart://{os.ttyname(slave)}", rto=0.03) as link:
            link.wait_connected(10)
            host = host_on(UartWindowLink(link, p.size, "host"), p, wait=wait)  # type: ignore[arg-type]
            assert host._gate.open == c_path, "the path asked for"
            ep = host.open("bench", timeout=30)
            ep.settimeout(60)
            times = round_trips(ep, rounds, 64)
            payload = os.urandom(496)
            start = time.perf_counter()
            for _ in range(messages):
                ep.send(payload)
            assert ep.recv() == b"done"
            rate = messages / (time.perf_counter() - start)
            host.close()
    finally:
        child.wait(30)
        os.close(slave)
        os.environ.pop("RPROC_RPMSG_FASTPATH", None)
    return statistics.median(times), rate


def rpmsg_run(runs: int, rounds: int, messages: int, res: Results) -> None:
    """rpmsg over the uart: link between two processes, the endpoints' C path against the Python path in turn
    (the mirror's doorbell had no C path before; the Python path is that baseline, measured in the same run)."""
    import statistics

    if runs < 1:
        return
    print(f"rpmsg host -> remote over a pty, two processes, {runs} runs in turn (median [range]):")
    for wait in ("block", "spin"):
        got: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for _ in range(runs):
            for c_path in (False, True):
                got[c_path].append(rpmsg_once(c_path, wait, rounds, messages))
        for what, index, unit, scale in (("round trip 64 B", 0, "us", 1e6), ("one-way 496 B", 1, "msgs/s", 1.0)):
            py = [r[index] for r in got[False]]
            c = [r[index] for r in got[True]]
            ratios = [b / a if index else a / b for a, b in zip(py, c, strict=True)]  # > 1: the C path better
            base = (f"rpmsg over uart, {wait}: {what}, Python path", statistics.median(py) * scale)
            better = "lower" if index == 0 else "higher"
            res.add(*base, unit, better=better)
            res.add(f"rpmsg over uart, {wait}: {what}, C path", statistics.median(c) * scale, unit, better=better,
                    baseline=base)  # fmt: skip
            print(f"  {wait:>5} {what:>16}: Python path {statistics.median(py) * scale:,.0f} {unit}, C path "
                  f"{statistics.median(c) * scale:,.0f} {unit}: {statistics.median(ratios):.2f}x "
                  f"[{min(ratios):.2f}-{max(ratios):.2f}] in the C path's favour")  # fmt: skip


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--remote-child":
        remote_child(int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=3000)
    ap.add_argument("--qemu-rounds", type=int, default=50)
    ap.add_argument("--qemu-messages", type=int, default=100)
    ap.add_argument("--rpmsg-runs", type=int, default=3, help="runs of each path for the rpmsg rows (0: none)")
    ap.add_argument("--rpmsg-messages", type=int, default=3000)
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    res = Results(
        "uart_link",
        {
            "messages": args.messages,
            "qemu_rounds": args.qemu_rounds,
            "qemu_messages": args.qemu_messages,
            "rpmsg_runs": args.rpmsg_runs,
            "rpmsg_messages": args.rpmsg_messages,
        },
    )
    raw = raw_rate(4 << 20)
    base = ("raw pty", raw)
    res.add(*base, "B/s", better="higher")
    print(f"uart: link over a pty pair; raw pty baseline in the same run: {raw / 1e6:.1f} MB/s")
    print(f"{'payload':>8} {'efficiency':>11} {'link MB/s':>10} {'of raw':>7} {'retransmitted':>14}")
    for size in (16, 64, 256):
        eff, rate, retrans = link_run(args.messages, size)
        res.add(f"link {size} B: payload / line bytes", eff, "fraction", better="higher")
        res.add(f"link {size} B: payload rate", rate, "B/s", better="higher", baseline=base)
        res.add(f"link {size} B: retransmissions", retrans, "frames", better="lower")
        print(f"{size:>6} B {eff:>10.1%} {rate / 1e6:>10.2f} {rate / raw:>7.1%} {retrans:>14}")
    print("efficiency = payload bytes / bytes on the line (frames, CRC, COBS, acks excluded from payload)")
    per, made = mirror_cost(args.messages)
    line = made * 10 / 1e6  # the bytes at 1 Mbaud, 10 bits a byte: the RP2350 boot ROM's and our firmware's rate
    res.add("mirror: Python per 496-byte message (Mirror.changes)", per, "s", better="lower")
    res.add("mirror: bytes made per 496-byte message", made, "B", better="lower")
    print(
        f"mirror (the host's Python per 496-byte send): {per * 1e6:.1f} us, {made:.0f} bytes of mirror messages; "
        f"those bytes take {line * 1e3:.2f} ms at 1 Mbaud: the Python is {per / line:.1%} of the line's time"
    )
    rpmsg_run(args.rpmsg_runs, 300, args.rpmsg_messages, res)
    qemu_run(args.qemu_rounds, args.qemu_messages, res)
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
