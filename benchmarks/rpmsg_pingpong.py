"""Benchmark: rpmsg through the Python endpoint API between two processes over shared memory, next to C
baselines measured in the same run.

- Round trip of a 16-byte message through a host endpoint (``ep.send``; ``ep.recv``) to an echo and back:
  busy-poll against the C echo through the same vring engine (both sides spinning, one CPU each), and blocking
  against a raw eventfd ping-pong (both sides sleeping in the kernel). The remote is the firmware's C rpmsg
  library (benchmarks/c/rpmsg_echo_remote.c) — what a host talks to in practice — and, for comparison, rproc's
  Python remote.
- Host -> remote throughput of 496-byte messages, copying (send), zero-copy (get_buffer/send_buffer) and batched
  (send_many), the last next to benchmarks/virtio_stream.py's C virtqueue stream at the same size; and the zero-copy
  sends (one, one reused, batched: get_buffers/send_buffers_reuse) against copy and the batched copy at 496 B and
  at 16 KiB (16 KiB + 16-byte send buffers).
- Host -> rproc's Python remote one-way, 496 B, one message a call and batched, in wait modes busy and spin, each
  next to host -> the C remote with the same host API and wait mode (``--python-remote-only``: just these).
- The same one-way copy stream and a blocking round trip with one byte per kick on the socket (OpenAMP's Linux
  layout) next to eventfd kicks (``--doorbells-only``: just these).

Where the processes run is pinned (os.sched_setaffinity), because on a virtual machine waking a sleeping vCPU costs
tens of microseconds: blocking pairs share one CPU (each wake-up is a context switch, as on a single-core SoC),
busy-polling pairs get one CPU each. Both baselines are pinned the same way as what they are compared with.

    .venv/bin/python benchmarks/rpmsg_pingpong.py [--rounds 20000] [--messages 100000] [--json FILE]
        [--histogram FILE.svg] [--throughput-only | --doorbells-only | --python-remote-only] [--repeat N]

``--json``: every figure with its baseline and the ratio (benchmarks/report.py); ``--histogram``: the round trips
of the Python endpoint, each configuration's samples as a latency histogram.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import Results, histogram, histogram_svg  # noqa: E402
from rpmsg.endpoint import Endpoint  # noqa: E402
from rpmsg.profiles import Profile  # noqa: E402
from rpmsg.wiring import host_on  # noqa: E402
from transports.url import open_link  # noqa: E402

T = TypeVar("T")


def pingpong() -> Path:
    out = REPO / "build" / "bench" / "pingpong"
    out.parent.mkdir(parents=True, exist_ok=True)
    src = [REPO / "benchmarks" / "c" / "pingpong.c", REPO / "virtio" / "csrc" / "vring.c"]
    if not out.exists() or any(s.stat().st_mtime > out.stat().st_mtime for s in src):
        subprocess.run(
            ["gcc", "-O2", "-std=gnu11", f"-I{REPO / 'virtio' / 'csrc'}", "-o", str(out), *map(str, src)], check=True
        )
    return out


def c_baseline(mode: str, rounds: int, split: tuple[int, int] | None = None) -> float:
    env = {**os.environ, **({"PINGPONG_SPLIT": f"{split[0]},{split[1]}"} if split else {})}
    res = subprocess.run(
        [str(pingpong()), mode, str(rounds)], capture_output=True, text=True, check=True, timeout=300, env=env
    )
    return float(res.stdout.split()[1]) / 1000.0  # microseconds


def python_eventfd_floor(rounds: int, split: tuple[int, int] | None = None) -> float:
    """The same raw eventfd ping-pong driven from Python (os.eventfd_write/read, nothing else): what any Python
    code pays for a blocking round trip before doing any work."""
    to_peer, from_peer = os.eventfd(0), os.eventfd(0)
    peer = subprocess.Popen(
        [str(pingpong()), "eventfd-peer", str(to_peer), str(from_peer)], pass_fds=(to_peer, from_peer)
    )
    if split:
        os.sched_setaffinity(peer.pid, {split[1]})
    try:
        write, read, clock = os.eventfd_write, os.eventfd_read, time.perf_counter_ns
        times = []
        for i in range(rounds + 1000):
            start = clock()
            write(to_peer, 1)
            read(from_peer)
            if i >= 1000:
                times.append(clock() - start)
        return statistics.median(times) / 1000.0
    finally:
        os.close(to_peer)
        peer.kill()
        peer.wait()
        os.close(from_peer)


@contextlib.contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Run this process (and the processes it starts) on ``cpus``; None: wherever the scheduler likes."""
    before = os.sched_getaffinity(0)
    if cpus is not None:
        os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def with_remote(
    wait: str,
    service: str,
    remote: str,
    body: Callable[[Endpoint], T],
    split: tuple[int, int] | None = None,
    doorbell: str = "eventfd",
    remote_wait: str | None = None,
) -> T:
    """``doorbell``: the shm transport's kind (eventfd, or socket: one byte per kick on the socket, as OpenAMP's
    Linux layout); ``remote_wait``: the remote's own wait mode when it is not the host's."""
    name = f"rproc-bench-{os.getpid()}-{wait}-{remote}"
    script = str(REPO / "benchmarks" / "rpmsg_remote.py")
    # A blocking C remote sleeps in read() on its kick, as the C baselines do (in ppoll it would also watch the
    # host's socket, 0.6 us more a round trip); it cannot see the host go, so it is terminated at the end.
    if remote_wait is None:
        remote_wait = "read" if remote == "c" and wait == "block" else wait
    proc = subprocess.Popen([sys.executable, script, name, remote_wait, service, remote])
    if split:
        os.sched_setaffinity(proc.pid, {split[1]})
    try:
        link = open_link(f"shm://{name}?size={Profile().size}&doorbell={doorbell}", role="host")
        device = host_on(link, wait=wait, timeout=20)  # type: ignore[arg-type]
        try:
            ep = device.open(f"bench-{service}", timeout=10)
            result = body(ep)
            ep.close()
            return result
        finally:
            device.close()
            link.close()
    finally:
        if remote_wait == "read":
            proc.terminate()
        proc.wait(timeout=10)


def round_trip(
    wait: str,
    remote: str,
    rounds: int,
    split: tuple[int, int] | None = None,
    doorbell: str = "eventfd",
    remote_wait: str | None = None,
) -> list[float]:
    """Every round trip's time, microseconds (after 1000 to warm up)."""

    def body(ep: Endpoint) -> list[float]:
        payload = bytes(16)
        for _ in range(1000):
            ep.send(payload)
            ep.recv()
        times = []
        clock = time.perf_counter_ns
        for _ in range(rounds):
            start = clock()
            ep.send(payload)
            ep.recv()
            times.append(clock() - start)
        return [t / 1000.0 for t in times]

    return with_remote(wait, "echo", remote, body, split, doorbell, remote_wait)


BATCH = 64


def throughput(
    messages: int, mode: str, wait: str = "spin", doorbell: str = "eventfd", size: int = 496, remote: str = "c"
) -> float:
    """Host -> remote msgs/s of ``size``-byte messages (``remote``: rpmsg_remote.py's kind, the C remote by
    default; the others only at 496 B): ``copy`` (send of one bytes object), ``copy-write`` (the
    producer writes 4 bytes into a bytearray, then send), ``zero-copy`` (get_buffer, write 4 bytes into its view,
    send_buffer), ``zero-copy-reuse`` (one TxBuffer: write 4 bytes into it, send_buffer_reuse),
    ``zero-copy-reuse-as-is`` (the same writing nothing: the producer's cost left out, as ``copy`` leaves it out),
    ``batch``
    (send_many of BATCH messages a call) or ``zero-copy-batch`` (a list of BATCH TxBuffers kept: write 4 bytes
    into each, send_buffers_reuse, get_buffers for the ones not re-armed), or ``zero-copy-batch-as-is`` (the same
    writing nothing: each buffer goes with what it holds, as send_many of one constant list sends the same bytes
    again; the producer's cost left out on both sides). Above 496 bytes the host's send buffers
    are ``size`` + 16 bytes (Profile.tx_size) and the C remote is given the same profile."""

    def body(ep: Endpoint) -> float:
        payload = bytes(size)
        batch = [payload] * BATCH
        start = time.perf_counter()
        if mode == "zero-copy":
            for i in range(messages):
                buf = ep.get_buffer()
                buf.view[:4] = i.to_bytes(4, "little")  # the producer writes in place; nothing is copied
                ep.send_buffer(buf, size)
        elif mode == "zero-copy-reuse":
            buf = ep.get_buffer()
            for i in range(messages):
                buf[:4] = i.to_bytes(4, "little")  # straight into the send buffer: no view made
                if not ep.send_buffer_reuse(buf, size):
                    buf = ep.get_buffer()  # none free right now: wait for one
            ep.device.give_back(buf)
        elif mode == "zero-copy-reuse-as-is":
            buf = ep.get_buffer()
            for _ in range(messages):
                if not ep.send_buffer_reuse(buf, size):
                    buf = ep.get_buffer()
            ep.device.give_back(buf)
        elif mode in ("zero-copy-batch", "zero-copy-batch-as-is"):
            write = mode == "zero-copy-batch"
            bufs = ep.get_buffers(BATCH)
            i = 0
            while i < messages:
                if len(bufs) > messages - i:
                    for b in bufs[messages - i :]:
                        ep.device.give_back(b)
                    del bufs[messages - i :]
                if write:
                    for b in bufs:
                        b[:4] = i.to_bytes(4, "little")
                        i += 1
                else:
                    i += len(bufs)
                k = ep.send_buffers_reuse(bufs, size)
                if k < len(bufs):  # the rest were sent, not re-armed: take new ones (waits for the first)
                    del bufs[k:]
                    if i < messages:
                        bufs += ep.get_buffers(BATCH - k)
            for b in bufs:
                ep.device.give_back(b)
        elif mode == "copy-write":
            work = bytearray(size)
            for i in range(messages):
                work[:4] = i.to_bytes(4, "little")
                ep.send(work)
        elif mode == "batch":
            for _ in range(messages // BATCH):
                ep.send_many(batch)
            ep.send_many(batch[: messages % BATCH])
        else:
            for _ in range(messages):
                ep.send(payload)
        ep.send(b"report")
        got = int(ep.recv())
        elapsed = time.perf_counter() - start
        assert got == messages, f"remote counted {got} of {messages}"
        return messages / elapsed

    if size <= 496:
        return with_remote(wait, "count", remote, body, doorbell=doorbell)
    assert remote == "c", "big messages go to the C remote"
    # Big buffers: the C remote is told the profile (rpmsg_remote.py's NUM:RX:TX argument, as big_buffers.py does)
    p = Profile(tx_size=size + 16)
    name = f"rproc-bench-{os.getpid()}-{wait}-big"
    cmd = [sys.executable, str(REPO / "benchmarks" / "rpmsg_remote.py"), name, wait, "count", "c"]
    proc = subprocess.Popen([*cmd, f"{p.num}:{p.rx_size}:{p.tx_size}"])
    try:
        link = open_link(f"shm://{name}?size={p.size}&doorbell={doorbell}", role="host")
        device = host_on(link, p, wait=wait, timeout=20)  # type: ignore[arg-type]
        try:
            ep = device.open("bench-count", timeout=10)
            result = body(ep)
            ep.close()
            return result
        finally:
            device.close()
            link.close()
    finally:
        proc.wait(timeout=10)


def stream_c_rate(length: int, count: int = 1_000_000) -> float:
    """benchmarks/virtio_stream.py's C program (two processes, one vring, busy-polling, batches of 64)."""
    from benchmarks.virtio_stream import build_baseline, c_rate

    return c_rate(build_baseline(), count, length, BATCH)


BIG = 16384  # the big-buffer streams' payload (#20: zero-copy >= 3x copy at 16 KiB)


def streaming(res: Results, messages: int, repeat: int = 1) -> None:
    """Host -> C remote, 496 B: copy, zero-copy and batched, each next to its baseline from this run; then the
    zero-copy sends (one, one reused, batched) against copy and against the batched copy at 496 B and at 16 KiB.
    ``repeat`` > 1: each figure that many times, interleaved; the figures are the medians (each ratio the median
    of the runs' own ratios is printed with its spread), and every run's figures are recorded too."""
    runs: list[dict[str, float]] = []
    for _ in range(repeat):
        runs.append(stream_once(messages))
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    if repeat > 1:
        for i, run in enumerate(runs):
            record(res, run, f"run {i + 1}: ")
    record(res, med, "")
    print(f"host -> C remote, {messages} messages a figure, {repeat} run(s): median [min-max]")
    rows = [
        ("496", "copy", "copy (send)", None),
        ("496", "copy-write", "copy, the producer writing 4 bytes", "copy"),
        ("496", "zero-copy", "zero-copy (get_buffer/send_buffer)", "copy"),
        ("496", "zero-copy-reuse", "zero-copy, one buffer reused", "copy"),
        ("496", "zero-copy-reuse", "  the same against the copy with the same write", "copy-write"),
        ("496", "zero-copy-reuse-as-is", "zero-copy, one buffer reused, writing nothing", "copy"),
        ("496", "batch-spin", f"batched copy (send_many of {BATCH})", "copy"),
        ("496", "zero-copy-batch", f"zero-copy batched ({BATCH}, send_buffers_reuse)", "copy"),
        ("496", "zero-copy-batch", "  the same against the batched copy", "batch-spin"),
        ("496", "zero-copy-batch-as-is", "zero-copy batched, writing nothing", "batch-spin"),
        ("496", "c-stream", "C virtqueue stream (baseline)", None),
        ("496", "batch-busy", "batched copy, both busy-polling", "c-stream"),
        ("496", "batch-spin", "batched copy, wait mode spin", "c-stream"),
        ("16k", "copy", "copy (send)", None),
        ("16k", "zero-copy", "zero-copy (get_buffer/send_buffer)", "copy"),
        ("16k", "zero-copy-reuse", "zero-copy, one buffer reused", "copy"),
        ("16k", "batch-spin", f"batched copy (send_many of {BATCH})", "copy"),
        ("16k", "zero-copy-batch", f"zero-copy batched ({BATCH}, send_buffers_reuse)", "copy"),
        ("16k", "zero-copy-batch", "  the same against the batched copy", "batch-spin"),
        ("16k", "zero-copy-batch", "  the same against the copy with the same write", "copy-write"),
        ("16k", "zero-copy-batch-as-is", "zero-copy batched, writing nothing", "batch-spin"),
    ]
    for size, key, label, base in rows:
        values = [r[f"{size} {key}"] for r in runs]
        line = f"  {'16 KiB' if size == '16k' else '496 B'} {label:<48} {spread(values, 1e-3, 'k')}"
        if base is not None:
            ratios = [r[f"{size} {key}"] / r[f"{size} {base}"] for r in runs]
            line += f"  {spread(ratios, 1, 'x')} {base}"
        print(line)


def spread(values: list[float], scale: float, unit: str) -> str:
    return f"{statistics.median(values) * scale:8.2f}{unit} [{min(values) * scale:.2f}-{max(values) * scale:.2f}]"


def stream_once(messages: int) -> dict[str, float]:
    """One run of every stream figure (msgs/s), keyed "496 MODE" / "16k MODE"."""
    modes = ("copy", "copy-write", "zero-copy", "zero-copy-reuse", "zero-copy-reuse-as-is")
    out = {f"496 {mode}": throughput(messages, mode) for mode in modes}
    out["496 c-stream"] = stream_c_rate(496)
    # Both sides busy-poll, as the C program does (sched_yield when its ring is empty or full); and in the default
    # wait mode ("spin": the C remote sleeps in ppoll when the ring is empty, so each batch may wake it).
    out["496 batch-busy"] = throughput(messages, "batch", "busy")
    out["496 batch-spin"] = throughput(messages, "batch", "spin")
    out["496 zero-copy-batch"] = throughput(messages, "zero-copy-batch")
    out["496 zero-copy-batch-as-is"] = throughput(messages, "zero-copy-batch-as-is")
    for mode in ("copy", "copy-write", "zero-copy", "zero-copy-reuse", "zero-copy-batch", "zero-copy-batch-as-is"):
        out[f"16k {mode}"] = throughput(messages, mode, size=BIG)
    out["16k batch-spin"] = throughput(messages, "batch", size=BIG)
    return out


def record(res: Results, run: dict[str, float], prefix: str) -> None:
    """The stream figures of one run (or the medians), each with its baseline from the same run."""

    def add(name: str, key: str, base: tuple[str, str] | None = None) -> None:
        baseline = None if base is None else (prefix + base[0], run[base[1]])
        res.add(prefix + name, run[key], "msgs/s", better="higher", baseline=baseline)

    copy = ("host -> C remote, 496 B: copy (send)", "496 copy")
    add(*copy)
    add("host -> C remote, 496 B: copy, the producer writing 4 bytes first (bytearray, send)", "496 copy-write", copy)
    add(
        "host -> C remote, 496 B: zero-copy (get_buffer, write 4 bytes into its view, send_buffer)",
        "496 zero-copy",
        copy,
    )
    reuse = "host -> C remote, 496 B: zero-copy, one buffer reused (write 4 bytes into it, send_buffer_reuse)"
    add(reuse, "496 zero-copy-reuse", copy)
    # like for like: the same producer's write on both sides, or none on either
    copy_write = ("host -> C remote, 496 B: copy with the same write, a baseline", "496 copy-write")
    add(*copy_write)
    add(f"{reuse}, against the copy with the same write", "496 zero-copy-reuse", copy_write)
    add(
        "host -> C remote, 496 B: zero-copy, one buffer reused, writing nothing (send_buffer_reuse), against copy",
        "496 zero-copy-reuse-as-is",
        copy,
    )
    # The batched API against the C virtqueue stream of benchmarks/virtio_stream.py at the same size (its C
    # program, measured here in the same run): the target is >= 50 %.
    c_stream = ("host -> C remote, 496 B: C virtqueue stream (virtio_stream.py's C program)", "496 c-stream")
    add(*c_stream)
    add(f"host -> C remote, 496 B: batched (send_many of {BATCH}), both busy-polling", "496 batch-busy", c_stream)
    add(f"host -> C remote, 496 B: batched (send_many of {BATCH}), wait mode spin", "496 batch-spin", c_stream)
    # A baseline is a figure of its own (no baseline of its own): the batched copy again, for the zero-copy batches
    send_many = (
        f"host -> C remote, 496 B: batched copy (send_many of {BATCH}), wait mode spin, a baseline",
        "496 batch-spin",
    )
    add(*send_many)
    zc_batch = f"zero-copy batched (get_buffers, write 4 bytes into each, send_buffers_reuse of {BATCH})"
    add(f"host -> C remote, 496 B: {zc_batch}", "496 zero-copy-batch", copy)
    add(
        f"host -> C remote, 496 B: {zc_batch}, against the batched copy",
        "496 zero-copy-batch",
        send_many,
    )
    as_is = f"zero-copy batched, writing nothing (send_buffers_reuse of {BATCH}), against the batched copy"
    add(
        f"host -> C remote, 496 B: {as_is}",
        "496 zero-copy-batch-as-is",
        send_many,
    )
    big = f"host -> C remote, {BIG} B"
    copy = (f"{big}: copy (send)", "16k copy")
    add(*copy)
    add(f"{big}: zero-copy (get_buffer, write 4 bytes into its view, send_buffer)", "16k zero-copy", copy)
    add(f"{big}: zero-copy, one buffer reused (write 4 bytes into it, send_buffer_reuse)", "16k zero-copy-reuse", copy)
    send_many = (f"{big}: batched copy (send_many of {BATCH})", "16k batch-spin")
    add(*send_many)  # a baseline itself (its ratio to copy is printed)
    add(f"{big}: {zc_batch}", "16k zero-copy-batch", copy)
    add(f"{big}: {zc_batch}, against the batched copy", "16k zero-copy-batch", send_many)
    copy_write = (f"{big}: copy with the same write (bytearray, send), a baseline", "16k copy-write")
    add(*copy_write)
    add(f"{big}: {zc_batch}, against the copy with the same write", "16k zero-copy-batch", copy_write)
    add(f"{big}: {as_is}", "16k zero-copy-batch-as-is", send_many)


def python_remote_streaming(res: Results, messages: int, repeat: int = 1) -> None:
    """Host -> rproc's Python remote (shm, eventfd doorbells), 496 B one-way, next to host -> the C remote with the
    same host API and wait mode in the same run: one message a call (host ``send``, remote ``recvfrom``) and
    batched (host ``send_many`` of BATCH, remote ``recvfrom_many``, ``recv_many`` or ``recv_many_into`` of up to
    64), in wait modes busy and spin (both sides in the same mode). The issue's target: rproc <-> rproc >= 50 % of
    host -> C remote. ``repeat`` > 1: each pair measured that many times in a row (the C remote, then the Python
    one); every run's figures are recorded ("run N: ..."), then the medians, and the ratio printed is the median
    of the runs' own ratios with its spread."""
    print(f"host -> Python remote next to host -> C remote, 496 B, {messages} messages, {repeat} run(s)")
    apis = (
        ("copy", "python", "send -> recvfrom"),
        ("batch", "python-many", f"send_many of {BATCH} -> recvfrom_many"),
        ("batch", "python-recv-many", f"send_many of {BATCH} -> recv_many"),
        ("batch", "python-recv-many-into", f"send_many of {BATCH} -> recv_many_into"),
    )
    next_to = {"python-recv-many": ", next to recv_many", "python-recv-many-into": ", next to recv_many_into"}
    for mode, remote, label in apis:
        for wait in ("busy", "spin"):
            # one C remote figure per row: measured again next to each Python remote
            c_name = f"host -> C remote, 496 B: {label.split(' ->')[0]}, wait mode {wait}" + next_to.get(remote, "")
            py_name = f"host -> Python remote, 496 B: {label}, wait mode {wait}"
            pairs = [
                (throughput(messages, mode, wait), throughput(messages, mode, wait, remote=remote))
                for _ in range(max(1, repeat))
            ]
            if repeat > 1:
                for i, (c_rate, py_rate) in enumerate(pairs):
                    res.add(f"run {i + 1}: {c_name}", c_rate, "msgs/s", better="higher")
                    run_base = (f"run {i + 1}: {c_name}", c_rate)
                    res.add(f"run {i + 1}: {py_name}", py_rate, "msgs/s", better="higher", baseline=run_base)
            base = (c_name, statistics.median(c for c, _ in pairs))
            res.add(*base, "msgs/s", better="higher")
            rate = res.add(py_name, statistics.median(p for _, p in pairs), "msgs/s", better="higher", baseline=base)
            print(
                f"  {label:<34} {wait:<5} C remote {base[1]:10,.0f} msgs/s   Python remote {rate:10,.0f}"
                f"  {spread([p / c for c, p in pairs], 1, 'x')}"
            )


def doorbell_kinds(res: Results, messages: int, rounds: int, panels: list[Any] | None = None) -> None:
    """Host -> C remote with one byte per kick on the shm socket (``doorbell=socket``, OpenAMP's Linux layout, where
    OpenAMP kicks once per message) next to eventfd kicks, in the same run: 496 B one-way copy streams in wait
    modes spin and block, and the 16-byte round trip blocking on one CPU (the C remote sleeping in ppoll on its
    doorbell either way). Before the C path kicked sockets, every message of the socket rows went through the
    Python endpoint methods. ``panels``: the round trips' histograms are added there."""
    print(f"host -> C remote by doorbell kind: 496 B one-way ({messages} messages), 16 B round trip ({rounds})")
    for wait in ("spin", "block"):
        base = (
            f"host -> C remote, 496 B: copy (send), wait mode {wait}, eventfd kicks",
            throughput(messages, "copy", wait, "eventfd"),
        )
        res.add(*base, "msgs/s", better="higher")
        sock = res.add(
            f"host -> C remote, 496 B: copy (send), wait mode {wait}, socket-byte kicks",
            throughput(messages, "copy", wait, "socket"),
            "msgs/s",
            better="higher",
            baseline=base,
        )
        print(
            f"  one-way, {wait:<5}  eventfd {base[1]:10,.0f} msgs/s   socket bytes {sock:10,.0f}"
            f"  {sock / base[1]:4.2f}x"
        )
    with pinned({min(os.sched_getaffinity(0))}):
        name = "blocking, one CPU: Python endpoint <-> C rpmsg remote (ppoll), eventfd kicks"
        samples = round_trip("block", "c", rounds, None, "eventfd", "block")
        base = (name, statistics.median(samples))
        res.add(*base, "us", better="lower")
        name = "blocking, one CPU: Python endpoint <-> C rpmsg remote (ppoll), socket-byte kicks"
        sock_samples = round_trip("block", "c", rounds, None, "socket", "block")
        sock = res.add(name, statistics.median(sock_samples), "us", better="lower", baseline=base)
    if panels is not None:
        panels.append(histogram(base[0], samples))
        panels.append(histogram(name, sock_samples))
    print(
        f"  round trip, block, one CPU: eventfd {base[1]:8.2f} us   socket bytes {sock:8.2f} us  {sock / base[1]:4.2f}x"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=20000)
    ap.add_argument("--messages", type=int, default=100000)
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    ap.add_argument("--histogram", metavar="FILE.svg", help="draw the round trips' latency histogram here")
    ap.add_argument("--throughput-only", action="store_true", help="only the host -> C remote streams")
    ap.add_argument("--doorbells-only", action="store_true", help="only the doorbell kinds (socket bytes, eventfd)")
    ap.add_argument(
        "--repeat", type=int, default=1, help="runs of the stream figures, --python-remote-only's too (medians)"
    )
    ap.add_argument("--python-remote-only", action="store_true", help="only host -> Python remote next to C remote")
    args = ap.parse_args()
    res = Results("rpmsg_pingpong", {"rounds": args.rounds, "messages": args.messages})
    if args.throughput_only or args.doorbells_only or args.python_remote_only:
        if args.throughput_only:
            streaming(res, args.messages, args.repeat)
        elif args.python_remote_only:
            python_remote_streaming(res, args.messages, args.repeat)
        else:
            doorbell_kinds(res, args.messages, args.rounds)
        res.write(args.json)
        return 0
    panels = []

    def rtt(name: str, samples: list[float], baseline: tuple[str, float]) -> float:
        panels.append(histogram(name, samples))
        return res.add(name, statistics.median(samples), "us", better="lower", baseline=baseline)

    one_cpu = {min(os.sched_getaffinity(0))}
    if len(os.sched_getaffinity(0)) < 2:
        print("note: one CPU here: the busy-poll pairs share it (their numbers mean little)")
    base = ("busy-poll: C vring echo", c_baseline("vring-spin", args.rounds))
    c_spin = res.add(*base, "us", better="lower")
    py_busy = rtt("busy-poll: Python endpoint <-> C rpmsg remote", round_trip("busy", "c", args.rounds), base)
    py_busy_py = rtt("busy-poll: Python endpoint <-> Python remote", round_trip("busy", "python", args.rounds), base)
    py_busy_zc = rtt(
        "busy-poll: Python endpoint <-> Python remote receiving zero-copy",
        round_trip("busy", "python-zero-copy", args.rounds),
        base,
    )
    with pinned(one_cpu):
        base = ("blocking, one CPU: C raw eventfd ping-pong", c_baseline("eventfd", args.rounds))
        c_eventfd = res.add(*base, "us", better="lower")
        py_eventfd = res.add(
            "blocking, one CPU: Python raw eventfd ping-pong",
            python_eventfd_floor(args.rounds),
            "us",
            better="lower",
            baseline=base,
        )
        c_block = res.add(
            "blocking, one CPU: C vring echo, eventfd doorbells",
            c_baseline("vring-block", args.rounds),
            "us",
            better="lower",
            baseline=base,
        )
        py_block = rtt(
            "blocking, one CPU: Python endpoint <-> C rpmsg remote", round_trip("block", "c", args.rounds), base
        )
        py_block_py = rtt(
            "blocking, one CPU: Python endpoint <-> Python remote", round_trip("block", "python", args.rounds), base
        )
        py_block_zc = rtt(
            "blocking, one CPU: Python endpoint <-> Python remote receiving zero-copy",
            round_trip("block", "python-zero-copy", args.rounds),
            base,
        )
        # the default wait mode with both ends on one CPU: each side spins while the other cannot run, unless the
        # spin yields the CPU (rpf_wait: after 3 us); before, 110-210 us a round trip (the spin's whole budget)
        py_spin_one = rtt(
            "wait mode spin, one CPU: Python endpoint <-> Python remote",
            round_trip("spin", "python", args.rounds),
            base,
        )
    print(f"rpmsg round trip, 16 B, two processes, median of {args.rounds}")
    print("  busy-poll (one CPU each)")
    print(f"    C vring echo (baseline)             {c_spin:8.2f} us")
    print(f"    Python endpoint <-> C rpmsg remote   {py_busy:8.2f} us  {py_busy / c_spin:5.2f}x the baseline")
    print(f"    Python endpoint <-> Python remote    {py_busy_py:8.2f} us  {py_busy_py / c_spin:5.2f}x")
    print(f"      the remote receiving zero-copy     {py_busy_zc:8.2f} us  {py_busy_zc / c_spin:5.2f}x")
    print(f"  blocking (both on CPU {min(one_cpu)})")
    print(f"    C raw eventfd ping-pong (baseline)   {c_eventfd:8.2f} us")
    print(f"    Python raw eventfd ping-pong (floor) {py_eventfd:8.2f} us  {py_eventfd / c_eventfd:5.2f}x the baseline")
    print(f"    C vring echo, eventfd doorbells      {c_block:8.2f} us  {c_block / c_eventfd:5.2f}x")
    print(f"    Python endpoint <-> C rpmsg remote   {py_block:8.2f} us  {py_block / c_eventfd:5.2f}x")
    print(f"    Python endpoint <-> Python remote    {py_block_py:8.2f} us  {py_block_py / c_eventfd:5.2f}x")
    print(f"      the remote receiving zero-copy     {py_block_zc:8.2f} us  {py_block_zc / c_eventfd:5.2f}x")
    print(f"    Python <-> Python remote, mode spin  {py_spin_one:8.2f} us  {py_spin_one / c_eventfd:5.2f}x")
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) >= 2:
        split = (cpus[0], cpus[1])
        with pinned({split[0]}):
            base = ("blocking, one CPU each: C raw eventfd ping-pong", c_baseline("eventfd", args.rounds, split))
            x_eventfd = res.add(*base, "us", better="lower")
            x_py_eventfd = res.add(
                "blocking, one CPU each: Python raw eventfd ping-pong",
                python_eventfd_floor(args.rounds, split),
                "us",
                better="lower",
                baseline=base,
            )
            x_block = rtt(
                "blocking, one CPU each: Python endpoint <-> C rpmsg remote",
                round_trip("block", "c", args.rounds, split),
                base,
            )
        print(f"  blocking, one CPU each (CPU {split[0]} and {split[1]}: every round trip wakes a sleeping CPU)")
        print(f"    C raw eventfd ping-pong (baseline)   {x_eventfd:8.2f} us")
        print(f"    Python raw eventfd ping-pong         {x_py_eventfd:8.2f} us  {x_py_eventfd / x_eventfd:5.2f}x")
        print(f"    Python endpoint <-> C rpmsg remote   {x_block:8.2f} us  {x_block / x_eventfd:5.2f}x")
    streaming(res, args.messages, args.repeat)
    python_remote_streaming(res, args.messages)
    doorbell_kinds(res, args.messages, args.rounds, panels)
    res.write(args.json)
    if args.histogram:
        title = f"rpmsg round trip, 16 B, Python endpoint, {args.rounds} each (median and p99 marked)"
        Path(args.histogram).write_text(histogram_svg(panels, title))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
