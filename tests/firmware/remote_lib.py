"""The firmware's C rpmsg remote library (firmware/lib/rpmsg_remote.c with virtio/csrc/vring.c) built for this
host through cffi, so tests can drive it against rproc's Python host in one process, and under sanitizers.

RPROC_REMOTE_LIB=/path/to/module.so loads another build (the sanitizer test makes one with ASan/UBSan)."""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from cffi import FFI

REPO = Path(__file__).resolve().parents[2]
NAME = "_rproc_remote_lib"

CDEF = """
struct rp_region { uint64_t da; uint64_t size; uint8_t *host; };
struct fw_rsc_vdev { ...; };
struct rpmsg_remote { uint32_t dropped; ...; };
struct rpmsg_ept { uint32_t addr; ...; };
typedef void (*rpmsg_cb)(struct rpmsg_remote *r, struct rpmsg_ept *ept, const volatile uint8_t *data,
                         uint32_t len, uint32_t src);
int rpmsg_remote_ready(volatile const struct fw_rsc_vdev *vdev);
int rpmsg_remote_init(struct rpmsg_remote *r, volatile struct fw_rsc_vdev *vdev, const struct rp_region *region,
                      void (*kick)(void *ctx, uint32_t queue), void *kick_ctx);
int rpmsg_create_ept(struct rpmsg_remote *r, struct rpmsg_ept *ept, const char *name, uint32_t addr, rpmsg_cb cb,
                     void *priv);
int rpmsg_send(struct rpmsg_remote *r, uint32_t src, uint32_t dst, const void *data, uint32_t len);
int rpmsg_poll(struct rpmsg_remote *r);
extern "Python" void py_echo(struct rpmsg_remote *, struct rpmsg_ept *, const volatile uint8_t *, uint32_t, uint32_t);
extern "Python" void py_kick(void *, uint32_t);
"""


def builder(extra: list[str] | None = None) -> FFI:
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        NAME,
        '#include "rproc/rpmsg_remote.h"',
        sources=[str(REPO / "firmware/lib/rpmsg_remote.c"), str(REPO / "virtio/csrc/vring.c")],
        include_dirs=[str(REPO / "firmware/include"), str(REPO / "virtio/csrc")],
        extra_compile_args=["-std=c11", "-O1", "-g", *(extra or [])],
        extra_link_args=list(extra or []),
    )
    return ffi


def build(out_dir: Path, extra: list[str] | None = None) -> Path:
    builder(extra).compile(tmpdir=str(out_dir))
    return next(out_dir.glob(f"{NAME}*.so"))


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
def load() -> Any:
    path = os.environ.get("RPROC_REMOTE_LIB")
    if path:
        return load_module(NAME, path)
    return compile_and_load(builder(), NAME)
