"""The RPMsg-Lite model (tests/remoteproc/rpmsg_lite_model.py) as a peer program, following the contract of
`rproc conformance --peer rpmsg-lite-master|rpmsg-lite-remote --command CMD` (docs/conformance.md): rproc's shm
profile with byte kicks on the socket, RPMsg-Lite's layout (rpmsg.rpmsg_lite.PROFILE), the shm name as the last
argument.

python -m tests.remoteproc.rpmsg_lite_peer master|remote NAME [--messages N]

master: creates /dev/shm/NAME, initialises it as rpmsg_lite_master_init does, listens on /dev/shm/NAME.sock,
kicks vring 0, waits for the channel "rpmsg-echo", sends every size 1..496 and checks each echo, a burst of 256,
then N more (default 1000); prints "Test Results: Error count = E" and exits 0. remote: connects, waits for the
master's kick, announces "rpmsg-echo" at 0x1e, echoes every message to its source until the host goes.
"""

from __future__ import annotations

import argparse
import sys
import time

from rpmsg.profiles import Profile
from rpmsg.rpmsg_lite import PROFILE
from tests.remoteproc.rpmsg_lite_model import RpmsgLite
from transports.doorbell import PeerLostError
from transports.shm import ShmLink

CHANNEL = "rpmsg-echo"
MASTER_ADDR = 0x1E  # RPMsg-Lite allocates endpoint addresses from 1 (rpmsg_lite_create_ept)


def _echo(model: RpmsgLite, dst: int, data: bytes, deadline: float) -> bool:
    model.send(MASTER_ADDR, dst, data)
    while not model.inbox:
        model.process(0.05)
        if time.monotonic() > deadline:
            return False
    src, _dst, got = model.inbox.pop(0)
    return got == data and src == dst


def master(name: str, messages: int, fail_fast: bool = False) -> int:
    p = PROFILE
    link = ShmLink.create_host(name, p.base + p.size, doorbell="socket")
    model = RpmsgLite(link.memory, None, p, master=True)  # type: ignore[arg-type]
    model.master_init()
    model.bell = link.connect(20)
    try:
        return _talk(model, p, messages, fail_fast)
    except PeerLostError as exc:
        print(f"the remote went: {exc}", file=sys.stderr)
        return 1
    finally:
        link.close()


def _talk(model: RpmsgLite, p: Profile, messages: int, fail_fast: bool) -> int:
    model.ready()
    errors = 0
    deadline = time.monotonic() + 20
    while CHANNEL not in model.channels:
        model.process(0.05)
        if time.monotonic() > deadline:
            print("no name service announcement", file=sys.stderr)
            return 1
    dst = model.channels[CHANNEL]
    for size in range(1, p.tx_size - 16 + 1):
        errors += not _echo(model, dst, bytes((size + k) & 0xFF for k in range(size)), time.monotonic() + 2)
        if errors and fail_fast:
            print(f"size {size}: no echo (or a wrong one)\nTest Results: Error count = {errors}", flush=True)
            return 0
    burst = [k.to_bytes(4, "little") * 8 for k in range(p.num)]
    for data in burst:
        model.send(MASTER_ADDR, dst, data)
    deadline = time.monotonic() + 10
    while len(model.inbox) < len(burst) and time.monotonic() < deadline:
        model.process(0.05)
    got = [d for _s, _d, d in model.inbox]
    model.inbox.clear()
    errors += sum(a != b for a, b in zip(got, burst, strict=False)) + abs(len(got) - len(burst))
    for k in range(messages):
        errors += not _echo(model, dst, k.to_bytes(4, "little") * (1 + k % 100), time.monotonic() + 5)
    print(f"{p.tx_size - 16} sizes, a burst of {p.num}, {messages} more; kicks sent {model.kicks_sent}")
    print(f"Test Results: Error count = {errors}", flush=True)
    return 0


def remote(name: str) -> int:
    link = ShmLink.connect_remote(name, None, 20)
    model = RpmsgLite(link.memory, link.doorbell, PROFILE, master=False)
    try:
        deadline = time.monotonic() + 20
        while not model.link_up:
            model.process(0.05)
            if time.monotonic() > deadline:
                return 1
        model.announce(CHANNEL, MASTER_ADDR)
        while True:
            model.process(0.05)
            for src, _dst, data in model.inbox:
                model.send(MASTER_ADDR, src, data)
            model.inbox.clear()
    except PeerLostError:
        return 0
    finally:
        link.close()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("master", "remote"))
    ap.add_argument("name")
    ap.add_argument("--messages", type=int, default=1000)
    ap.add_argument("--fail-fast", action="store_true", help="master: stop at the first missing echo")
    args = ap.parse_args()
    return master(args.name, args.messages, args.fail_fast) if args.role == "master" else remote(args.name)


if __name__ == "__main__":
    raise SystemExit(main())
