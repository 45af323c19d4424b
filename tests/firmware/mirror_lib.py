"""The firmware's C memory mirror (firmware/lib/mirror.c) built for this host through cffi, to hold it to its
Python twin (transports/mirror.py) and fuzz it. RPROC_MIRROR_LIB=/path/to/module.so loads another build (the
sanitizer test makes one with ASan/UBSan)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from cffi import FFI

from tests.firmware.remote_lib import REPO, compile_and_load, load_module

NAME = "_rproc_mirror_lib"

CDEF = """
struct mirror_range { uint32_t da; uint32_t size; uint8_t *shadow; };
struct mirror {
    uint8_t *window; uint32_t window_da, window_size; struct mirror_range *ranges; uint32_t nranges;
    const uint32_t *index_fields; uint32_t nindex; uint16_t chunk; uint32_t applied, sent_bytes;
};
int mirror_apply(struct mirror *m, const uint8_t *msg, size_t len);
int mirror_flush(struct mirror *m, void (*send)(const uint8_t *msg, size_t len));
extern "Python" void py_mirror_send(const uint8_t *msg, size_t len);
"""

MIRROR_ERR_MALFORMED = -2
MIRROR_ERR_RANGE = -3
MIRROR_ERR_CHUNK = -4


def builder(extra: list[str] | None = None) -> FFI:
    ffi = FFI()
    ffi.cdef(CDEF)
    ffi.set_source(
        NAME,
        '#include "rproc/mirror.h"',
        sources=[str(REPO / "firmware/lib/mirror.c")],
        include_dirs=[str(REPO / "firmware/include")],
        extra_compile_args=["-std=c11", "-O1", "-g", *(extra or [])],
        extra_link_args=list(extra or []),
    )
    return ffi


def build(out_dir: Path, extra: list[str] | None = None) -> Path:
    builder(extra).compile(tmpdir=str(out_dir))
    return next(out_dir.glob(f"{NAME}.*so"))


_sent: list[bytes] = []


@functools.cache
def load() -> Any:
    path = os.environ.get("RPROC_MIRROR_LIB")
    mod = load_module(NAME, path) if path else compile_and_load(builder(), NAME)

    @mod.ffi.def_extern()
    def py_mirror_send(msg: Any, length: int) -> None:
        _sent.append(mod.ffi.buffer(msg, length)[:])

    return mod


class CMirror:
    """The C mirror over ``window`` (device addresses ``window_da`` on): the same arguments as
    transports.mirror.Mirror (ranges as (da, size), index field addresses, the link's max payload)."""

    def __init__(self, window: bytearray, window_da: int, ranges: list[tuple[int, int]], index_fields: list[int],
                 max_payload: int = 256) -> None:  # fmt: skip
        self.mod = load()
        ffi = self.mod.ffi
        self._window = ffi.from_buffer("uint8_t[]", window, require_writable=True)
        self._shadows = [ffi.new("uint8_t[]", max(size, 1)) for _, size in ranges]
        entries = [{"da": da, "size": size, "shadow": sh} for (da, size), sh in zip(ranges, self._shadows, strict=True)]
        self._ranges = ffi.new("struct mirror_range[]", entries)
        self._index = ffi.new("uint32_t[]", index_fields or [0])
        self.m = ffi.new("struct mirror *", {"window": self._window, "window_da": window_da,
                                             "window_size": len(window), "ranges": self._ranges,
                                             "nranges": len(ranges), "index_fields": self._index,
                                             "nindex": len(index_fields), "chunk": max_payload - 5})  # fmt: skip

    def changes(self) -> list[bytes] | int:
        _sent.clear()
        rc = self.mod.lib.mirror_flush(self.m, self.mod.lib.py_mirror_send)
        out = list(_sent)
        _sent.clear()
        return out if rc == 0 else int(rc)

    def apply(self, message: bytes) -> int:
        return int(self.mod.lib.mirror_apply(self.m, message, len(message)))
