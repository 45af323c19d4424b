"""Benchmark: rproc against OpenAMP's own C programs on OpenAMP's Linux layout (one /dev/shm file, one byte per kick
on a unix stream socket: docs/transports.md, "The OpenAMP profile"), in both roles, each next to OpenAMP's own pair
measured in the same run:

- host role: rproc's host -> OpenAMP's echo remote (``rpmsg-echo``) vs OpenAMP's host -> the same remote;
- remote role: OpenAMP's host -> rproc's remote (an echo) vs OpenAMP's host -> OpenAMP's echo remote.

Nothing of OpenAMP is in this repository and nothing is built here: the programs come from an OpenAMP build of
your own (open-amp + libmetal + openamp-system-reference ``examples/legacy_apps``, machine "generic", with
``WITH_TESTS`` for the ``msg-test-*`` hosts). Given no directory (``--openamp-bin`` or the environment variable
``RPROC_OPENAMP_BIN``) the benchmark says so and ends with status 0. Programs used, ``-static`` or ``-shared``:
``rpmsg-echo`` (remote, argument 0), ``msg-test-rpmsg-flood-ping`` and ``msg-test-rpmsg-ping`` (hosts, argument 1).
``DIR/../lib`` goes into ``LD_LIBRARY_PATH`` when it exists (an install prefix's layout).

The traffic is what OpenAMP's hosts send (docs/rpmsg.md, "Against OpenAMP's C programs"):
- one-way streaming = ``msg-test-rpmsg-flood-ping``'s loop: 17-byte messages (its first size: an 8-byte number, an
  8-byte size, one data byte), sent as fast as send buffers allow (``rpmsg_trysend``, polling when none is free),
  each echoed by the remote and checked by the host. The rate is the remote's echoes per second, read from the
  shared file by this process (vring 0's used.idx, sampled every 10 ms, over ``--window`` seconds after
  ``--warmup``): the same observer for every pair. rproc's host does the same with ``send_many``/``recv_many``
  (at most 128 messages not yet echoed, so the echoes always find a receive buffer).
- round trip = ``msg-test-rpmsg-ping``'s loop: one message of 17..496 bytes at a time, sizes rising by one, 480
  in all, each echo awaited and checked. OpenAMP's pinger prints three lines per message to a pipe (block-buffered:
  a 4 KiB write every ~40 round trips); the round trip is the time between two such writes divided by the round
  trips between them (counted from the lines), over the writes before the last. rproc's host runs the same sizes
  (``--passes`` times) with ``send``/``recv`` and times itself.

rproc's side streams in its default wait mode (``spin``) and in ``block`` (the C methods wait in C there, see
docs/rpmsg.md); its round trips are in the default mode.

OpenAMP's fixed paths are private to each pair: every pair runs in a mount namespace of its own
(:func:`remoteproc.conformance.peers.openamp.isolated`; root and ``unshare(1)`` needed), so the benchmark can run
while another OpenAMP pair runs on the machine. The pairs alternate within each run.

    .venv/bin/python benchmarks/openamp_peers.py [--openamp-bin DIR] [--runs 5] [--window 2] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import mmap
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.report import Results  # noqa: E402

SHM = "/dev/shm/openamp.shm"
EVENT = "/tmp/openamp.event.0"
VRING0_USED_IDX = 0x6002  # vring 0 (remote -> host) at 0x4000, 256 entries, align 0x1000: used ring at 0x6000
FLOOD_SIZE = 17  # msg-test-rpmsg-flood-ping's first size: struct _payload {unsigned long num, size; data[1]}
WINDOW_IN_FLIGHT = 128  # rproc's flooding host: messages sent and not yet echoed, at most
WAIT_MODES = ("spin", "block")  # rproc's default, and sleeping on the doorbell only
PROGRAMS = ("rpmsg-echo", "msg-test-rpmsg-flood-ping", "msg-test-rpmsg-ping")


def payload(num: int, size: int) -> bytes:
    """OpenAMP's pingers' message: ``struct _payload {unsigned long num; unsigned long size; data[size]}``, the
    data 0xA5 (what their callbacks check)."""
    return num.to_bytes(8, "little") + size.to_bytes(8, "little") + b"\xa5" * size


# --- the rproc sides, each run as a program of its own (python openamp_peers.py --role ROLE SHM EVENT) ----------


def rproc_host(shm: str, event: str, what: str, wait: str, passes: int) -> int:
    """rproc's host against the remote listening on ``event``, in wait mode ``wait``: ``flood`` until the remote
    ends, or ``ping`` (prints the mean round trip in microseconds)."""
    from remoteproc.platforms.openamp import CHANNEL, host_device
    from rpmsg import PeerLost
    from transports.openamp import OpenAmpLink

    link = OpenAmpLink("host", shm=shm, event=event, timeout=20)
    device = host_device(link, timeout=20)
    device.wait_mode = wait  # type: ignore[assignment]
    ep = device.open(CHANNEL, timeout=20)
    if what == "flood":
        batch = [payload(0, FLOOD_SIZE - 16)] * WINDOW_IN_FLIGHT
        sent = received = 0
        send_many, recv_many = ep.send_many, ep.recv_many
        with contextlib.suppress(PeerLost):  # the harness ends the remote when it has counted
            while True:
                room = WINDOW_IN_FLIGHT - (sent - received)
                if room:
                    sent += send_many(batch[:room])
                received += len(recv_many(256))
        os._exit(0)
    messages = [payload(i, size) for i, size in enumerate(range(1, 481))]
    for m in messages[:20]:  # warm up
        ep.send(m)
        ep.recv()
    send, recv = ep.send, ep.recv
    start = time.perf_counter()
    for _ in range(passes):
        for m in messages:
            send(m)
            if len(recv()) != len(m):
                raise SystemExit("rproc host: an echo of another length")
    took = time.perf_counter() - start
    print(f"{took / (passes * len(messages)) * 1e6:.3f}", flush=True)
    ep.send(b"\x5a\xa5\x56\xef")  # OpenAMP's echo demo's SHUTDOWN_MSG: the remote ends
    device.close()
    link.close()
    return 0


def rproc_remote(shm: str, event: str, wait: str) -> int:
    """rproc's remote in the place of OpenAMP's echo demo, in wait mode ``wait``: echoes every message to its
    sender, in batches."""
    import logging

    from remoteproc.platforms.openamp import CHANNEL, remote_device
    from rpmsg import EndpointClosed, PeerLost
    from transports.openamp import OpenAmpLink

    logging.getLogger("rpmsg").setLevel(logging.ERROR)  # the host's end is expected
    link = OpenAmpLink("remote", shm=shm, event=event)
    device = remote_device(link, timeout=30)
    device.wait_mode = wait  # type: ignore[assignment]
    ep = device.endpoint(CHANNEL, addr=0x400)
    try:
        while True:
            got = ep.recvfrom_many(256)
            src = got[0][1]
            if all(s == src for _, s in got):
                ep.send_many([d for d, _ in got], src)
            else:
                for d, s in got:
                    ep.sendto(d, s)
    except (EndpointClosed, PeerLost):
        pass
    device.close()
    link.close()
    return 0


# --- the harness -----------------------------------------------------------------------------------------------


def find_programs(where: str) -> dict[str, str]:
    """``{name: path}`` of the programs in PROGRAMS (``-static`` preferred, else ``-shared``, else the bare
    name); raises SystemExit naming the missing ones."""
    found, missing = {}, []
    for name in PROGRAMS:
        for suffix in ("-static", "-shared", ""):
            path = Path(where) / f"{name}{suffix}"
            if path.is_file() and os.access(path, os.X_OK):
                found[name] = str(path)
                break
        else:
            missing.append(name)
    if missing:
        raise SystemExit(f"openamp_peers: {where} has no {', '.join(missing)} (-static or -shared)")
    return found


class Pair:
    """Up to two programs sharing one private OpenAMP layout: ``inside`` runs in the mount namespace (where the
    fixed paths are), ``outside`` (rproc's side) is given the paths where this process sees them."""

    def __init__(self, env: dict[str, str]) -> None:
        from remoteproc.conformance.peers.openamp import isolated

        self.env = env
        self.procs: list[subprocess.Popen[bytes]] = []
        self.wrap, self.shm, self.event, self.root = isolated(["true"], SHM, EVENT)
        self.wrap = self.wrap[:-1]  # the command goes where "true" was

    def inside(self, script: str, stdout: int | None = None) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [*self.wrap, "sh", "-c", script],
            stdout=subprocess.DEVNULL if stdout is None else stdout,
            stderr=subprocess.DEVNULL,
            env=self.env,
            start_new_session=True,
        )
        self.procs.append(proc)
        return proc

    def outside(self, role: str, *extra: str, stdout: int | None = None) -> subprocess.Popen[bytes]:
        argv = [sys.executable, __file__, "--role", role, self.shm, self.event, *extra]
        proc = subprocess.Popen(
            argv, stdout=subprocess.DEVNULL if stdout is None else stdout, start_new_session=True, env=self.env
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self.procs):  # rproc's side first: it would report the other's end
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def pair(env: dict[str, str]) -> Iterator[Pair]:
    p = Pair(env)
    try:
        yield p
    finally:
        p.close()


def echo_rate(p: Pair, warmup: float, window: float, timeout: float = 60.0) -> float:
    """The remote's echoes per second in the shared file (vring 0's used.idx), over ``window`` seconds once
    they have flowed for ``warmup`` seconds."""
    deadline = time.monotonic() + timeout
    while not (os.path.exists(p.shm) and os.path.getsize(p.shm) > VRING0_USED_IDX + 2):
        for proc in p.procs:
            if proc.poll() is not None:
                raise SystemExit(f"openamp_peers: {proc.args!r} ended (status {proc.returncode}) before the flood")
        if time.monotonic() > deadline:
            raise SystemExit("openamp_peers: no shared file")
        time.sleep(0.01)
    with open(p.shm, "rb") as f:
        mem = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    try:

        def idx() -> int:
            return int.from_bytes(mem[VRING0_USED_IDX : VRING0_USED_IDX + 2], "little")

        # The host zeroes the rings at its start: count from the first 1000 echoes on.
        while not 1000 <= idx() < 30000:
            for proc in p.procs:
                if proc.poll() is not None:
                    raise SystemExit(f"openamp_peers: {proc.args!r} ended (status {proc.returncode}) in the flood")
            if time.monotonic() > deadline:
                raise SystemExit("openamp_peers: the flood did not start")
            time.sleep(0.002)
        total, last = 0, idx()
        start_total = start_time = None
        begin = time.monotonic()
        while True:
            time.sleep(0.01)
            now, cur = time.monotonic(), idx()
            total += (cur - last) & 0xFFFF  # 10 ms apart: fewer than 65536 echoes (6.5 M/s)
            last = cur
            if start_time is None and now - begin >= warmup:
                start_total, start_time = total, now
            elif start_time is not None and now - start_time >= window:
                assert start_total is not None
                return (total - start_total) / (now - start_time)
    finally:
        mem.close()


def ping_round_trip(proc: subprocess.Popen[bytes]) -> float:
    """The round trip of an OpenAMP pinger from the times its block-buffered output arrives (see the docstring)."""
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    marks: list[tuple[float, int]] = []
    text, done = b"", 0
    while True:
        chunk = os.read(fd, 1 << 16)
        now = time.monotonic()
        if not chunk:
            break
        text += chunk
        if b"Test Results" in text:
            break
        done = text.count(b"received payload number")
        marks.append((now, done))
    proc.wait(timeout=30)
    if b"Error count = 0" not in text + proc.stdout.read():
        raise SystemExit("openamp_peers: the pinger reported errors")
    if len(marks) < 3:
        raise SystemExit(f"openamp_peers: too few output writes to time ({len(marks)})")
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return (t1 - t0) / (n1 - n0) * 1e6


def measure(bins: dict[str, str], env: dict[str, str], args: argparse.Namespace) -> dict[str, Callable[[], float]]:
    """What one run measures, by key: ``oa-pair-*`` OpenAMP's host and remote, ``rproc-host-*`` rproc's host
    and OpenAMP's remote, ``rproc-remote-*`` OpenAMP's host and rproc's remote; ``-flood-MODE`` msgs/s with
    rproc's side in wait mode MODE, ``-ping`` microseconds (rproc's default wait mode)."""
    echo, flood, ping = (bins[n] for n in PROGRAMS)

    def oa_pair_flood() -> float:
        with pair(env) as p:
            p.inside(f"'{echo}' 0 & exec '{flood}' 1")
            return echo_rate(p, args.warmup, args.window)

    def rproc_host_flood(wait: str) -> Callable[[], float]:
        def run() -> float:
            with pair(env) as p:
                p.inside(f"exec '{echo}' 0")
                p.outside("host", "flood", wait)
                return echo_rate(p, args.warmup, args.window)

        return run

    def rproc_remote_flood(wait: str) -> Callable[[], float]:
        def run() -> float:
            with pair(env) as p:
                p.outside("remote", wait)
                p.inside(f"exec '{flood}' 1")
                return echo_rate(p, args.warmup, args.window)

        return run

    def oa_pair_ping() -> float:
        with pair(env) as p:
            proc = p.inside(f"'{echo}' 0 & exec '{ping}' 1", stdout=subprocess.PIPE)
            return ping_round_trip(proc)

    def rproc_host_ping() -> float:
        with pair(env) as p:
            p.inside(f"exec '{echo}' 0")
            proc = p.outside("host", "ping", "spin", str(args.passes), stdout=subprocess.PIPE)
            out, _ = proc.communicate(timeout=120)
            if proc.returncode:
                raise SystemExit(f"openamp_peers: rproc's host ended with status {proc.returncode}")
            return float(out.split()[-1])

    def rproc_remote_ping() -> float:
        with pair(env) as p:
            p.outside("remote", "spin")
            proc = p.inside(f"exec '{ping}' 1", stdout=subprocess.PIPE)
            return ping_round_trip(proc)

    runs: dict[str, Callable[[], float]] = {"oa-pair-flood": oa_pair_flood}
    for mode in WAIT_MODES:
        runs[f"rproc-host-flood-{mode}"] = rproc_host_flood(mode)
        runs[f"rproc-remote-flood-{mode}"] = rproc_remote_flood(mode)
    runs.update(
        {"oa-pair-ping": oa_pair_ping, "rproc-host-ping": rproc_host_ping, "rproc-remote-ping": rproc_remote_ping}
    )
    return runs


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3g} [{min(values):.3g}-{max(values):.3g}]"


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--role":
        role, shm, event, *extra = sys.argv[2:]
        if role == "host":
            return rproc_host(shm, event, extra[0], extra[1], int(extra[2]) if len(extra) > 2 else 0)
        return rproc_remote(shm, event, extra[0])
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--openamp-bin", default=os.environ.get("RPROC_OPENAMP_BIN"), metavar="DIR")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--warmup", type=float, default=0.5, help="seconds of flood before counting")
    ap.add_argument("--window", type=float, default=2.0, help="seconds of flood counted")
    ap.add_argument("--passes", type=int, default=10, help="rproc's host: times through the 480 sizes")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    config = {"runs": args.runs, "warmup": args.warmup, "window": args.window, "openamp_bin": args.openamp_bin}
    res = Results("openamp_peers", config)
    if not args.openamp_bin:
        print("openamp_peers: skipped (no OpenAMP programs: --openamp-bin DIR or RPROC_OPENAMP_BIN)")
        res.write(args.json)
        return 0
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("openamp_peers: skipped (each pair runs in a mount namespace of its own: root and unshare(1) needed)")
        res.write(args.json)
        return 0
    bins = find_programs(args.openamp_bin)
    # Ended from outside (a timeout's SIGTERM): unwind, so every pair's programs are killed and its files removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit("openamp_peers: terminated"))
    env = dict(os.environ)
    lib = Path(args.openamp_bin).resolve().parent / "lib"
    if lib.is_dir():
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(lib), env.get("LD_LIBRARY_PATH")]))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    runs = measure(bins, env, args)
    got: dict[str, list[float]] = {name: [] for name in runs}
    config["load_before"] = os.getloadavg()[0]
    for i in range(args.runs):
        order = list(runs) if i % 2 == 0 else list(reversed(runs))  # alternate who goes first
        for name in order:
            got[name].append(runs[name]())
        print(f"run {i + 1}: " + ", ".join(f"{n} {got[n][-1]:.4g}" for n in runs), flush=True)
    config["load_after"] = os.getloadavg()[0]
    print(f"load average (1 min) before {config['load_before']:.1f}, after {config['load_after']:.1f}")
    flood_base = "one-way 17 B, OpenAMP host -> OpenAMP echo remote"
    ping_base = "round trip 17..496 B, OpenAMP host -> OpenAMP echo remote"
    print(f"{flood_base}: {spread(got['oa-pair-flood'])} msgs/s")
    res.add(flood_base, statistics.median(got["oa-pair-flood"]), "msgs/s", better="higher")
    print(f"{ping_base}: {spread(got['oa-pair-ping'])} us")
    res.add(ping_base, statistics.median(got["oa-pair-ping"]), "us", better="lower")
    compared = []
    for mode in WAIT_MODES:
        compared += [
            (f"one-way 17 B, rproc host ({mode}) -> OpenAMP echo remote", f"rproc-host-flood-{mode}", "oa-pair-flood"),
            (f"one-way 17 B, OpenAMP host -> rproc remote ({mode})", f"rproc-remote-flood-{mode}", "oa-pair-flood"),
        ]
    compared += [
        ("round trip 17..496 B, rproc host -> OpenAMP echo remote", "rproc-host-ping", "oa-pair-ping"),
        ("round trip 17..496 B, OpenAMP host -> rproc remote", "rproc-remote-ping", "oa-pair-ping"),
    ]
    for title, key, base in compared:
        flood_figure = base == "oa-pair-flood"
        # per run, as rates (OpenAMP's round trip / rproc's): > 1 is rproc ahead
        ratios = [v / b if flood_figure else b / v for v, b in zip(got[key], got[base], strict=True)]
        unit = "msgs/s" if flood_figure else "us"
        print(f"{title}: {spread(got[key])} {unit}, {spread(ratios)}x OpenAMP's pair (as rates, per run)")
        res.add(
            title,
            statistics.median(got[key]),
            unit,
            better="higher" if flood_figure else "lower",
            baseline=(flood_base if flood_figure else ping_base, statistics.median(got[base])),
        )
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
