"""A small vhost-user *front-end* for unit tests of the back-end: it sends the requests User-Mode Linux's
virtio_uml sends, in its order (arch/um/drivers/virtio_uml.c: vhost_user_init, vu_finalize_features,
vu_find_vqs), shares a memfd as guest memory, and can run rproc's rpmsg host role on it.

The integration test is the real kernel (tests/conformance/linux); this one can also misbehave on purpose.
"""

from __future__ import annotations

import array
import mmap
import os
import select
import socket
import struct
from dataclasses import dataclass

from rpmsg.core import HostCore
from rpmsg.profiles import Profile
from transports import vhost_user_messages as vu
from transports.doorbell import PeerLostError
from transports.memory import MappedRegion, RegionMemory

GUEST_BASE = 0x100000  # guest-physical address of the region
USER_BASE = 0x7F0000000000  # the front-end's virtual address of the same region (vring addresses use it)
FILE_OFFSET = 0x2000  # where the region starts inside the memfd


class FrontendDoorbell:
    """Kicks out on eventfds, calls in on pipes (as virtio_uml: SIGIO does not work on eventfds)."""

    def __init__(self, kicks: list[int], calls: list[int]) -> None:
        self.kicks, self.calls = kicks, calls
        self._intr = os.eventfd(0, os.EFD_NONBLOCK)
        self._epoll = select.epoll()
        for fd in (*calls, self._intr):
            self._epoll.register(fd, select.EPOLLIN)

    def notify(self, queue: int) -> None:
        os.eventfd_write(self.kicks[queue], 1)

    def wait(self, timeout: float | None) -> bool:
        kicked = False
        for fd, _ev in self._epoll.poll(-1 if timeout is None else timeout):
            if fd == self._intr:
                os.eventfd_read(fd)
                continue
            try:
                data = os.read(fd, 4096)
            except BlockingIOError:
                continue
            if not data:
                raise PeerLostError("the back-end closed its call pipe")
            kicked = True
        return kicked

    def fileno(self) -> int:
        return self._epoll.fileno()

    def interrupt(self) -> None:
        os.eventfd_write(self._intr, 1)

    def close(self) -> None:
        self._epoll.close()
        os.close(self._intr)


@dataclass
class Frontend:
    sock: socket.socket
    memfd: int
    map: mmap.mmap
    memory: RegionMemory
    profile: Profile
    kicks: list[int]
    calls_r: list[int]
    slave: socket.socket | None = None
    protocol_features: int = 0

    @classmethod
    def connect(cls, path: str, *, size: int = 0x100000, profile: Profile | None = None) -> Frontend:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(path)
        memfd = os.memfd_create("guest")
        os.ftruncate(memfd, FILE_OFFSET + size)
        m = mmap.mmap(memfd, FILE_OFFSET + size)
        memory = RegionMemory([MappedRegion("guest", GUEST_BASE, size, m, FILE_OFFSET)])
        p = profile or Profile(base=GUEST_BASE)
        return cls(sock, memfd, m, memory, p, [], [])

    # --- the wire ---------------------------------------------------------------------------------------------
    def send(self, request: int, payload: bytes = b"", fds: list[int] | None = None, *, flags: int = 1) -> None:
        if self.protocol_features >> vu.PROTOCOL_F_REPLY_ACK & 1 and request not in vu.VALUE_REPLIES:
            flags |= vu.FLAG_NEED_REPLY
        data = vu.HEADER.pack(request, flags, len(payload)) + payload
        anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds).tobytes())] if fds else []
        self.sock.sendmsg([data], anc)
        if flags & vu.FLAG_NEED_REPLY:
            status = self.recv_u64(request)
            if status:
                raise RuntimeError(f"back-end refused {vu.request_name(request)}: status {status}")

    def recv_reply(self, request: int) -> bytes:
        head = self._read(vu.HEADER.size)
        req, flags, size = vu.HEADER.unpack(head)
        assert req == request, (req, request)
        assert flags == vu.VERSION | vu.FLAG_REPLY, hex(flags)
        return self._read(size)

    def recv_u64(self, request: int) -> int:
        payload = self.recv_reply(request)
        assert len(payload) == 8
        return int(struct.unpack("<Q", payload)[0])

    def _read(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise ConnectionError("back-end closed the connection")
            out += chunk
        return out

    def query(self, request: int, payload: bytes = b"") -> int:
        self.send(request, payload)
        return self.recv_u64(request)

    # --- the virtio_uml sequence ------------------------------------------------------------------------------
    def negotiate(self, driver_features: int) -> int:
        """SET_OWNER .. SET_FEATURES; returns what the device offered."""
        self.send(vu.Request.SET_OWNER)
        offered = self.query(vu.Request.GET_FEATURES)
        if offered >> vu.F_PROTOCOL_FEATURES & 1:
            proto = self.query(vu.Request.GET_PROTOCOL_FEATURES)
            mine = (1 << vu.PROTOCOL_F_REPLY_ACK) | (1 << vu.PROTOCOL_F_SLAVE_REQ)
            self.send(vu.Request.SET_PROTOCOL_FEATURES, vu.U64.pack(proto & mine))
            self.protocol_features = proto & mine
        if self.protocol_features >> vu.PROTOCOL_F_SLAVE_REQ & 1:
            ours, theirs = socket.socketpair()
            self.slave = ours
            self.send(vu.Request.SET_SLAVE_REQ_FD, fds=[theirs.fileno()])
            theirs.close()
        self.send(vu.Request.SET_FEATURES, vu.U64.pack(driver_features & offered))
        return offered

    def set_mem_table(self) -> None:
        r = self.memory.regions[0]
        payload = vu.MEM_REGIONS_HEAD.pack(1, 0) + vu.MEM_REGION.pack(r.da, r.size, USER_BASE, FILE_OFFSET)
        self.send(vu.Request.SET_MEM_TABLE, payload, [self.memfd])

    def setup_vrings(self) -> None:
        for index, layout in enumerate((self.profile.rx_layout, self.profile.tx_layout)):
            kick = os.eventfd(0, os.EFD_NONBLOCK)
            call_r, call_w = os.pipe2(os.O_NONBLOCK)
            self.kicks.append(kick)
            self.calls_r.append(call_r)
            self.send(vu.Request.SET_VRING_CALL, vu.U64.pack(index), [call_w])
            os.close(call_w)
            self.send(vu.Request.SET_VRING_NUM, vu.VRING_STATE.pack(index, layout.num))
            self.send(vu.Request.SET_VRING_BASE, vu.VRING_STATE.pack(index, 0))
            to_user = USER_BASE - GUEST_BASE
            addr = vu.VRING_ADDR.pack(
                index, 0, layout.desc + to_user, layout.used + to_user, layout.avail + to_user, 2**64 - 1
            )
            self.send(vu.Request.SET_VRING_ADDR, addr)
        for index, kick in enumerate(self.kicks):
            self.send(vu.Request.SET_VRING_KICK, vu.U64.pack(index), [kick])
            self.send(vu.Request.SET_VRING_ENABLE, vu.VRING_STATE.pack(index, 1))

    def start_host(self) -> tuple[HostCore, FrontendDoorbell]:
        """Linux rpmsg_probe: post receive buffers, then kick vring 0."""
        core = self.profile.host_core(self.memory)
        core.start()
        return core, FrontendDoorbell(self.kicks, self.calls_r)

    def disable(self) -> None:
        """vu_del_vqs: disable every ring, then a GET_FEATURES to be sure they were processed."""
        for index in reversed(range(len(self.kicks))):
            self.send(vu.Request.SET_VRING_ENABLE, vu.VRING_STATE.pack(index, 0))
        self.query(vu.Request.GET_FEATURES)

    def close(self) -> None:
        self.sock.close()
        if self.slave is not None:
            self.slave.close()
        for fd in (*self.kicks, *self.calls_r):
            os.close(fd)
        self.memory.release()
        self.map.close()
        os.close(self.memfd)
