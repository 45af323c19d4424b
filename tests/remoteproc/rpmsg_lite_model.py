"""A model of NXP's RPMsg-Lite in both roles, written by us from its sources (no code of it here), quirks and all:
the peer the rpmsg-lite profile and the conformance peers `rpmsg-lite-master` / `rpmsg-lite-remote` are tested
against in CI. What it copies (nxp-mcuxpresso/rpmsg-lite):

- master init (lib/rpmsg_lite/rpmsg_lite.c ``rpmsg_lite_master_init``): zeroes both vrings, posts its receive
  buffers on vring 0's avail ring, puts its send buffers on vring 1's *used* ring (``virtqueue_fill_used_buffers``:
  used.idx = count), every descriptor flagged VRING_DESC_F_WRITE (lib/virtio/virtqueue.c ``vq_ring_add_buffer``),
  avail.flags = NO_INTERRUPT on both (``virtqueue_disable_cb``, never cleared), then kicks vring 0 ("ready");
- sending (``rpmsg_lite_format_message``): take a buffer from the tx queue (master: its used ring; remote: the
  avail ring), write header and payload without checking the descriptor's length, add it, then
  ``virtqueue_kick``, which tests the ring's *used*.flags (``vq_ring_must_notify_host``): right for the master
  on vring 1, its own flags (never set) for the remote on vring 0, so the remote always kicks;
- receiving (``rpmsg_lite_rx_callback``): every used/avail entry, each buffer given back at once, no kick
  afterwards (RL_ALLOW_CONSUMED_BUFFERS_NOTIFICATION off); the remote returns used.len = the descriptor's length
  (``virtqueue_get_buffer_length``);
- the remote's link comes up with the master's kick of vring 0 (``rpmsg_lite_tx_callback``).
"""

from __future__ import annotations

import struct
import time

from rpmsg.profiles import Profile
from rpmsg.protocol import NS_ADDR, pack_header, pack_ns, unpack_ns
from transports.doorbell import Doorbell
from transports.memory import RegionMemory

F_WRITE = 2
NO_INTERRUPT = 1
NO_NOTIFY = 1
HDR = struct.Struct("<IIIHH")


class _Ring:
    def __init__(self, memory: RegionMemory, da: int, num: int, align: int) -> None:
        self.m, self.num = memory, num
        self.desc = da
        self.avail = da + 16 * num
        self.used = (self.avail + 6 + 2 * num + align - 1) & ~(align - 1)
        self.cons = 0  # vq_used_cons_idx (driver) / vq_available_idx (device)

    def u16(self, da: int) -> int:
        return int.from_bytes(self.m.read(da, 2), "little")

    def w16(self, da: int, v: int) -> None:
        self.m.write(da, (v & 0xFFFF).to_bytes(2, "little"))

    def set_desc(self, i: int, addr: int, length: int) -> None:
        self.m.write(self.desc + 16 * i, struct.pack("<QIHH", addr, length, F_WRITE, 0))

    def desc_of(self, i: int) -> tuple[int, int]:
        addr, length = struct.unpack("<QI", self.m.read(self.desc + 16 * i, 12))
        return addr, length

    # driver side (the master's vq_ops)
    def add_avail(self, i: int) -> None:
        idx = self.u16(self.avail + 2)
        self.w16(self.avail + 4 + 2 * (idx % self.num), i)
        self.w16(self.avail + 2, idx + 1)

    def get_used(self) -> tuple[int, int] | None:
        if self.cons == self.u16(self.used + 2):
            return None
        i, length = struct.unpack("<II", self.m.read(self.used + 4 + 8 * (self.cons % self.num), 8))
        self.cons = (self.cons + 1) & 0xFFFF
        return i, length

    # device side (the remote's vq_ops)
    def get_avail(self) -> int | None:
        if self.cons == self.u16(self.avail + 2):
            return None
        i = self.u16(self.avail + 4 + 2 * (self.cons % self.num))
        self.cons = (self.cons + 1) & 0xFFFF
        return i

    def add_used(self, i: int, length: int) -> None:
        idx = self.u16(self.used + 2)
        self.m.write(self.used + 4 + 8 * (idx % self.num), struct.pack("<II", i, length))
        self.w16(self.used + 2, idx + 1)


class RpmsgLite:
    """One RPMsg-Lite instance on ``profile``'s layout (rpmsg.rpmsg_lite): ``master`` True is the host role."""

    def __init__(self, memory: RegionMemory, doorbell: Doorbell, profile: Profile, *, master: bool) -> None:
        self.m, self.bell, self.p, self.master = memory, doorbell, profile, master
        n = profile.num
        self.v0 = _Ring(memory, profile.rx_layout.desc, n, profile.align)
        self.v1 = _Ring(memory, profile.tx_layout.desc, n, profile.align)
        # master: rvq = vring 0, tvq = vring 1; remote: tvq = vring 0, rvq = vring 1
        self.rvq, self.tvq = (self.v0, self.v1) if master else (self.v1, self.v0)
        self.link_up = master
        self.channels: dict[str, int] = {}
        self.inbox: list[tuple[int, int, bytes]] = []
        self.kicks_sent = 0

    def master_init(self) -> None:
        p, size = self.p, self.p.rx_size
        for ring in (self.v0, self.v1):
            self.m.write(ring.desc, bytes(ring.used + 4 + 8 * ring.num + 2 - ring.desc))
        for i in range(p.num):
            self.v0.set_desc(i, p.pool_da + i * size, size)
            self.v0.add_avail(i)
        for i in range(p.num):
            self.v1.set_desc(i, p.pool_da + (p.num + i) * size, size)
            self.v1.add_used(i, size)  # virtqueue_fill_used_buffers
        self.v0.w16(self.v0.avail, NO_INTERRUPT)  # virtqueue_disable_cb on both, never enabled again
        self.v1.w16(self.v1.avail, NO_INTERRUPT)

    def ready(self) -> None:
        self._kick(self.v0, force=True)  # "Let the remote device know that Master is ready"

    def _kick(self, ring: _Ring, *, force: bool = False) -> None:
        if force or not ring.u16(ring.used) & NO_NOTIFY:  # vq_ring_must_notify_host: the *used* flags
            self.bell.notify(0 if ring is self.v0 else 1)
            self.kicks_sent += 1

    def _alloc(self) -> tuple[int, int, int] | None:
        if self.master:
            got = self.tvq.get_used()
            if got is None:
                return None
            i, length = got  # buff_len: what the device reported
        else:
            j = self.tvq.get_avail()
            if j is None:
                return None
            i, length = j, self.tvq.desc_of(j)[1]
        return i, self.tvq.desc_of(i)[0], length

    def send(self, src: int, dst: int, data: bytes, timeout: float = 5.0) -> None:
        if not self.link_up:
            raise RuntimeError("RL_NOT_READY: the master has not kicked yet")
        deadline = time.monotonic() + timeout
        while (got := self._alloc()) is None:  # rpmsg_lite_format_message: sleep 1 ms and retry
            self.process(0.001)
            if time.monotonic() > deadline:
                raise TimeoutError("RL_ERR_NO_MEM: no send buffer came back")
        i, addr, length = got
        self.m.write(addr, pack_header(src, dst, len(data)) + data)  # no check against the descriptor length
        if self.master:
            self.tvq.add_avail(i)  # virtqueue_add_buffer: the descriptor keeps its flags (F_WRITE)
        else:
            self.tvq.add_used(i, length)  # virtqueue_add_consumed_buffer: len = the buffer's length
        self._kick(self.tvq)

    def announce(self, name: str, addr: int) -> None:
        self.send(addr, NS_ADDR, pack_ns(name, addr, False))

    def process(self, timeout: float) -> None:
        """Wait for a kick (up to ``timeout``); on one, run the rx callback (it runs from the kick's interrupt
        only: platform ISR -> ``virtqueue_notification``; nothing looks at the rings without a kick)."""
        if not self.bell.wait(timeout):
            return
        self.link_up = True  # rpmsg_lite_tx_callback (any kick: the model does not tell queues apart)
        while True:
            if self.master:
                got = self.rvq.get_used()
                if got is None:
                    return
                i = got[0]
            else:
                j = self.rvq.get_avail()
                if j is None:
                    return
                i = j
            addr, length = self.rvq.desc_of(i)
            src, dst, _res, n, _flags = HDR.unpack(self.m.read(addr, 16))
            payload = self.m.read(addr + 16, min(n, max(0, length - 16)))
            if dst == NS_ADDR:
                ns = unpack_ns(payload)
                if ns.destroy:
                    self.channels.pop(ns.name, None)
                else:
                    self.channels[ns.name] = ns.addr
            else:
                self.inbox.append((src, dst, payload))
            if self.master:
                self.rvq.add_avail(i)  # vq_rx_free_master; no kick
            else:
                self.rvq.add_used(i, length)  # vq_rx_free_remote: the descriptor's length; no kick
