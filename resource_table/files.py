"""Opening a file a user named: regular files only, whole-file reads bounded.

A FIFO blocks ``open()`` until some process opens its other end and ``read()`` until it writes; ``/dev/zero``
never ends, so reading it whole runs out of memory. Firmware, raw tables, table descriptions and board files are
all regular files, so :func:`open_regular` opens without blocking (``O_NONBLOCK``: a FIFO then opens at once),
asks the open descriptor what it is (``fstat``: no window between the check and the open for a rename to use)
and refuses anything else. :func:`read_regular` also refuses a file larger than its limit before reading it:
:data:`MAX_READ` (16 MiB) for the files rproc reads whole (tables, descriptions, boards: a few KiB in practice).
Firmware images are not read whole; the loader streams them.

The errors are :class:`OSError` with ``strerror`` saying what is wrong, so every caller's existing border for
``OSError`` (which adds the path and wraps it in the caller's own error) words them too.

This module is the one place the rule lives: ``remoteproc`` opens firmware through it as well (this package
imports nothing of ours, so the rule sits at the bottom).
"""

from __future__ import annotations

import errno
import os
import stat
from typing import BinaryIO

MAX_READ = 16 << 20
"""The most bytes rproc reads of a file it reads whole (a raw table, a JSON/TOML description, a board file)."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def open_regular(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary mode, or :class:`OSError` if it is not a regular file."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise OSError(errno.EINVAL, f"{_kind(mode)}, not a regular file")
        os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_regular(path: str | os.PathLike[str], limit: int = MAX_READ) -> bytes:
    """All of ``path``, a regular file of at most ``limit`` bytes; :class:`OSError` otherwise."""
    with open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        if size > limit:
            raise OSError(errno.EFBIG, f"{size} bytes, larger than {_limit_text(limit)}")
        data = f.read(limit + 1)  # the file may have grown since fstat
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {_limit_text(limit)}")
    return data


def _limit_text(limit: int) -> str:
    mib = f" ({limit >> 20} MiB)" if limit % (1 << 20) == 0 else ""
    return f"the {limit} bytes{mib} rproc reads of such a file"
