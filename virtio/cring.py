"""The C backend: csrc/vring.c through cffi, with the same methods and results as :class:`PyVring`.

Scratch arrays are allocated once per queue so a batch costs one cffi call, not one per message.
"""

from __future__ import annotations

import functools
from array import array
from collections.abc import MutableSequence, Sequence
from typing import Any

from virtio.pyring import Desc, Region, Used
from virtio.status import ROLE_DRIVER


def load_extension(module: str, env: str) -> Any:
    """The compiled cffi module ``module`` ("package._name_cffi"), or ImportError; the environment variable
    ``env`` = /path/to/the.so loads another build instead (the sanitizer tests build them with
    -fsanitize=address,undefined)."""
    import importlib
    import importlib.util
    import os

    path = os.environ.get(env)
    if not path:
        return importlib.import_module(module)
    spec = importlib.util.spec_from_file_location(module, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{env}={path} is not a loadable module")
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


@functools.cache
def load() -> Any:
    """The C engine's module, or ImportError (RPROC_VRING_MODULE: another build)."""
    return load_extension("virtio._vring_cffi", "RPROC_VRING_MODULE")


class CVring:
    backend = "c"

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
        mod = load()
        self._ffi = ffi = mod.ffi
        self._lib = lib = mod.lib
        self.role = role
        self.num = num
        self.index = index
        # The engine keeps raw pointers; the memoryviews kept here hold the memory (and its mapping) in place.
        # No cffi buffer object outlives this constructor: one alive at garbage collection, after its view,
        # would release a freed buffer.
        self._views = [desc, avail, used]
        self._regions = ffi.new("struct rp_region[]", max(1, len(regions)))
        for i, (da, size, view) in enumerate(regions):
            self._views.append(view)
            self._regions[i].da = da
            self._regions[i].size = size
            self._regions[i].host = ffi.from_buffer("uint8_t[]", view, require_writable=True)
        self._slots = ffi.new("struct rp_slot[]", num) if role == ROLE_DRIVER else ffi.NULL
        self._vq = ffi.new("struct rp_vq *")
        rc = lib.rp_vq_init(
            self._vq,
            role,
            num,
            index,
            ffi.from_buffer("uint8_t[]", desc, require_writable=True),
            ffi.from_buffer("uint8_t[]", avail, require_writable=True),
            ffi.from_buffer("uint8_t[]", used, require_writable=True),
            self._regions,
            len(regions),
            self._slots,
            int(event_idx),
        )
        if rc != 0:
            raise ValueError(f"vring init refused (num {num}, ring parts misaligned or not a power of two)")
        self._bufs = ffi.new("struct rp_buf[]", num)
        self._tokens = ffi.new("uint64_t[]", num)
        self._used = ffi.new("struct rp_used[]", num)
        self._descs = ffi.new("struct rp_desc[]", num)
        self._heads = ffi.new("uint16_t[]", num)
        self._counts = ffi.new("uint16_t[]", num)
        self._u32 = ffi.new("uint32_t[]", num)
        self._head = ffi.new("uint16_t *")
        self._pool = self.pool_array = ffi.new("uint64_t[]", 1)  # the pool's array: replaced by drv_pool_set
        self._npool = ffi.new("uint32_t *")

    def handles(self) -> tuple[Any, Any, Any, Any, int]:
        """(ffi, ``struct rp_vq *``, pool array, pool count, pool capacity): for C code working on this queue.
        The pool array is replaced by :meth:`drv_pool_set`; compare it to notice."""
        return self._ffi, self._vq, self._pool, self._npool, getattr(self, "_pool_cap", 0)

    def region_views(self) -> list[memoryview]:
        """The views of the memory the ring's buffers lie in (its regions), as the engine translates addresses."""
        return self._views[3:]

    def close(self) -> None:
        """Release every view of shared memory, so its mapping can be closed. The queue is unusable after."""
        ffi, vq = self._ffi, self._vq
        vq.desc = vq.avail = vq.used = ffi.NULL
        vq.regions = ffi.NULL
        vq.nregions = 0
        vq.broken = 1  # any call that slips through returns RP_ERR_BROKEN instead of touching memory
        for view in self._views:
            view.release()
        self._views = []

    # --- state ------------------------------------------------------------------------------------------
    @property
    def broken(self) -> bool:
        return bool(self._vq.broken)

    @property
    def err(self) -> int:
        return int(self._vq.err)

    @property
    def err_where(self) -> int:
        return int(self._vq.err_where)

    @property
    def err_value(self) -> int:
        return int(self._vq.err_value)

    @property
    def num_free(self) -> int:
        return int(self._vq.num_free)

    @property
    def pool(self) -> list[int]:
        return [int(self._pool[i]) for i in range(self._npool[0])]

    def state(self) -> dict[str, object]:
        vq = self._vq
        slots = []
        if self.role == ROLE_DRIVER:
            slots = [
                (int(s.token), int(s.total), int(s.ndesc), int(s.next), int(s.avail_pos))
                for s in self._slots[0 : self.num]
            ]
        return {
            "broken": bool(vq.broken),
            "suppressed": bool(vq.suppressed),
            "free_head": int(vq.free_head),
            "num_free": int(vq.num_free),
            "avail_shadow": int(vq.avail_shadow),
            "avail_kicked": int(vq.avail_kicked),
            "last_used": int(vq.last_used),
            "last_avail": int(vq.last_avail),
            "used_shadow": int(vq.used_shadow),
            "used_signalled": int(vq.used_signalled),
            "used_base": int(vq.used_base),
            "err": int(vq.err),
            "err_where": int(vq.err_where),
            "err_value": int(vq.err_value),
            "slots": slots,
            "pool": self.pool,
        }

    # --- driver side ------------------------------------------------------------------------------------
    def drv_reset(self) -> None:
        self._lib.rp_drv_reset(self._vq)

    def _fill_bufs(self, bufs: Sequence[tuple[int, int, int]]) -> Any:
        out = self._bufs if len(bufs) <= self.num else self._ffi.new("struct rp_buf[]", len(bufs))
        for i, (addr, length, flags) in enumerate(bufs):
            out[i].addr = addr
            out[i].len = length
            out[i].flags = flags
        return out

    def drv_add(self, bufs: Sequence[tuple[int, int, int]], token: int) -> int:
        return int(self._lib.rp_drv_add(self._vq, self._fill_bufs(bufs), len(bufs), token))

    def drv_add_many(self, bufs: Sequence[tuple[int, int, int]], tokens: Sequence[int]) -> int:
        if len(bufs) != len(tokens):
            raise ValueError("one token per buffer")
        cbufs = self._fill_bufs(bufs)
        ctokens = self._tokens if len(tokens) <= self.num else self._ffi.new("uint64_t[]", len(tokens))
        for i, t in enumerate(tokens):
            ctokens[i] = t
        return int(self._lib.rp_drv_add_many(self._vq, cbufs, ctokens, len(bufs)))

    def drv_publish(self) -> int:
        return int(self._lib.rp_drv_publish(self._vq))

    def drv_get_used(self, max_count: int) -> tuple[int, list[Used]]:
        rc = int(self._lib.rp_drv_get_used(self._vq, self._used, min(max_count, self.num)))
        if rc < 0:
            return rc, []
        u = self._used
        return rc, [(int(u[i].token), int(u[i].len), int(u[i].head)) for i in range(rc)]

    def drv_peek(self) -> tuple[int, Used | None]:
        rc = int(self._lib.rp_drv_peek(self._vq, self._used))
        u = self._used
        return rc, ((int(u[0].token), int(u[0].len), int(u[0].head)) if rc > 0 else None)

    def drv_skip(self) -> tuple[int, Used | None]:
        rc = int(self._lib.rp_drv_skip(self._vq, self._used))
        u = self._used
        return rc, ((int(u[0].token), int(u[0].len), int(u[0].head)) if rc > 0 else None)

    def drv_has_used(self) -> int:
        return int(self._lib.rp_drv_has_used(self._vq))

    def drv_disable_cb(self) -> None:
        self._lib.rp_drv_disable_cb(self._vq)

    def drv_enable_cb(self) -> int:
        return int(self._lib.rp_drv_enable_cb(self._vq))

    def drv_pool_set(self, addrs: Sequence[int]) -> None:
        self._pool = self.pool_array = self._ffi.new("uint64_t[]", max(1, len(addrs)))
        for i, a in enumerate(addrs):
            self._pool[i] = a
        self._npool[0] = len(addrs)
        self._pool_cap = len(addrs)

    def drv_pool_take(self) -> int | None:
        n = self._npool[0]
        if n == 0:
            return None
        self._npool[0] = n - 1
        return int(self._pool[n - 1])

    def drv_pool_put(self, addr: int) -> None:
        n = self._npool[0]
        if n >= getattr(self, "_pool_cap", 0):
            raise ValueError("the pool is full: this buffer was not taken from it")
        self._pool[n] = addr
        self._npool[0] = n + 1

    def drv_send_copy(self, data: bytes | memoryview, lens: Sequence[int], buf_size: int) -> int:
        ffi = self._ffi
        clens = ffi.from_buffer("uint32_t[]", lens) if isinstance(lens, array) else ffi.new("uint32_t[]", lens)
        cdata = ffi.from_buffer("uint8_t[]", data) if len(data) else ffi.new("uint8_t[]", 1)
        return int(self._lib.rp_drv_send_copy(self._vq, cdata, clens, len(lens), self._pool, self._npool, buf_size))

    def drv_reclaim(self, cap: int) -> int:
        cap = min(cap, getattr(self, "_pool_cap", 0))
        return int(self._lib.rp_drv_reclaim(self._vq, self._pool, self._npool, cap))

    def drv_recv_copy_into(self, out: memoryview, lens: MutableSequence[int], max_count: int, buf_size: int) -> int:
        ffi = self._ffi
        cout = ffi.from_buffer("uint8_t[]", out, require_writable=True) if len(out) else ffi.new("uint8_t[]", 1)
        clens, back = self._lens_out(lens, max_count)
        rc = int(self._lib.rp_drv_recv_copy(self._vq, cout, len(out), clens, max_count, buf_size))
        back(rc)
        return rc

    def _lens_out(self, lens: MutableSequence[int], max_count: int) -> tuple[Any, Any]:
        """A uint32 array the C call fills, and how to copy it back when ``lens`` is not already one."""
        if isinstance(lens, array) and lens.typecode == "I" and len(lens) >= max_count:
            return self._ffi.from_buffer("uint32_t[]", lens, require_writable=True), lambda rc: None
        clens = self._u32 if max_count <= self.num else self._ffi.new("uint32_t[]", max_count)

        def back(rc: int) -> None:
            for i in range(max(rc, 0)):
                lens[i] = int(clens[i])

        return clens, back

    # --- device side ------------------------------------------------------------------------------------
    def _desc_list(self, start: int, count: int) -> list[Desc]:
        d = self._descs
        return [(int(d[i].addr), int(d[i].len), int(d[i].flags), int(d[i].index)) for i in range(start, start + count)]

    def dev_pop(self, max_descs: int) -> tuple[int, int, list[Desc]]:
        rc = int(self._lib.rp_dev_pop(self._vq, self._descs, min(max_descs, self.num), self._head))
        if rc <= 0:
            return rc, 0, []
        return rc, int(self._head[0]), self._desc_list(0, rc)

    def dev_peek(self, max_descs: int, ahead: int = 0) -> tuple[int, int, list[Desc]]:
        rc = int(self._lib.rp_dev_peek(self._vq, ahead, self._descs, min(max_descs, self.num), self._head))
        if rc <= 0:
            return rc, 0, []
        return rc, int(self._head[0]), self._desc_list(0, rc)

    def dev_skip(self) -> int:
        return int(self._lib.rp_dev_skip(self._vq))

    def dev_pop_many(self, max_descs: int, max_chains: int) -> tuple[int, list[tuple[int, list[Desc]]]]:
        rc = int(
            self._lib.rp_dev_pop_many(
                self._vq, self._descs, min(max_descs, self.num), self._heads, self._counts, min(max_chains, self.num)
            )
        )
        if rc < 0:
            return rc, []
        chains = []
        pos = 0
        for i in range(rc):
            count = int(self._counts[i])
            chains.append((int(self._heads[i]), self._desc_list(pos, count)))
            pos += count
        return rc, chains

    def dev_push(self, head: int, length: int) -> int:
        return int(self._lib.rp_dev_push(self._vq, head, length))

    def dev_push_many(self, heads: Sequence[int], lens: Sequence[int]) -> int:
        n = len(heads)
        if n != len(lens):
            raise ValueError("one length per head")
        ffi = self._ffi
        return int(
            self._lib.rp_dev_push_many(
                self._vq, ffi.new("uint16_t[]", list(heads)), ffi.new("uint32_t[]", list(lens)), n
            )
        )

    def dev_publish(self) -> int:
        return int(self._lib.rp_dev_publish(self._vq))

    def dev_adopt_used(self) -> int:
        return int(self._lib.rp_dev_adopt_used(self._vq))

    def dev_has_avail(self) -> int:
        return int(self._lib.rp_dev_has_avail(self._vq))

    def dev_disable_notify(self) -> None:
        self._lib.rp_dev_disable_notify(self._vq)

    def dev_enable_notify(self) -> int:
        return int(self._lib.rp_dev_enable_notify(self._vq))

    def dev_recv_copy_into(self, out: memoryview, lens: MutableSequence[int], max_count: int) -> int:
        ffi = self._ffi
        cout = ffi.from_buffer("uint8_t[]", out, require_writable=True) if len(out) else ffi.new("uint8_t[]", 1)
        clens, back = self._lens_out(lens, max_count)
        rc = int(self._lib.rp_dev_recv_copy(self._vq, cout, len(out), clens, max_count))
        back(rc)
        return rc

    def dev_send_copy(self, data: bytes | memoryview, lens: Sequence[int]) -> int:
        ffi = self._ffi
        clens = ffi.from_buffer("uint32_t[]", lens) if isinstance(lens, array) else ffi.new("uint32_t[]", lens)
        cdata = ffi.from_buffer("uint8_t[]", data) if len(data) else ffi.new("uint8_t[]", 1)
        return int(self._lib.rp_dev_send_copy(self._vq, cdata, clens, len(lens)))
