"""The pure-Python twin of csrc/vring.c: the same state, the same checks, the same return codes.

It is the reference the differential tests hold the C engine to, and the backend used when the C module is
not built. Every function mirrors the C function of the same name (``drv_add`` is ``rp_drv_add``); read the
theory of operation at the top of vring.c. Indices shared with the other side are read and written as single
aligned 16/32-bit accesses through ``memoryview.cast`` (``struct.pack_into`` copies byte by byte and tears).
Python has no memory barrier of its own. On x86 (TSO) program order gives the ordering of vring.c's rp_wmb and
rp_rmb, but not rp_mb's: a load may pass an earlier store, which is what notification suppression's Dekker
pattern forbids (our index, then the other side's flag). Where vring.c has rp_mb this calls :func:`full_fence`,
a lock taken and let go (a locked instruction: a full fence on x86); elsewhere use the C backend.
One module over 400 lines on purpose: :class:`PyVring` mirrors the one file vring.c function by function, in its
order, so the two read side by side and the differential test pairs them; split, the twin would no longer show.
"""

from __future__ import annotations

import threading
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass

from virtio.status import (
    AVAIL_F_NO_INTERRUPT,
    DESC_F_INDIRECT,
    DESC_F_NEXT,
    DESC_F_WRITE,
    ROLE_DRIVER,
    RP_ERR_ARG,
    RP_ERR_AVAIL_JUMP,
    RP_ERR_BAD_ADDR,
    RP_ERR_BAD_HEAD,
    RP_ERR_BAD_NEXT,
    RP_ERR_BAD_USED_ID,
    RP_ERR_BROKEN,
    RP_ERR_FULL,
    RP_ERR_INDIRECT,
    RP_ERR_LOOP,
    RP_ERR_SPACE,
    RP_ERR_USED_JUMP,
    RP_ERR_USED_LEN,
    RP_OK,
    USED_F_NO_NOTIFY,
)

U16 = 0xFFFF
U32 = 0xFFFF_FFFF

Region = tuple[int, int, memoryview]  # (da, size, bytes)
Desc = tuple[int, int, int, int]  # (addr, len, flags, index)
Used = tuple[int, int, int]  # (token, len, head)
LensOut = MutableSequence[int]


@dataclass
class Slot:
    token: int = 0
    total: int = 0
    ndesc: int = 0
    next: int = 0
    avail_pos: int = 0  # the avail idx the head was added at: the device has it once that is published


def translate(regions: Sequence[Region], da: int, length: int) -> memoryview | None:
    for rda, size, view in regions:
        if da >= rda and length <= size and da - rda <= size - length:
            off = da - rda
            return view[off : off + length]
    return None


_FENCE = threading.Lock()


def full_fence() -> None:
    """vring.c's rp_mb: the lock's atomic compare-and-exchange is a locked instruction on x86, which orders every
    earlier load and store before every later one (the uncontended take and release: ~0.1 us)."""
    _FENCE.acquire()
    _FENCE.release()


def need_event(event: int, new: int, old: int) -> bool:
    return ((new - event - 1) & U16) < ((new - old) & U16)


class PyVring:
    """One queue, driver or device side, over three memoryviews of ring memory."""

    backend = "python"

    def __init__(
        self,
        role: int,
        num: int,
        index: int,
        desc: memoryview,
        avail: memoryview,
        used: memoryview,
        regions: Sequence[Region],
        event_idx: bool,
    ) -> None:
        if num <= 0 or num & (num - 1) or num > 32768:
            raise ValueError(f"num {num} is not a power of two up to 32768")
        self.role = role
        self.num = num
        self.index = index
        self.event_idx = bool(event_idx)
        self.regions = list(regions)
        self._desc8 = desc
        self._desc16 = desc.cast("H")
        self._desc32 = desc.cast("I")
        self._avail16 = avail.cast("H")
        self._used16 = used.cast("H")
        self._used32 = used[4 : 4 + 8 * num].cast("I")
        self._avail_bytes = avail
        self._used_bytes = used
        self._views = [self._desc16, self._desc32, self._avail16, self._used16, self._used32, desc, avail, used]
        self.slots = [Slot(next=i + 1) for i in range(num)] if role == ROLE_DRIVER else []
        self.broken = False
        self.suppressed = False
        self.free_head = 0
        self.num_free = num if role == ROLE_DRIVER else 0
        self.avail_shadow = self.avail_kicked = self.last_used = 0
        self.last_avail = self.used_shadow = self.used_signalled = 0
        self.used_base = 0  # used idx the driver left at start (dev_adopt_used), else 0
        self.err = 0
        self.err_where = 0
        self.err_value = 0
        self.pool: list[int] = []
        self._pool_cap = 0

    # --- ring accessors (offsets as in vring.c) ---------------------------------------------------------
    def _desc(self, i: int) -> tuple[int, int, int, int]:
        w = 4 * i
        h = 8 * i
        return (
            self._desc32[w] | (self._desc32[w + 1] << 32),
            self._desc32[w + 2],
            self._desc16[h + 6],
            self._desc16[h + 7],
        )

    def _set_desc(self, i: int, addr: int, length: int, flags: int, nxt: int) -> None:
        w = 4 * i
        h = 8 * i
        self._desc32[w] = addr & U32
        self._desc32[w + 1] = addr >> 32
        self._desc32[w + 2] = length
        self._desc16[h + 6] = flags
        self._desc16[h + 7] = nxt

    @property
    def _avail_idx(self) -> int:
        return self._avail16[1]

    @property
    def _used_idx(self) -> int:
        return self._used16[1]

    def _used_event_get(self) -> int:
        return self._avail16[2 + self.num]

    def _used_event_set(self, value: int) -> None:
        self._avail16[2 + self.num] = value & U16

    def _avail_event_get(self) -> int:
        return self._used16[2 + 4 * self.num]

    def _avail_event_set(self, value: int) -> None:
        self._used16[2 + 4 * self.num] = value & U16

    def _fault(self, err: int, where: int, value: int) -> int:
        self.broken = True
        self.err, self.err_where, self.err_value = err, where, value
        return err

    def _local(self, err: int, where: int, value: int) -> int:
        self.err, self.err_where, self.err_value = err, where, value
        return err

    def _translate(self, da: int, length: int) -> memoryview | None:
        return translate(self.regions, da, length)

    # --- driver side ------------------------------------------------------------------------------------
    def drv_reset(self) -> None:
        self._desc8[:] = bytes(len(self._desc8))
        self._avail_bytes[:] = bytes(len(self._avail_bytes))
        self._used_bytes[:] = bytes(len(self._used_bytes))
        self.slots = [Slot(next=i + 1) for i in range(self.num)]
        self.free_head = 0
        self.num_free = self.num
        self.avail_shadow = self.avail_kicked = self.last_used = 0
        self.broken = False
        self.err = self.err_where = self.err_value = 0
        self.suppressed = False
        full_fence()

    def drv_add(self, bufs: Sequence[tuple[int, int, int]], token: int) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        n = len(bufs)
        if n == 0 or n > self.num:
            return self._local(RP_ERR_ARG, 0, n)
        if n > self.num_free:
            return self._local(RP_ERR_FULL, self.num_free, n)
        total = 0
        for i, (addr, length, _flags) in enumerate(bufs):
            if self._translate(addr, length) is None:
                return self._local(RP_ERR_BAD_ADDR, i, addr)
            total += length
        if total > U32:
            return self._local(RP_ERR_ARG, 0, total)
        head = d = self.free_head
        for i, (addr, length, flags) in enumerate(bufs):
            last = i + 1 == n
            nxt = self.slots[d].next
            self._set_desc(d, addr, length, (flags & DESC_F_WRITE) | (0 if last else DESC_F_NEXT), 0 if last else nxt)
            if not last:
                d = nxt
        self.free_head = self.slots[d].next & U16
        self.num_free -= n
        s = self.slots[head]
        s.token, s.total, s.ndesc, s.avail_pos = token, total, n, self.avail_shadow
        self._avail16[2 + (self.avail_shadow & (self.num - 1))] = head
        self.avail_shadow = (self.avail_shadow + 1) & U16
        return head

    def drv_add_many(self, bufs: Sequence[tuple[int, int, int]], tokens: Sequence[int]) -> int:
        k = 0
        for buf, token in zip(bufs, tokens, strict=True):
            r = self.drv_add([buf], token)
            if r == RP_ERR_FULL:
                break
            if r < 0:
                return r
            k += 1
        return k

    def drv_publish(self) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        self._avail16[1] = self.avail_shadow
        full_fence()  # the index before the device's suppression state
        old, new = self.avail_kicked, self.avail_shadow
        self.avail_kicked = new
        if new == old:
            return 0
        if self.event_idx:
            return int(need_event(self._avail_event_get(), new, old))
        return int(not (self._used16[0] & USED_F_NO_NOTIFY))

    def _used_peek(self) -> tuple[int, int, int]:
        uidx = self._used_idx
        pending = (uidx - self.last_used) & U16
        if pending == 0:
            return 0, 0, 0
        if pending > ((self.avail_kicked - self.last_used) & U16):
            return self._fault(RP_ERR_USED_JUMP, self.last_used, uidx), 0, 0
        pos = self.last_used & (self.num - 1)
        uid, length = self._used32[2 * pos], self._used32[2 * pos + 1]
        # In flight: added and published (vring.c used_peek: at most num heads wait unpublished).
        if (
            uid >= self.num
            or self.slots[uid].ndesc == 0
            or ((self.slots[uid].avail_pos - self.avail_kicked) & U16) < self.num
        ):
            return self._fault(RP_ERR_BAD_USED_ID, pos, uid), 0, 0
        if length > self.slots[uid].total:
            return self._fault(RP_ERR_USED_LEN, uid, length), 0, 0
        return 1, uid, length

    def _used_consume(self, uid: int) -> None:
        s = self.slots
        last = uid
        for _ in range(1, s[uid].ndesc):
            last = s[last].next
        s[last].next = self.free_head
        self.free_head = uid
        self.num_free += s[uid].ndesc
        s[uid].ndesc = 0
        self.last_used = (self.last_used + 1) & U16

    def _used_done(self) -> None:
        if self.event_idx and not self.suppressed:
            self._used_event_set(self.last_used)
            full_fence()

    def drv_get_used(self, max_count: int) -> tuple[int, list[Used]]:
        if self.broken:
            return RP_ERR_BROKEN, []
        out: list[Used] = []
        while len(out) < max_count:
            r, uid, length = self._used_peek()
            if r < 0:
                if out:
                    break
                return r, []
            if r == 0:
                break
            out.append((self.slots[uid].token, length, uid))
            self._used_consume(uid)
        if out:
            self._used_done()
        return len(out), out

    def drv_peek(self) -> tuple[int, Used | None]:
        if self.broken:
            return RP_ERR_BROKEN, None
        r, uid, length = self._used_peek()
        if r <= 0:
            return r, None
        return 1, (self.slots[uid].token, length, uid)

    def drv_skip(self) -> tuple[int, Used | None]:
        r, used = self.drv_peek()
        if r < 0:
            return r, None
        if used is None:
            return self._local(RP_ERR_ARG, self.last_used, 0), None
        self._used_consume(used[2])
        self._used_done()
        return 1, used

    def drv_has_used(self) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        return int(self._used_idx != self.last_used)

    def drv_disable_cb(self) -> None:
        self.suppressed = True
        if self.event_idx:
            self._used_event_set(self.last_used - 1)
        else:
            self._avail16[0] = AVAIL_F_NO_INTERRUPT

    def drv_enable_cb(self) -> int:
        self.suppressed = False
        if self.event_idx:
            self._used_event_set(self.last_used)
        else:
            self._avail16[0] = 0
        full_fence()  # the flag before re-reading the index: no interrupt may fall between them
        if self.broken:
            return RP_ERR_BROKEN
        return int(self._used_idx != self.last_used)

    def drv_pool_set(self, addrs: Sequence[int]) -> None:
        self.pool = list(addrs)
        self._pool_cap = len(self.pool)

    def drv_pool_take(self) -> int | None:
        return self.pool.pop() if self.pool else None

    def drv_pool_put(self, addr: int) -> None:
        if len(self.pool) >= self._pool_cap:
            raise ValueError("the pool is full: this buffer was not taken from it")
        self.pool.append(addr)

    def drv_send_copy(self, data: bytes | memoryview, lens: Sequence[int], buf_size: int) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        k = pos = 0
        while k < len(lens) and self.num_free and self.pool:
            length = lens[k]
            if length > buf_size:
                return k if k else self._local(RP_ERR_SPACE, k, length)
            addr = self.pool[-1]
            host = self._translate(addr, buf_size)
            if host is None:
                return k if k else self._local(RP_ERR_BAD_ADDR, k, addr)
            host[:length] = data[pos : pos + length]
            r = self.drv_add([(addr, length, 0)], addr)
            if r < 0:
                return k if k else r
            self.pool.pop()
            pos += length
            k += 1
        return k

    def drv_reclaim(self, cap: int) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        k = 0
        cap = min(cap, self._pool_cap)
        while len(self.pool) < cap:
            r, uid, _ = self._used_peek()
            if r < 0:
                if k:
                    break
                return r
            if r == 0:
                break
            self.pool.append(self.slots[uid].token)
            self._used_consume(uid)
            k += 1
        if k:
            self._used_done()
        return k

    def drv_recv_copy_into(self, out: memoryview, lens: LensOut, max_count: int, buf_size: int) -> int:
        r, data, got = self._drv_recv_copy(len(out), max_count, buf_size)
        out[: len(data)] = data
        for i, n in enumerate(got):
            lens[i] = n
        return r

    def _drv_recv_copy(self, cap: int, max_count: int, buf_size: int) -> tuple[int, bytes, list[int]]:
        if self.broken:
            return RP_ERR_BROKEN, b"", []
        out = bytearray()
        lens: list[int] = []
        while len(lens) < max_count:
            r, uid, length = self._used_peek()
            if r < 0:
                if lens:
                    break
                return r, b"", []
            if r == 0:
                break
            if length > cap - len(out):
                if lens:
                    break
                return self._local(RP_ERR_SPACE, uid, length), b"", []
            addr = self.slots[uid].token
            host = self._translate(addr, buf_size)
            if host is None:
                if lens:
                    break
                return self._local(RP_ERR_BAD_ADDR, uid, addr), b"", []
            out += host[:length]
            lens.append(length)
            self._used_consume(uid)
            self.drv_add([(addr, buf_size, DESC_F_WRITE)], addr)
        if lens:
            self._used_done()
        return len(lens), bytes(out), lens

    # --- device side ------------------------------------------------------------------------------------
    def _avail_peek(self, ahead: int = 0) -> tuple[int, int]:
        aidx = self._avail_idx
        pending = (aidx - self.last_avail) & U16
        if pending > self.num:
            return self._fault(RP_ERR_AVAIL_JUMP, self.last_avail, aidx), 0
        if pending <= ahead:
            return 0, 0
        pos = (self.last_avail + ahead) & U16 & (self.num - 1)
        head = self._avail16[2 + pos]
        if head >= self.num:
            return self._fault(RP_ERR_BAD_HEAD, pos, head), 0
        return 1, head

    def _walk(self, head: int, max_descs: int | None) -> tuple[int, list[Desc], int, int]:
        d = head
        descs: list[Desc] = []
        r = w = 0
        while True:
            if len(descs) == self.num:
                return self._fault(RP_ERR_LOOP, head, len(descs)), [], 0, 0
            if max_descs is not None and len(descs) == max_descs:
                return self._local(RP_ERR_ARG, head, len(descs)), [], 0, 0
            addr, length, flags, nxt = self._desc(d)
            if flags & DESC_F_INDIRECT:
                return self._fault(RP_ERR_INDIRECT, d, flags), [], 0, 0
            if self._translate(addr, length) is None:
                return self._fault(RP_ERR_BAD_ADDR, d, addr), [], 0, 0
            descs.append((addr, length, flags, d))
            if flags & DESC_F_WRITE:
                w += length
            else:
                r += length
            if not flags & DESC_F_NEXT:
                break
            if nxt >= self.num:
                return self._fault(RP_ERR_BAD_NEXT, d, nxt), [], 0, 0
            d = nxt
        if r > U32 or w > U32:
            return self._fault(RP_ERR_USED_LEN, head, max(r, w)), [], 0, 0
        return len(descs), descs, r, w

    def _avail_consume(self) -> None:
        self.last_avail = (self.last_avail + 1) & U16
        if self.event_idx and not self.suppressed:
            self._avail_event_set(self.last_avail)

    def dev_peek(self, max_descs: int, ahead: int = 0) -> tuple[int, int, list[Desc]]:
        if self.broken:
            return RP_ERR_BROKEN, 0, []
        r, head = self._avail_peek(ahead)
        if r <= 0:
            return r, 0, []
        count, descs, _, _ = self._walk(head, max_descs)
        if count < 0:
            return count, 0, []
        return count, head, descs

    def dev_pop(self, max_descs: int) -> tuple[int, int, list[Desc]]:
        count, head, descs = self.dev_peek(max_descs)
        if count > 0:
            self._avail_consume()
        return count, head, descs

    def dev_skip(self) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        r, head = self._avail_peek()
        if r < 0:
            return r
        if r == 0:
            return self._local(RP_ERR_ARG, self.last_avail, 0)
        self._avail_consume()
        return head

    def dev_pop_many(self, max_descs: int, max_chains: int) -> tuple[int, list[tuple[int, list[Desc]]]]:
        if self.broken:
            return RP_ERR_BROKEN, []
        chains: list[tuple[int, list[Desc]]] = []
        used = 0
        while len(chains) < max_chains and used < max_descs:
            r, head = self._avail_peek()
            if r < 0:
                return (len(chains), chains) if chains else (r, [])
            if r == 0:
                break
            count, descs, _, _ = self._walk(head, max_descs - used)
            if count == RP_ERR_ARG and chains:
                break
            if count < 0:
                return (len(chains), chains) if chains else (count, [])
            chains.append((head, descs))
            used += count
            self._avail_consume()
        return len(chains), chains

    def dev_push(self, head: int, length: int) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        if head >= self.num:
            return self._local(RP_ERR_ARG, head, head)
        if (self.last_avail + self.used_base) & U16 == self.used_shadow:
            return self._local(RP_ERR_ARG, head, 0)
        pos = self.used_shadow & (self.num - 1)
        self._used32[2 * pos] = head
        self._used32[2 * pos + 1] = length
        self.used_shadow = (self.used_shadow + 1) & U16
        return RP_OK

    def dev_push_many(self, heads: Sequence[int], lens: Sequence[int]) -> int:
        for head, length in zip(heads, lens, strict=True):
            r = self.dev_push(head, length)
            if r < 0:
                return r
        return len(heads)

    def dev_publish(self) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        self._used16[1] = self.used_shadow
        full_fence()
        old, new = self.used_signalled, self.used_shadow
        self.used_signalled = new
        if new == old:
            return 0
        if self.event_idx:
            return int(need_event(self._used_event_get(), new, old))
        return int(not (self._avail16[0] & AVAIL_F_NO_INTERRUPT))

    def dev_adopt_used(self) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        if self.last_avail != 0 or self.used_shadow != self.used_base:
            return self._local(RP_ERR_ARG, self.last_avail, self.used_shadow)
        self.used_base = self.used_shadow = self.used_signalled = int(self._used16[1])
        return RP_OK

    def dev_has_avail(self) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        return int(self._avail_idx != self.last_avail)

    def dev_disable_notify(self) -> None:
        self.suppressed = True
        if self.event_idx:
            self._avail_event_set(self.last_avail - 1)
        else:
            self._used16[0] = USED_F_NO_NOTIFY

    def dev_enable_notify(self) -> int:
        self.suppressed = False
        if self.event_idx:
            self._avail_event_set(self.last_avail)
        else:
            self._used16[0] = 0
        full_fence()
        if self.broken:
            return RP_ERR_BROKEN
        return int(self._avail_idx != self.last_avail)

    def _chain_copy(
        self, head: int, count: int, to_cap: int | None, data: bytes | memoryview | None, out: bytearray
    ) -> int:
        """Mirror of chain_copy() in vring.c: re-read and re-check every descriptor while copying."""
        d = head
        done = 0
        for i in range(count):
            addr, length, flags, nxt = self._desc(d)
            writable = bool(flags & DESC_F_WRITE)
            room = (to_cap - done) if to_cap is not None else (len(data) - done)  # type: ignore[arg-type]
            if to_cap is not None and not writable and length > room:
                return self._fault(RP_ERR_USED_LEN, d, length)
            chunk = min(length, room)
            if chunk and ((to_cap is not None and not writable) or (data is not None and writable)):
                host = self._translate(addr, length)
                if host is None:
                    return self._fault(RP_ERR_BAD_ADDR, d, addr)
                if to_cap is not None:
                    out += host[:chunk]
                else:
                    host[:chunk] = data[done : done + chunk]  # type: ignore[index]
                done += chunk
            if i + 1 < count:
                if not flags & DESC_F_NEXT or nxt >= self.num:
                    return self._fault(RP_ERR_BAD_NEXT, d, nxt)
                d = nxt
        if done != (to_cap if to_cap is not None else len(data)):  # type: ignore[arg-type]
            return self._fault(RP_ERR_USED_LEN, head, done)  # shrank since it was measured
        return RP_OK

    def dev_recv_copy_into(self, out: memoryview, lens: LensOut, max_count: int) -> int:
        r, data, got = self._dev_recv_copy(len(out), max_count)
        out[: len(data)] = data
        for i, n in enumerate(got):
            lens[i] = n
        return r

    def _dev_recv_copy(self, cap: int, max_count: int) -> tuple[int, bytes, list[int]]:
        if self.broken:
            return RP_ERR_BROKEN, b"", []
        out = bytearray()
        lens: list[int] = []
        while len(lens) < max_count:
            r, head = self._avail_peek()
            if r < 0:
                return (len(lens), bytes(out), lens) if lens else (r, b"", [])
            if r == 0:
                break
            count, _, rlen, _ = self._walk(head, None)
            if count < 0:
                return (len(lens), bytes(out), lens) if lens else (count, b"", [])
            if rlen > cap - len(out):
                if lens:
                    break
                return self._local(RP_ERR_SPACE, head, rlen), b"", []
            r = self._chain_copy(head, count, rlen, None, out)
            if r < 0:
                return (len(lens), bytes(out), lens) if lens else (r, b"", [])
            lens.append(rlen)
            self._avail_consume()
            self.dev_push(head, rlen)  # the bytes read, as the C engine (OpenAMP's host reads it as capacity)
        return len(lens), bytes(out), lens

    def dev_send_copy(self, data: bytes | memoryview, lens: Sequence[int]) -> int:
        if self.broken:
            return RP_ERR_BROKEN
        k = pos = 0
        while k < len(lens):
            r, head = self._avail_peek()
            if r < 0:
                return k if k else r
            if r == 0:
                break
            count, _, _, wlen = self._walk(head, None)
            if count < 0:
                return k if k else count
            if lens[k] > wlen:
                return k if k else self._local(RP_ERR_SPACE, head, lens[k])
            r = self._chain_copy(head, count, None, data[pos : pos + lens[k]], bytearray())
            if r < 0:
                return k if k else r
            pos += lens[k]
            self._avail_consume()
            self.dev_push(head, lens[k])
            k += 1
        return k

    def close(self) -> None:
        """Release every view of shared memory, so its mapping can be closed."""
        for view in self._views:
            view.release()
        for _, _, view in self.regions:
            view.release()
        self._views = []
        self.regions = []

    def state(self) -> dict[str, object]:
        """Everything the C struct holds, for the differential tests."""
        return {
            "broken": self.broken,
            "suppressed": self.suppressed,
            "free_head": self.free_head,
            "num_free": self.num_free,
            "avail_shadow": self.avail_shadow,
            "avail_kicked": self.avail_kicked,
            "last_used": self.last_used,
            "last_avail": self.last_avail,
            "used_shadow": self.used_shadow,
            "used_signalled": self.used_signalled,
            "used_base": self.used_base,
            "err": self.err,
            "err_where": self.err_where,
            "err_value": self.err_value,
            "slots": [(s.token, s.total, s.ndesc, s.next, s.avail_pos) for s in self.slots],
            "pool": list(self.pool),
        }
