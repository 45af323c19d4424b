"""cffi (API mode) build of the C engine in virtio/csrc/vring.c: ``virtio._vring_cffi``.

Used by setup.py at install time, and by the sanitizer test to build an ASan/UBSan copy elsewhere. The cdef is
the header itself, minus what cffi's parser does not take (include guards and includes).
"""

from __future__ import annotations

import os
from pathlib import Path

from cffi import FFI

CSRC = Path(__file__).resolve().parent / "csrc"
MODULE = "virtio._vring_cffi"


def _cdef() -> str:
    lines = []
    for line in (CSRC / "vring.h").read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith(("#include", "#ifndef", "#endif", "#define RPROC_VRING_H")):
            continue
        lines.append(line)
    return "\n".join(lines)


def make_ffibuilder(extra_cflags: list[str] | None = None, relative: bool = True) -> FFI:
    ffibuilder = FFI()
    ffibuilder.cdef(_cdef())
    # setup.py wants paths relative to the project; the sanitizer build runs from anywhere.
    base = Path("virtio/csrc") if relative and Path("virtio/csrc/vring.c").exists() else CSRC
    ffibuilder.set_source(
        MODULE,
        '#include "vring.h"',
        sources=[str(base / "vring.c")],
        include_dirs=[str(base)],
        extra_compile_args=["-std=c11", "-O2", "-Wall", "-Wextra", *(extra_cflags or [])],
        extra_link_args=list(extra_cflags or []),
    )
    return ffibuilder


ffibuilder = make_ffibuilder(os.environ.get("RPROC_VRING_CFLAGS", "").split() or None)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
