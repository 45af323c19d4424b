"""cffi (API mode) build of rpmsg/csrc/fastpath.c and fastpath_remote.c, the per-message path in C of both roles:
``rpmsg._fastpath_cffi``.

It compiles its own copy of virtio/csrc/vring.c (extension modules do not share symbols) and works on the
``struct rp_vq`` of the virtio module's queues, passed by address.
"""

from __future__ import annotations

import os
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
VRING = HERE.parent / "virtio" / "csrc"
MODULE = "rpmsg._fastpath_cffi"


def _cdef() -> str:
    vring = [
        line
        for line in (VRING / "vring.h").read_text().splitlines()
        if not line.strip().startswith(("#include", "#ifndef", "#endif", "#define RPROC_VRING_H"))
    ]
    fast = [
        line
        for line in (HERE / "csrc" / "fastpath.h").read_text().splitlines()
        if not line.strip().startswith(("#include", "#ifndef", "#endif", "#define RPROC_RPMSG_FASTPATH_H"))
    ]
    return "\n".join(vring + fast)


def make_ffibuilder(extra_cflags: list[str] | None = None, relative: bool = True) -> FFI:
    ffibuilder = FFI()
    ffibuilder.cdef(_cdef())
    here, vring = (
        (Path("rpmsg/csrc"), Path("virtio/csrc"))
        if relative and Path("rpmsg/csrc").exists()
        else (
            HERE / "csrc",
            VRING,
        )
    )
    ffibuilder.set_source(
        MODULE,
        '#include "fastpath.h"',
        sources=[str(here / "fastpath.c"), str(here / "fastpath_remote.c"), str(vring / "vring.c")],
        include_dirs=[str(here), str(vring)],
        extra_compile_args=["-std=gnu11", "-O2", "-Wall", "-Wextra", *(extra_cflags or [])],
        extra_link_args=list(extra_cflags or []),
    )
    return ffibuilder


ffibuilder = make_ffibuilder(os.environ.get("RPROC_VRING_CFLAGS", "").split() or None)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
