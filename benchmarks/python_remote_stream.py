"""Benchmark: rproc host -> rproc's Python remote one-way, against host -> the firmware's C remote, measured in turn
(issue 20's target: rproc host <-> rproc remote, both Python APIs, >= 50 % of host -> C remote); and the other way,
rproc's Python remote -> rproc host, against the same baseline.

496-byte messages over shared memory with eventfd doorbells, the host in this process and each remote in its own
(benchmarks/rpmsg_remote.py's "bench-count": it counts and answers b"report" with the count), one CPU each. The
host sends with ``send`` (one message a call) or ``send_many`` of 64; the Python remote receives with ``recvfrom``,
``recvfrom_many``, ``recv_many`` or ``recv_many_into`` (up to 64 a call), or lends each with ``recv_message``
on a zero-copy endpoint (looked at in place, then released); both sides in wait mode busy or spin.

The other way (stop 35): the Python remote's "bench-source" sends 496-byte messages to the host when asked, with
``send_many`` of 64 or zero-copy (64 of the host's buffers kept, ``send_buffers_reuse``, writing nothing, as
``send_many`` sends one constant list), and the host takes them with ``recv_many_into``; in turn with host -> C
remote (``send_many``).

This machine's speed between its two vCPUs flips between two levels from minute to minute (docs/rpmsg.md, "wait
modes"), so the C remote and the Python remote are not measured one after the other: both sessions stay open and
take turns, round after round (the one not running stopped with SIGSTOP, so a busy-polling remote never takes
the CPU of the other), and each round's ratio is the Python remote's rate over the C remote's of that round. The
figures are the medians over the rounds; every round's ratio is in the JSON.

    .venv/bin/python benchmarks/python_remote_stream.py [--messages N] [--rounds R] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from array import array
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.remote_session import RemoteSession  # noqa: E402
from benchmarks.report import Results  # noqa: E402

BATCH = 64
PAYLOAD = bytes(496)
# the Python remote's receive: (rpmsg_remote.py's kind, the host's send)
APIS = {
    "recvfrom": ("python", "send"),
    "recvfrom_many": ("python-many", "send_many"),
    "recv_many": ("python-recv-many", "send_many"),
    "recv_many_into": ("python-recv-many-into", "send_many"),
    "recv_message (zero-copy)": ("python-zero-copy", "send_many"),
}


class Session(RemoteSession):
    """One remote (``kind``: "c" or a Python receive of rpmsg_remote.py) counting what the host sends; stopped
    (SIGSTOP) while another session runs."""

    def __init__(self, wait: str, kind: str, cpus: list[int]) -> None:
        super().__init__("pyremote", wait, wait, "count", kind, cpus)
        self.ep.settimeout(30)

    def stream(self, messages: int, send: str) -> float:
        """``messages`` one-way, then b"report": msgs/s, the remote's count checked."""
        ep = self.ep
        start = time.perf_counter()
        if send == "send_many":
            batch = [PAYLOAD] * BATCH
            for _ in range(messages // BATCH):
                ep.send_many(batch)
            ep.send_many(batch[: messages % BATCH])
        else:
            for _ in range(messages):
                ep.send(PAYLOAD)
        ep.send(b"report")
        got = int(ep.recv())
        elapsed = time.perf_counter() - start
        if got != messages:
            raise SystemExit(f"the remote counted {got} of {messages} messages")
        return messages / elapsed


# the Python remote's send, the other way
SOURCES = ("send_many", "zero-copy")


class SourceSession(RemoteSession):
    """The Python remote's "bench-source": asked, it sends to the host, which takes them with recv_many_into."""

    def __init__(self, wait: str, cpus: list[int]) -> None:
        super().__init__("pysource", wait, wait, "source", "python", cpus)
        self.ep.settimeout(30)
        self.buf = bytearray(BATCH * len(PAYLOAD))
        self.sizes = array("I", bytes(4 * BATCH))

    def stream(self, messages: int, send: str) -> float:
        """``messages`` one-way from the remote (``send``: its mode), then its b"end": msgs/s, the count checked."""
        ep, view, sizes = self.ep, memoryview(self.buf), self.sizes
        start = time.perf_counter()
        ep.send(b"go %d %s" % (messages, send.encode()))
        got = 0
        while True:
            k = ep.recv_many_into(self.buf, sizes)
            last = (k - 1) * len(PAYLOAD)
            if sizes[k - 1] == 3 and view[last : last + 3] == b"end":
                got += k - 1
                break
            got += k
        elapsed = time.perf_counter() - start
        if got != messages:
            raise SystemExit(f"the host got {got} of the remote's {messages} messages")
        return messages / elapsed


def measure(wait: str, api: str, messages: int, rounds: int, cpus: list[int]) -> tuple[list[float], list[float]]:
    """(C remote, Python remote) msgs/s of each round, the two in turn (which goes first alternates). ``api``: a
    receive of APIS (host -> Python remote), or "source SEND" (Python remote -> host, SEND of SOURCES)."""
    if api.startswith("source "):
        kind, send, py_send = "source", "send_many", api.split()[1]
    else:
        (kind, send), py_send = APIS[api], APIS[api][1]
    sessions: list[Session | SourceSession] = []
    try:
        for k in ("c", kind):
            for s in sessions:
                s.stop()  # a new session warms up alone
            sessions.append(SourceSession(wait, cpus) if k == "source" else Session(wait, k, cpus))
            sessions[-1].stream(max(BATCH, messages // 4), send if k == "c" else py_send)  # warm up
        c, py = sessions
        rates: dict[Session | SourceSession, list[float]] = {c: [], py: []}
        for r in range(rounds):
            for s in (c, py) if r % 2 == 0 else (py, c):
                s.run(sessions)  # type: ignore[arg-type]
                rates[s].append(s.stream(messages, send if s is c else py_send))
        return rates[c], rates[py]
    finally:
        for s in sessions:
            s.close()


def record(res: Results, c_name: str, c: list[float], py_name: str, py: list[float], line: str) -> None:
    """The medians (the Python figure against the C one), every round against its own round's C figure, and
    ``line`` printed with the medians ({c}, {py}) and the median and range of the rounds' ratios."""
    ratios = sorted(p / q for p, q in zip(py, c, strict=True))
    base = (c_name, res.add(c_name, statistics.median(c), "msgs/s", better="higher"))
    res.add(py_name, statistics.median(py), "msgs/s", better="higher", baseline=base)
    for i, (q, p) in enumerate(zip(c, py, strict=True)):
        res.add(f"round {i + 1}: {c_name}", q, "msgs/s", better="higher")
        res.add(f"round {i + 1}: {py_name}", p, "msgs/s", better="higher", baseline=(f"round {i + 1}: {c_name}", q))
    medians = line.format(c=f"{statistics.median(c):11,.0f}", py=f"{statistics.median(py):11,.0f}")
    print(f"{medians}  {statistics.median(ratios):.2f}x ({ratios[0]:.2f}..{ratios[-1]:.2f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=50000, help="messages a round (default 50000)")
    ap.add_argument("--rounds", type=int, default=10, help="rounds, each remote in turn (default 10)")
    ap.add_argument("--json", metavar="FILE", help="write every figure, its baseline and the ratio here")
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpus[0]})
    res = Results("python_remote_stream", {"messages": args.messages, "rounds": args.rounds, "payload": 496})
    print(f"host -> Python remote against host -> C remote, 496 B one-way, {args.rounds} rounds of {args.messages},")
    print("the two in turn; msgs/s medians, the ratio the median of the rounds' own ratios (min..max)")
    for wait in ("busy", "spin"):
        for api, (_, send) in APIS.items():
            c, py = measure(wait, api, args.messages, args.rounds, cpus)
            c_name = f"host -> C remote, 496 B: {send}, wait mode {wait}, next to {api}"
            py_name = f"host -> Python remote, 496 B: {send} -> {api}, wait mode {wait}"
            line = f"  {send:>9} -> {api:<15} {wait:<5} C remote {{c}}  Python remote {{py}}"
            record(res, c_name, c, py_name, py, line)
    print("Python remote -> host against host -> C remote (send_many), 496 B one-way, in turn as above")
    for wait in ("busy", "spin"):
        for send in SOURCES:
            c, py = measure(wait, f"source {send}", args.messages, args.rounds, cpus)
            c_name = f"host -> C remote, 496 B: send_many, wait mode {wait}, next to the Python remote's {send}"
            py_name = f"Python remote -> host, 496 B: {send} -> recv_many_into, wait mode {wait}"
            line = f"  {send:>9} -> recv_many_into {wait:<5} C remote {{c}}  host from Python remote {{py}}"
            record(res, c_name, c, py_name, py, line)
    res.write(args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
