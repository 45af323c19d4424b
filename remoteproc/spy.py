"""``rproc --spy FILE``: trace every kick and every rpmsg message of the sessions this process runs.

What it writes is what a ``spy+`` transport writes (transports/url.py: each kick out and in, with the ring
indices and flags that changed since the last one) plus one line per rpmsg message each way (the rpmsg
device's level-5 log, which also makes the device take its general path, so that no message passes
untraced). :func:`spying` turns it on for the duration of a ``with``; :class:`remoteproc.rproc.RemoteProc`
wraps each vdev's doorbell while it is on.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TextIO

from transports.doorbell import Doorbell
from transports.memory import RegionMemory
from transports.spy import RingWatch, SpyDoorbell
from virtio import VringLayout

TRACE = 5  # rpmsg.device's level for one line per message
_trace: Callable[[str], None] | None = None


class _Below(logging.Filter):
    """Keeps the level-5 lines out of handlers of the root logger that did not ask for them (no -vvv)."""

    def __init__(self, level: int) -> None:
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level or record.name != "rpmsg.device"


@contextlib.contextmanager
def spying(stream: TextIO) -> Iterator[Callable[[str], None]]:
    """Trace to ``stream`` (one line each: seconds since the start, then what happened) until the end."""
    global _trace
    lock = threading.Lock()
    start = time.monotonic()

    def trace(line: str) -> None:
        with lock:
            stream.write(f"{time.monotonic() - start:10.6f} {line}\n")
            stream.flush()

    class _Handler(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            trace(record.getMessage())

    handler = _Handler(TRACE)
    handler.addFilter(lambda record: record.levelno == TRACE)
    device_log = logging.getLogger("rpmsg.device")
    root = logging.getLogger()
    below = _Below(root.getEffectiveLevel())
    saved_level = device_log.level
    root_handlers = list(root.handlers)
    for h in root_handlers:
        h.addFilter(below)
    device_log.addHandler(handler)
    device_log.setLevel(TRACE)
    _trace = trace
    try:
        yield trace
    finally:
        _trace = None
        device_log.setLevel(saved_level)
        device_log.removeHandler(handler)
        for h in root_handlers:
            h.removeFilter(below)


def wrap(doorbell: Doorbell, memory: RegionMemory, vrings: list[VringLayout]) -> Doorbell:
    """``doorbell`` traced, with the vrings' indices and flags, while :func:`spying` is on; else itself."""
    trace = _trace
    if trace is None:
        return doorbell
    watch = RingWatch(memory, trace)
    for index, layout in enumerate(vrings):
        watch.watch_vring(f"vring{index}", layout.desc, layout.avail, layout.used, layout.num)
    watch.report_rings()
    return SpyDoorbell(doorbell, trace, watch)


def open_target(path: str) -> contextlib.AbstractContextManager[TextIO]:
    """``-``: standard error; else the file, created or truncated."""
    if path == "-":
        return contextlib.nullcontext(sys.stderr)
    return open(path, "w", encoding="utf-8")  # the caller closes it (with)
