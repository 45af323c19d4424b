"""The started vhost-user device: the guest's memory mapped from the front-end's table (in guest-physical
addresses, the addresses descriptors carry), ring addresses translated from the front-end's virtual ones, and the
doorbell (kick eventfds in, call descriptors out). :class:`~transports.vhost_user_backend.VhostUserBackend` keeps
the configuration as the front-end sends it (:class:`VringConfig`, :class:`GuestMapping`) and hands out a
:class:`VhostUserSession` made here (:func:`make_session`) once the driver started the device.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import select
from dataclasses import dataclass, field

from transports import vhost_user_messages as vu
from transports.doorbell import KICK_EPOLL, KICK_EVENTFD, CDoorbell, Loans, PeerLostError, _own
from transports.errors import TransportError
from transports.memory import MappedRegion, RegionMemory

log = logging.getLogger(__name__)


class VhostUserError(TransportError):
    """The vhost-user device cannot be used as configured (the message says what the front-end set)."""


@dataclass
class VringConfig:
    """One queue as the front-end configured it (its descriptors are ours until closed)."""

    num: int = 0
    base: int = 0
    addr: vu.VringAddr | None = None
    kick: int = -1
    call: int = -1
    enabled: bool = False

    def close_fds(self) -> None:
        for name in ("kick", "call"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)


@dataclass
class GuestMapping:
    """One region of the front-end's memory table, mapped."""

    region: vu.MemRegion
    map: mmap.mmap
    offset: int  # of the region's first byte inside ``map``


class VhostUserDoorbell:
    """Kicks in (the front-end's kick eventfds), calls out (8 bytes to a call descriptor), loss reported.

    The descriptors are duplicates owned by this doorbell, so a front-end replacing them later can never make us
    write into a descriptor number that meanwhile means something else."""

    def __init__(self, kicks: list[int], calls: list[int]) -> None:
        self._kicks = [os.dup(fd) for fd in kicks]
        self._calls = [os.dup(fd) if fd >= 0 else -1 for fd in calls]
        for fd in self._kicks + [c for c in self._calls if c >= 0]:
            os.set_blocking(fd, False)
        self._lost_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._intr_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        # Two epolls: one of the kick eventfds alone (what C's drain reads: every descriptor in it is a kick,
        # registered under its own number), and the one a wait polls: the kicks' epoll, loss, interrupt.
        self._kick_epoll = select.epoll()
        for fd in self._kicks:
            self._kick_epoll.register(fd, select.EPOLLIN)
        self._epoll = select.epoll()
        for fd in (self._kick_epoll.fileno(), self._lost_fd, self._intr_fd):
            self._epoll.register(fd, select.EPOLLIN)
        self.lost: str | None = None
        self.calls_sent = 0
        self.kicks_seen = 0
        self.closed = False
        self.loans = Loans()  # the rpmsg device's C path kicks and drains these descriptors by number
        self.lend, self.give_back = self.loans.lend, self.loans.give_back

    def mark_lost(self, why: str) -> None:
        if self.lost is None and not self.closed:
            self.lost = why
            os.eventfd_write(self._lost_fd, 1)

    def notify(self, queue: int) -> None:
        if self.closed:
            raise PeerLostError("vhost-user: doorbell closed (on this side)")
        if self.lost is not None:
            raise PeerLostError(f"vhost-user: {self.lost}")
        if not 0 <= queue < len(self._calls) or self._calls[queue] < 0:
            raise VhostUserError(f"queue {queue} has no call descriptor (queues: {len(self._calls)})")
        try:
            os.write(self._calls[queue], b"\x01\0\0\0\0\0\0\0")
            self.calls_sent += 1
        except BlockingIOError:
            pass  # calls already pending: the front-end will look at the ring anyway
        except OSError as exc:
            self.mark_lost(f"call descriptor of queue {queue}: {exc.strerror or exc}")
            raise PeerLostError(f"vhost-user: {self.lost}") from None

    def _drain(self) -> bool:
        kicked = False
        for fd in self._kicks:
            try:
                os.eventfd_read(fd)
                kicked = True
            except BlockingIOError:
                pass
        if kicked:
            self.kicks_seen += 1
        return kicked

    def wait(self, timeout: float | None) -> bool:
        if self.closed:
            raise PeerLostError("vhost-user: doorbell closed (on this side)")
        if self.lost is not None:
            raise PeerLostError(f"vhost-user: {self.lost}")
        events = self._epoll.poll(-1 if timeout is None else timeout)
        kicked = self._drain() if events else False
        if self.lost is not None:
            raise PeerLostError(f"vhost-user: {self.lost}")
        with contextlib.suppress(BlockingIOError):
            os.eventfd_read(self._intr_fd)
        return kicked

    def fileno(self) -> int:
        return self._epoll.fileno()

    def c_doorbell(self) -> CDoorbell | None:
        """For C code: a call is the 8-byte eventfd write to the queue's own call descriptor (a queue without
        one: the runner's :meth:`notify`, which says so); a wake-up's kicks are drained from the kicks' epoll;
        a sleep polls :meth:`fileno` (kicks, loss, interrupt: what is not a kick leaves the drain empty, so the
        runner's :meth:`wait` looks and reports a lost front-end). Kicks and calls done in C are not counted
        in :attr:`kicks_seen`/:attr:`calls_sent`."""
        if self.lost is not None or self.closed or not _own(self, VhostUserDoorbell):
            return None
        return CDoorbell(
            -1, KICK_EVENTFD, self._epoll.fileno(), self._kick_epoll.fileno(), KICK_EPOLL, tuple(self._calls)
        )

    def interrupt(self) -> None:
        if not self.closed:
            os.eventfd_write(self._intr_fd, 1)

    def close(self) -> None:
        if self.closed:
            return
        os.eventfd_write(self._intr_fd, 1)  # a sleeper here wakes (and finds the doorbell closed)
        self.closed = True
        self.loans.close(PeerLostError("vhost-user: doorbell closed (on this side)"), self._close_descriptors)

    def _close_descriptors(self) -> None:
        self._epoll.close()
        self._kick_epoll.close()
        for fd in (*self._kicks, *self._calls, self._lost_fd, self._intr_fd):
            if fd >= 0:
                os.close(fd)


@dataclass(frozen=True)
class RingAddresses:
    """Where one queue lives, in guest-physical addresses (what descriptors carry too)."""

    num: int
    desc: int
    avail: int
    used: int


@dataclass
class VhostUserSession:
    """One started device: use :attr:`memory` and :attr:`layouts` with the virtio engine, :attr:`doorbell` for
    notifications; :meth:`close` (after the queues are closed) unmaps the memory."""

    memory: RegionMemory
    rings: list[RingAddresses]
    features: int
    doorbell: VhostUserDoorbell
    _maps: list[GuestMapping] = field(repr=False, default_factory=list)

    def has_feature(self, bit: int) -> bool:
        return bool(self.features >> bit & 1)

    def close(self) -> None:
        self.doorbell.close()
        self.memory.release()
        for m in self._maps:
            try:
                m.map.close()
            except BufferError:
                log.warning("vhost-user: guest memory still viewed by a queue that was not closed; left mapped")
        self._maps = []


def map_mem_table(regions: list[vu.MemRegion], fds: list[int]) -> list[GuestMapping]:
    """SET_MEM_TABLE's regions mapped (each from the page below its offset); none stays mapped if one fails."""
    maps: list[GuestMapping] = []
    page = mmap.ALLOCATIONGRANULARITY
    try:
        for i, (region, fd) in enumerate(zip(regions, fds, strict=True)):
            start = region.mmap_offset - region.mmap_offset % page
            try:
                m = mmap.mmap(fd, region.size + region.mmap_offset - start, offset=start)
            except (OSError, ValueError, OverflowError) as exc:
                raise VhostUserError(f"SET_MEM_TABLE region {i} ({region!r}): mmap failed: {exc}") from None
            maps.append(GuestMapping(region, m, region.mmap_offset - start))
    except BaseException:
        for mp in maps:
            mp.map.close()
        raise
    return maps


def guest_address(maps: list[GuestMapping], user_addr: int, queue: int, part: str) -> int:
    """Vring addresses come as front-end virtual addresses: find the region, return the guest address."""
    for m in maps:
        r = m.region
        if r.user_addr <= user_addr < r.user_addr + r.size:
            return user_addr - r.user_addr + r.guest_addr
    known = "; ".join(repr(m.region) for m in maps)
    raise VhostUserError(f"queue {queue}: {part} ring at user address {user_addr:#x} is in no region ({known})")


def used_idx(maps: list[GuestMapping], v: VringConfig) -> int:
    """Where the ring stands (GET_VRING_BASE): our used index, the next avail entry we would take."""
    if v.addr is None or not maps:
        return 0
    try:
        used = guest_address(maps, v.addr.used, 0, "used")
        for m in maps:
            r = m.region
            if r.guest_addr <= used and used + 4 <= r.guest_addr + r.size:
                at = m.offset + used - r.guest_addr + 2
                return int.from_bytes(m.map[at : at + 2], "little")
    except VhostUserError:
        pass
    return 0


def make_session(maps: list[GuestMapping], vrings: list[VringConfig], features: int) -> VhostUserSession:
    """The started device on the configured queues: guest memory, ring addresses, a doorbell of its own."""
    memory = RegionMemory(
        [MappedRegion(f"guest{i}", m.region.guest_addr, m.region.size, m.map, m.offset) for i, m in enumerate(maps)]
    )
    rings = []
    for i, v in enumerate(vrings):
        assert v.addr is not None
        if v.base:
            raise VhostUserError(f"queue {i}: SET_VRING_BASE {v.base} (resuming a ring) is not supported")
        rings.append(
            RingAddresses(
                num=v.num,
                desc=guest_address(maps, v.addr.desc, i, "desc"),
                avail=guest_address(maps, v.addr.avail, i, "avail"),
                used=guest_address(maps, v.addr.used, i, "used"),
            )
        )
    doorbell = VhostUserDoorbell([v.kick for v in vrings], [v.call for v in vrings])
    return VhostUserSession(memory, rings, features, doorbell, list(maps))
