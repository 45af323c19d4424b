"""The firmware's C rpmsg remote library (firmware/lib/rpmsg_remote.c with virtio/csrc/vring.c) built for this
host through cffi, so tests can drive it against rproc's Python host in one process, and under sanitizers.

RPROC_REMOTE_LIB=/path/to/module.so loads another build (the sanitizer test makes one with ASan/UBSan), and
RPROC_REMOTE_LIB_WIDE another build of the "wide" variant: the differential test's, with a bounce buffer as large
as the Python remote's batch buffer (64 KiB) so that both take the same chained messages."""

from __future__ import annotations

import functools
import importlib.util
import os
import struct
import sys
import tempfile
from pathlib import Path
from typing import Any

from cffi import FFI

REPO = Path(__file__).resolve().parents[2]
NAME = "_rproc_remote_lib"
VARIANTS = {"": [], "wide": ["-DRPMSG_BOUNCE_SIZE=65536u"]}

CDEF = """
struct rp_region { uint64_t da; uint64_t size; uint8_t *host; };
struct fw_rsc_vdev { ...; };
struct rp_vq { uint8_t broken; uint16_t last_avail; uint16_t used_shadow; uint16_t used_signalled; int32_t err;
              uint32_t err_where; uint64_t err_value; ...; };
struct rpmsg_remote { struct rp_vq to_host; struct rp_vq from_host; uint32_t dropped; uint8_t has_spare; ...; };
struct rpmsg_ept { uint32_t addr; void *priv; ...; };
typedef void (*rpmsg_cb)(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data,
                         uint32_t len, uint32_t src);
int rpmsg_remote_ready(volatile const struct fw_rsc_vdev *vdev);
int rpmsg_remote_init(struct rpmsg_remote *r, volatile struct fw_rsc_vdev *vdev, const struct rp_region *region,
                      void (*kick)(void *ctx, uint32_t queue), void *kick_ctx);
int rpmsg_remote_init_regions(struct rpmsg_remote *r, volatile struct fw_rsc_vdev *vdev,
                              const struct rp_region *regions, uint32_t nregions,
                              void (*kick)(void *ctx, uint32_t queue), void *kick_ctx);
int rpmsg_create_ept(struct rpmsg_remote *r, struct rpmsg_ept *ept, const char *name, uint32_t addr, rpmsg_cb cb,
                     void *priv);
int rpmsg_send(struct rpmsg_remote *r, uint32_t src, uint32_t dst, const void *data, uint32_t len);
int rpmsg_poll(struct rpmsg_remote *r);
int rpmsg_has_work(struct rpmsg_remote *r);
int rpmsg_want_buffer_wakeup(struct rpmsg_remote *r, int on);
extern "Python" void py_echo(struct rpmsg_remote *, struct rpmsg_ept *, const volatile uint8_t *, uint32_t, uint32_t);
extern "Python" void py_kick(void *, uint32_t);
extern "Python" void py_record(struct rpmsg_remote *, struct rpmsg_ept *, const volatile uint8_t *, uint32_t, uint32_t);
extern "Python" void py_kick_list(void *, uint32_t);
"""

RPMSG_OK = 0
RPMSG_ERR_NO_BUFFER = -20
RPMSG_ERR_TOO_BIG = -21
RPMSG_ERR_RING = -24
RPMSG_ERR_RESET = -25
RPMSG_ERR_BAD_BUFFER = -26
ADDR_ANY = 0xFFFFFFFF


def builder(extra: list[str] | None = None, variant: str = "") -> FFI:
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        NAME + variant,
        '#include "rproc/rpmsg_remote.h"',
        sources=[str(REPO / "firmware/lib/rpmsg_remote.c"), str(REPO / "virtio/csrc/vring.c")],
        include_dirs=[str(REPO / "firmware/include"), str(REPO / "virtio/csrc")],
        extra_compile_args=["-std=c11", "-O1", "-g", *VARIANTS[variant], *(extra or [])],
        extra_link_args=list(extra or []),
    )
    return ffi


def build(out_dir: Path, extra: list[str] | None = None, variant: str = "") -> Path:
    builder(extra, variant).compile(tmpdir=str(out_dir))
    return next(out_dir.glob(f"{NAME + variant}.*so"))


def load_module(name: str, path: str | Path) -> Any:
    """Import a compiled cffi extension module from ``path`` (a build made for one test session)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compile_and_load(ffi: FFI, name: str) -> Any:
    """Compile ``ffi`` (set_source done) in a fresh directory and import it."""
    out = Path(tempfile.mkdtemp(prefix=f"rproc-{name}-"))
    ffi.compile(tmpdir=str(out))
    return load_module(name, next(out.glob(f"{name}*.so")))


@functools.cache
def load(variant: str = "") -> Any:
    path = os.environ.get("RPROC_REMOTE_LIB" + (f"_{variant.upper()}" if variant else ""))
    mod = load_module(NAME + variant, path) if path else compile_and_load(builder(variant=variant), NAME + variant)
    ffi = mod.ffi

    # Callbacks that find their Python state through a handle (ept->priv, kick_ctx): any number of remotes.
    @ffi.def_extern()
    def py_record(r: Any, ept: Any, data: Any, length: int, src: int) -> None:
        payload = ffi.buffer(ffi.cast("uint8_t *", data), length)[:]
        ffi.from_handle(ept.priv).append((src, int(ept.addr), payload))

    @ffi.def_extern()
    def py_kick_list(ctx: Any, queue: int) -> None:
        ffi.from_handle(ctx).append(queue)

    return mod


VDEV_OFFSET = 20  # table header (16) and one offset (4)
VDEV = struct.Struct("<IIIIIIBBxx")  # type 3, id, notifyid, dfeatures, gfeatures, config_len, status, num_of_vrings
VRING = struct.Struct("<IIIII")  # da, align, num, notifyid, reserved


def write_table(memory: bytearray, vrings: list[tuple[int, int, int]], *, gfeatures: int = 1, status: int = 7) -> None:
    """A resource table at offset 0 of ``memory`` with one rpmsg vdev as the host leaves it after negotiation:
    ``vrings`` as (da, align, num), the raw values (no check: a hostile host writes anything)."""
    memory[0:16] = struct.pack("<IIII", 1, 1, 0, 0)
    memory[16:20] = struct.pack("<I", VDEV_OFFSET)
    memory[VDEV_OFFSET : VDEV_OFFSET + VDEV.size] = VDEV.pack(3, 7, 0, 1, gfeatures, 0, status, len(vrings))
    pos = VDEV_OFFSET + VDEV.size
    for i, (da, align, num) in enumerate(vrings):
        memory[pos : pos + VRING.size] = VRING.pack(da, align, num, i, 0)
        pos += VRING.size


class FirmwareRemote:
    """The C library's remote over ``memory`` (device addresses ``base`` on), the table written by write_table:
    messages delivered to its endpoints land in :attr:`received` as (src, endpoint, payload), kicks in
    :attr:`kicks`."""

    def __init__(self, memory: bytearray, base: int, variant: str = "") -> None:
        self.mod = load(variant)
        self.ffi, self.lib = self.mod.ffi, self.mod.lib
        self.memory = memory
        self.received: list[tuple[int, int, bytes]] = []
        self.kicks: list[int] = []
        self._handles = [self.ffi.new_handle(self.received), self.ffi.new_handle(self.kicks)]
        self._host = self.ffi.from_buffer("uint8_t[]", memory, require_writable=True)
        self._region = self.ffi.new("struct rp_region *", {"da": base, "size": len(memory), "host": self._host})
        self.remote = self.ffi.new("struct rpmsg_remote *")
        self._vdev = self.ffi.cast("struct fw_rsc_vdev *", self._host + VDEV_OFFSET)
        self._epts: list[Any] = []

    def init(self) -> int:
        return int(self.lib.rpmsg_remote_init(self.remote, self._vdev, self._region, self.lib.py_kick_list,
                                              self._handles[1]))  # fmt: skip

    def create_ept(self, name: bytes, addr: int = ADDR_ANY) -> tuple[int, int]:
        ept = self.ffi.new("struct rpmsg_ept *")
        self._epts.append(ept)
        rc = self.lib.rpmsg_create_ept(self.remote, ept, name, addr, self.lib.py_record, self._handles[0])
        return int(rc), int(ept.addr)

    def send(self, src: int, dst: int, payload: bytes) -> int:
        return int(self.lib.rpmsg_send(self.remote, src, dst, payload, len(payload)))

    def poll(self) -> int:
        return int(self.lib.rpmsg_poll(self.remote))

    @property
    def dropped(self) -> int:
        return int(self.remote.dropped)

    def broken(self) -> tuple[bool, bool]:
        return bool(self.remote.to_host.broken), bool(self.remote.from_host.broken)
