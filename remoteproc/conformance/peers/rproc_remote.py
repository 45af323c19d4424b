"""rproc's remote program, the peer :class:`~remoteproc.conformance.peers.rproc.RprocRemotePeer` starts for the host
role in a process of its own, correct or broken on purpose.

    python -m remoteproc.conformance.peers.rproc_remote NAME [--break MODE] [--num N --rx-size N --tx-size N]

It connects to the host's shm link NAME (rproc's shm profile), announces ``rpmsg-echo`` and echoes every message
back to its sender until the host goes away. Each ``--break`` mode violates one rule, so that the scenario
checking that rule can be shown to fail (``rproc conformance --peer rproc-remote --break MODE``).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from array import array

from remoteproc.conformance.common import ECHO_CHANNEL
from remoteproc.conformance.peers.rproc import BREAKS, add_profile_options, profile_of
from rpmsg.core import Event, RemoteCore
from rpmsg.device import Endpoint, RpmsgDevice
from rpmsg.errors import EndpointClosed, PeerLost, RpmsgTimeout
from rpmsg.protocol import HEADER, HEADER_SIZE, RESERVED_ADDRESSES, RX_VRING, pack_header
from transports.shm import ShmLink
from virtio import Notify


class _BrokenRemote(RemoteCore):
    mode = ""

    def _write_and_push(self, src: int, dst: int, payload: bytes | bytearray | memoryview) -> None:
        chain = self._take_rx_buffer()
        buf = chain.descs[0]
        length = len(payload)
        header_len = buf.len + 100 if self.mode == "oversize-len" else length
        self.memory.write(buf.addr, pack_header(src, dst, header_len) + bytes(payload))
        used_len = 8 if self.mode == "short-used-len" else HEADER_SIZE + length
        self.to_host.push(chain.head, used_len)
        if self.mode == "wrong-used-id":
            layout = self.to_host.layout
            idx = int.from_bytes(self.memory.read(layout.used + 2, 2), "little")
            entry = layout.used + 4 + 8 * (idx % layout.num)
            self.memory.write(entry, (layout.num + 7).to_bytes(4, "little"))
        self._note(self.to_host.publish())

    def send(self, src: int, dst: int, payload: bytes | bytearray | memoryview) -> None:
        if self.mode in ("oversize-len", "short-used-len", "wrong-used-id") and dst != 53:
            self._write_and_push(src, dst, payload)
        else:
            super().send(src, dst, payload)
        if self.mode == "kick-always":
            self.intents.add(RX_VRING)

    def _note(self, intent: Notify | None) -> None:
        if self.mode != "no-kick":
            super()._note(intent)

    def _parse_batch(self, out: bytearray, lens: array[int], n: int, where: str) -> list[Event]:
        if self.mode != "check-reserved":
            return super()._parse_batch(out, lens, n, where)
        kept, kept_lens, pos = bytearray(), array("I"), 0
        for i in range(n):
            size = lens[i]
            if size >= HEADER_SIZE and HEADER.unpack_from(out, pos)[2] == 0:
                kept += out[pos : pos + size]
                kept_lens.append(size)
            pos += size
        return super()._parse_batch(kept, kept_lens, len(kept_lens), where)


def echo_batches(ep: Endpoint) -> None:
    """The correct echo, through the remote role's batch path: what has arrived is taken in one call
    (recvfrom_many) and answered with one send_many per run of messages from one source, until the host goes."""
    while True:
        try:
            got = ep.recvfrom_many(64)
        except RpmsgTimeout:
            continue
        except (PeerLost, EndpointClosed):
            return
        start = 0
        try:
            for k in range(1, len(got) + 1):
                if k == len(got) or got[k][1] != got[start][1]:
                    rest = [data for data, _ in got[start:k]]
                    while rest:
                        rest = rest[ep.send_many(rest, got[start][1]) :]
                    start = k
        except (PeerLost, EndpointClosed):
            return


def serve(device: RpmsgDevice, mode: str, state: str | None = None) -> None:
    """Serve ``rpmsg-echo`` until the host goes: correct (``mode`` ""), or broken as BREAKS[mode] says."""
    if mode == "die-on-host-ns":
        device.on_channel(lambda name, addr, created: os._exit(3))
    announce = mode != "no-ns"
    if mode == "announce-once" and state:
        announce = not os.path.exists(state)
        with open(state, "a"):
            pass
    ep = device.endpoint(ECHO_CHANNEL, announce=announce)
    ep.settimeout(0.5)
    if not mode:
        echo_batches(ep)
        return
    held: tuple[bytes, int] | None = None
    echoed = 0
    while True:
        try:
            data, src = ep.recvfrom()
        except RpmsgTimeout:
            continue
        except (PeerLost, EndpointClosed):
            if mode == "ignore-host-close":
                while True:
                    time.sleep(1)
            return
        if mode == "drop-low-addr" and src < RESERVED_ADDRESSES:
            continue
        if mode == "no-max-size" and len(data) == 496:
            continue
        if mode == "stop-after-1000" and echoed >= 1000:
            continue
        replies = [(data, src)]
        if mode == "reorder":
            if held is None:
                held = (data, src)
                continue
            replies, held = [(data, src), held], None
        try:
            for reply, to in replies:
                ep.sendto(reply, to)
                echoed += 1
        except (PeerLost, EndpointClosed):
            return


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m remoteproc.conformance.peers.rproc_remote")
    ap.add_argument("name")
    ap.add_argument("--break", dest="mode", choices=sorted(BREAKS), default="")
    ap.add_argument("--timeout", type=float, default=20)
    ap.add_argument("--state", help="a file that outlives this process (announce-once remembers its first start)")
    add_profile_options(ap)
    args = ap.parse_args(argv)
    p = profile_of(args)
    link = ShmLink.connect_remote(args.name, p.base + p.size, args.timeout)
    cls = type(f"Broken_{args.mode}", (_BrokenRemote,), {"mode": args.mode}) if args.mode else RemoteCore
    device = RpmsgDevice(p.remote_core(link.memory, cls=cls), link.doorbell)
    if args.mode == "death-unseen" and os.fork() == 0:
        # The child keeps the doorbell socket open after the parent is killed; it leaves when the host does.
        # (An eventfd doorbell's descriptor is an epoll set: its stream socket is what tells of an end.)
        sock = getattr(device.doorbell, "sock", None)
        fd = sock.fileno() if sock is not None else device.doorbell.fileno()
        os.set_blocking(fd, True)
        with contextlib.suppress(OSError):
            while os.read(fd, 4096):
                pass
        os._exit(0)
    try:
        serve(device, args.mode, args.state)
    finally:
        device.close()
        link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
