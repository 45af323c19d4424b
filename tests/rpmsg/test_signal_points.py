"""A signal handler that raises, at every point of a waiting receive where one can run.

CPython runs a signal handler where Python code starts (a function's entry) or a C call returns, in the main
thread; one that raises (Ctrl-C's KeyboardInterrupt, an alarm's exception) ends whatever it interrupted. A real
signal lands at one such point by chance (tests/rpmsg/test_receive_c.py sends real ones); here a trace function
raises at each function entry in turn (rpmsg, transports, virtio: the Nth entry, for every N until a receive
runs to its end with none left), in every wait mode, on both per-message paths (the conftest's ``host_path``).

After each: the receive raised the handler's exception or returned its message; the device's lock is free; the
doorbell is unowned; and the device goes on (the next message is received). Before stop 33 a handler raising at
the start of a Python call that took the lock back after a wait (a context manager's ``__exit__``, ``relock``)
left the lock not taken, and the receive raised "cannot release un-acquired lock" instead of the handler's
exception; one raising at the start of the ``owner`` setter that gave the doorbell up left it owned by a thread
that no longer slept on it (Python path, spin and block: 6 points each). Now ``Gate.own``/``Gate.disown`` do each
step in one C call.

Not asserted: the message that was on its way when the handler raised. On the Python path a message the intake
took from the ring and had not yet queued on its endpoint is lost with the exception (as socket.recv's data is
lost when a handler raises as the call returns); docs/reliability.md names those points.
"""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from rpmsg import Profile, RpmsgDevice, loopback_pair
from rpmsg.waiting import WaitMode

REPO = Path(__file__).resolve().parents[2]
ROOTS = tuple(str(REPO / package) + "/" for package in ("rpmsg", "transports", "virtio"))
PROFILE = Profile(num=16, rx_count=16, tx_count=16)
MOST = 600  # entries swept in one mode (busy-polling repeats its slice's few calls: the first hundreds show all)


class _Handler(Exception):
    """What the simulated signal handler raises."""


def _one(mode: WaitMode, n: int) -> tuple[str | None, str, list[str]]:
    """A receive that waits ~2 ms for its message, with the handler raising at the ``n``th function entry: (where
    it raised, None if the receive made fewer calls; what the receive did; what is wrong with the device after)."""
    host, remote = loopback_pair(PROFILE, wait=mode, eventfd=True)
    try:
        r = remote.endpoint("svc")
        h = host.open("svc", timeout=5)
        r.settimeout(5)
        h.send(b"hello")
        assert r.recv() == b"hello"
        h.settimeout(5)
        count = 0
        where: str | None = None

        def tracer(frame: types.FrameType, event: str, arg: Any) -> None:
            nonlocal count, where
            if event == "call" and frame.f_code.co_filename.startswith(ROOTS):
                count += 1
                if count == n:
                    where = f"{Path(frame.f_code.co_filename).relative_to(REPO)}:{frame.f_code.co_name}"
                    sys.settrace(None)
                    raise _Handler
            return None

        sender = threading.Timer(0.002, r.sendto, (b"x", h.addr))
        sender.start()
        sys.settrace(tracer)
        try:
            did = "returned" if h.recv() == b"x" else "returned another message"
        except _Handler:
            did = "raised the handler's exception"
        except BaseException as exc:  # what a user would see instead of their handler's exception
            did = f"raised {type(exc).__name__}: {exc}"
        finally:
            sys.settrace(None)
            sender.join()
        return where, did, _problems(host, h, r)
    finally:
        remote.close()
        host.close()


def _problems(host: RpmsgDevice, h: Any, r: Any) -> list[str]:
    found = []
    lock = host.lock
    if lock._is_owned():  # type: ignore[attr-defined]
        found.append("the lock is still held by the receiving thread")
    elif not lock.acquire(False):
        found.append("the lock is held by another thread")
    else:
        lock.release()
    if host.waiting.owner is not None:
        found.append(f"the doorbell is still owned by {host.waiting.owner}")
    try:
        r.sendto(b"next", h.addr)
        got = [h.recv()]
        if got[0] == b"x":  # the message on its way, not lost: still delivered, first
            got.append(h.recv())
        if got[-1] != b"next":
            found.append(f"received {got} after it")
    except Exception as exc:
        found.append(f"the next message was not received: {type(exc).__name__}: {exc}")
    return found


@pytest.mark.parametrize("mode", ["block", "spin", "busy"])
def test_a_handler_raising_at_any_point_of_a_receive_leaves_the_device_usable(mode: WaitMode) -> None:
    bad = []
    points = 0
    for n in range(1, MOST + 1):
        where, did, problems = _one(mode, n)
        if where is None:
            break  # the receive ran to its end before the nth entry: every point seen
        points += 1
        if problems or not did.startswith(("returned", "raised the handler's")):
            bad.append(f"entry {n} ({where}): the receive {did}; {'; '.join(problems) or 'the device is fine'}")
    assert not bad, "\n".join(bad)
    assert points or mode != "busy", "busy-polling in Python makes calls while it waits: none was interrupted"
