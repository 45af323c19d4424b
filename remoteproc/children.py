"""Child processes that never outlive rproc: the sim remote, QEMU, the conformance peers.

A process that rproc starts is tied to it with Linux's parent-death signal (``prctl(PR_SET_PDEATHSIG,
SIGKILL)``, set in the child between fork and exec, kept across exec): when rproc ends in any way, SIGKILL
included, the kernel kills the child. Without it a QEMU whose host was killed went on at 94 % CPU.

Two details of prctl(2) decide how it is used:

- The signal follows the *thread* that forked, not the process: a child started from a thread that then ends
  would be killed while rproc still runs. So the tie is only made from the main thread; children started from
  other threads are ended by their owner's ``close()`` only.
- If rproc died between fork and prctl, the child would never get the signal: it checks that its parent is
  still the one that started it, and exits at once if not.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

PR_SET_PDEATHSIG = 1  # <linux/prctl.h>

_prctl: Any = None
with contextlib.suppress(OSError, AttributeError):  # not Linux: children are ended by close() only
    _prctl = ctypes.CDLL(None, use_errno=True).prctl


def die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that ties the child to this process (None where it cannot be done safely)."""
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()
    prctl = _prctl  # looked up before the fork: the child only calls it

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(127)  # the parent is gone already: do not start an orphan

    return preexec


def start(args: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(args, **kwargs)``, the child tied to this process (see the module's docstring)."""
    return subprocess.Popen(args, preexec_fn=die_with_parent(), **kwargs)


class Terminated(BaseException):
    """SIGTERM or SIGHUP arrived: raised in the main thread so that everything unwinds as after Ctrl-C, each
    ``with`` and ``finally`` ending its children and removing its files. A BaseException, like
    KeyboardInterrupt, so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"terminated by {signal.Signals(signum).name}")
        self.signum = signum


@contextlib.contextmanager
def unwind_on_signals(signums: tuple[int, ...] = (signal.SIGTERM, signal.SIGHUP)) -> Iterator[None]:
    """While inside, ``signums`` raise :class:`Terminated` (once: a second signal during the clean-up is
    ignored, so it cannot cut the clean-up short; SIGKILL still ends everything, the children with it). The
    previous handlers come back on leaving. Only the main thread can set handlers: elsewhere this does nothing."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired = False

    def handler(signum: int, frame: object) -> None:
        nonlocal fired
        if not fired:
            fired = True
            raise Terminated(signum)

    previous = {signum: signal.signal(signum, handler) for signum in signums}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)
