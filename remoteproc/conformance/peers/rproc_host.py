"""rproc's host program, the peer :class:`~remoteproc.conformance.peers.rproc.RprocHostPeer` starts for the remote
role in a process of its own, correct or broken on purpose.

    python -m remoteproc.conformance.peers.rproc_host NAME [--break MODE] [--num N --rx-size N --tx-size N]

It creates the shm link NAME (rproc's shm profile), waits for the remote, opens ``rpmsg-echo`` and drives the
traffic the remote-role scenarios look at: every size 1..496, a burst of 256, 70,000 small messages (the
16-bit indices wrap), each echo checked; then it closes and exits 0 (1 if an echo was wrong or missing).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from remoteproc.conformance.common import ECHO_CHANNEL
from remoteproc.conformance.peers.rproc import HOST_BREAKS, add_profile_options, profile_of
from rpmsg.core import HostCore
from rpmsg.device import Endpoint, RpmsgDevice
from rpmsg.errors import RpmsgError
from rpmsg.protocol import TX_VRING, pack_header
from transports.shm import ShmLink

BOGUS = b"BOGUS"  # the message the oversize-len break sends with a lying header


class _BrokenHost(HostCore):
    mode = ""

    def start(self) -> None:
        if self.mode == "no-rx-buffers":
            self.rx_count = 0
            self.rx_addrs = []
        super().start()

    def send(self, src: int, dst: int, payload: bytes | bytearray | memoryview) -> None:
        if self.mode in ("oversize-len", "oversize-after-wrap") and bytes(payload) == BOGUS:
            message = pack_header(src, dst, 1000) + BOGUS  # hdr.len beyond any buffer
            self.tx.send_copy(message, [len(message)], self.tx_size)
            self._note(self.tx.publish())
            return
        super().send(src, dst, payload)
        if self.mode == "kick-always":
            self.intents.add(TX_VRING)


def _echo(ep: Endpoint, payload: bytes) -> None:
    ep.send(payload)
    got = ep.recv()
    if got != payload:
        raise RpmsgError(f"echo of {len(payload)} bytes differs")


def traffic(
    device: RpmsgDevice, mode: str, timeout: float, total: int = 70_000, sizes: Sequence[int] | None = None
) -> None:
    """Every size 1..max (or ``sizes``), a burst of 256, then ``total`` small messages 16 in flight (70,000: the
    indices wrap), each echo checked (RpmsgError if one is wrong or missing)."""
    ep = device.open(ECHO_CHANNEL, timeout=timeout, zero_copy=mode == "no-repost")
    ep.settimeout(timeout)
    if mode == "wrong-dst":
        ep.connect(0x999)
    if mode == "oversize-len":
        ep.send(BOGUS)
    held = []
    core = device.core
    assert isinstance(core, HostCore)
    for size in range(1, core.max_payload + 1) if sizes is None else sizes:
        payload = bytes((i + size) & 0xFF for i in range(size))
        if mode == "no-repost":  # keep every received buffer: the remote runs out of places to answer
            ep.send(payload)
            held.append(ep.recv_message())
            continue
        _echo(ep, payload)
    for i in range(256):
        ep.send(i.to_bytes(4, "little") * 8)
    for i in range(256):
        if ep.recv() != i.to_bytes(4, "little") * 8:
            raise RpmsgError(f"burst echo {i} differs")
    sent = received = 0
    while received < total:
        while sent < total and sent - received < 16:
            ep.send(sent.to_bytes(4, "little"))
            sent += 1
        if ep.recv() != received.to_bytes(4, "little"):
            raise RpmsgError(f"echo {received} differs")
        received += 1
    if mode == "oversize-after-wrap":
        ep.send(BOGUS)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m remoteproc.conformance.peers.rproc_host")
    ap.add_argument("name")
    ap.add_argument("--break", dest="mode", choices=sorted(HOST_BREAKS), default="")
    ap.add_argument("--timeout", type=float, default=5)
    add_profile_options(ap)
    args = ap.parse_args(argv)
    p = profile_of(args)
    link = ShmLink.create_host(args.name, p.base + p.size, doorbell="socket")
    cls = type(f"Broken_{args.mode}", (_BrokenHost,), {"mode": args.mode}) if args.mode else HostCore
    core = p.host_core(link.memory, cls=cls)
    core.start()
    try:
        link.connect(args.timeout * 4)
    except BaseException:
        link.close()
        raise
    device = RpmsgDevice(core, link.doorbell)
    device.start()
    status = 0
    try:
        traffic(device, args.mode, args.timeout)
    except RpmsgError as exc:
        print(f"host_peer: {exc}", file=sys.stderr)
        status = 1
    finally:
        device.close()
        link.close()
    return 1 if args.mode == "exit-1" else status


if __name__ == "__main__":
    sys.exit(main())
