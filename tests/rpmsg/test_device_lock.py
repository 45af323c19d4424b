"""The device's lock, rpmsg._endpoint_c.DeviceLock (rpmsg/csrc/endpoint_lock.c): threading.RLock's API and
behaviour, call for call (the same results, the same exceptions and words, across threads, under
threading.Condition, and when a signal interrupts a wait), and the endpoints' C methods taking it: the C path
when it is free or held by the calling thread, the Python method (which waits) when another thread holds it."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from rpmsg import RpmsgDevice, loopback_pair
from rpmsg._native import PyGate
from rpmsg.endpoint import Endpoint
from rpmsg.fastpath import endpoint_module
from tests.rpmsg.conftest import count_python_methods

MODULE = endpoint_module()
pytestmark = pytest.mark.skipif(MODULE is None, reason="rpmsg._endpoint_c is not built")

KINDS: dict[str, Callable[[], Any]] = {
    "RLock": threading.RLock,
    "DeviceLock": lambda: MODULE.DeviceLock(),
}


def _outcome(call: Callable[[], Any]) -> tuple[str, object]:
    """What a call returned, or its exception's type and words."""
    try:
        return ("ok", call())
    except Exception as exc:  # compared, not hidden: both kinds must raise the same
        return (type(exc).__name__, str(exc))


def _script(lock: Any) -> list[tuple[str, object]]:
    """One thread's calls, as a user (and threading.Condition) makes them."""
    calls: list[Callable[[], Any]] = [
        lock.release,
        lock._is_owned,
        lock._release_save,
        lambda: lock.acquire(),
        lambda: lock.acquire(False),
        lambda: lock.acquire(blocking=False),
        lambda: lock.acquire(True, 0.01),
        lambda: lock.acquire(timeout=0),
        lock._is_owned,
        lock.release,
        lock.release,
        lock.release,
        lock.release,
        lock._is_owned,
        lock.release,
        lambda: lock.acquire(False, 1),
        lambda: lock.acquire(timeout=-2),
        lambda: lock.acquire(timeout=-1),
        lambda: lock.acquire(blocking=1, timeout=1e300),
        lambda: lock.acquire(blocking=0),
        lambda: lock.__enter__(),
        lambda: lock.__exit__(None, None, None),
        lambda: lock.__exit__(None, None, None),
        lock.release,
        lambda: lock._acquire_restore((3, threading.get_ident())),
        lock._is_owned,
        lambda: [lock.release() for _ in range(3)],
        lock._is_owned,
    ]
    return [_outcome(c) for c in calls]


def test_one_thread_gets_what_rlock_gives() -> None:
    ours, rlock = _script(KINDS["DeviceLock"]()), _script(KINDS["RLock"]())
    # the same exception, its words CPython's own to choose: acquire(timeout=-2) (they changed across
    # versions), acquire(timeout=1e300) (RLock's come from its time conversion)
    types_only = {16: "ValueError", 18: "OverflowError"}
    for i, name in types_only.items():
        assert ours[i][0] == rlock[i][0] == name, i
    assert [o for i, o in enumerate(ours) if i not in types_only] == [
        o for i, o in enumerate(rlock) if i not in types_only
    ]


@pytest.mark.parametrize("kind", list(KINDS))
def test_bad_arguments_are_refused_as_rlock_refuses_them(kind: str) -> None:
    lock = KINDS[kind]()
    bad_calls: list[Callable[[], Any]] = [
        lambda: lock.acquire(1, 2, 3),
        lambda: lock.acquire(spam=1),
        lambda: lock.acquire(1, blocking=1),
        lambda: lock.acquire(timeout="soon"),
    ]
    for bad in bad_calls:
        with pytest.raises(TypeError):
            bad()
    assert not lock._is_owned()


def test_a_device_lock_takes_no_arguments() -> None:
    with pytest.raises(TypeError, match="takes no arguments"):
        MODULE.DeviceLock(1)


def _from_another_thread(call: Callable[[], Any]) -> object:
    out: list[object] = []
    t = threading.Thread(target=lambda: out.append(_outcome(call)))
    t.start()
    t.join(10)
    assert not t.is_alive()
    return out[0]


@pytest.mark.parametrize("kind", list(KINDS))
def test_another_thread_waits_times_out_and_cannot_release(kind: str) -> None:
    lock = KINDS[kind]()
    with lock, lock:
        assert _from_another_thread(lambda: lock.acquire(False)) == ("ok", False)
        assert _from_another_thread(lock._is_owned) == ("ok", False)
        assert _from_another_thread(lock.release) == ("RuntimeError", "cannot release un-acquired lock")
        start = time.monotonic()
        assert _from_another_thread(lambda: lock.acquire(timeout=0.1)) == ("ok", False)
        assert time.monotonic() - start >= 0.1
    # free again: another thread takes it (and its end leaves it held: nobody else can, as RLock)
    assert _from_another_thread(lambda: lock.acquire(timeout=5)) == ("ok", True)
    assert lock.acquire(False) is False
    assert _outcome(lock.release) == ("RuntimeError", "cannot release un-acquired lock")


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_waiting_thread_gets_it_when_released_and_the_gil_is_free_meanwhile(kind: str) -> None:
    lock = KINDS[kind]()
    lock.acquire()
    got: list[float] = []

    def waiter() -> None:
        lock.acquire()
        got.append(time.monotonic())
        lock.release()

    t = threading.Thread(target=waiter)
    t.start()
    spins = 0
    end = time.monotonic() + 0.2
    while time.monotonic() < end:  # Python runs while the other thread waits (it waits without the GIL)
        spins += 1
    released = time.monotonic()
    lock.release()
    t.join(10)
    assert got and got[0] >= released
    assert spins > 1000
    assert lock.acquire(False)
    lock.release()


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_condition_lets_go_of_every_level_and_restores_them(kind: str) -> None:
    lock = KINDS[kind]()
    cond = threading.Condition(lock)
    seen: list[object] = []

    def notifier() -> None:
        with cond:  # only possible if wait() let go of both levels
            seen.append(lock._is_owned())
            cond.notify()

    with lock, cond:
        t = threading.Thread(target=notifier)
        t.start()
        assert cond.wait(10)
        assert lock._is_owned()
        t.join(10)
    assert seen == [True]
    assert not lock._is_owned()
    assert _outcome(lock.release) == ("RuntimeError", "cannot release un-acquired lock")
    with pytest.raises(RuntimeError, match="un-acquired lock"):
        cond.notify()


class _Raised(Exception):
    pass


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("handler_raises", [True, False], ids=["handler-raises", "handler-returns"])
def test_a_signal_during_the_wait(kind: str, handler_raises: bool) -> None:
    """A signal handler runs while the main thread waits for the lock; if it raises, its exception ends the
    wait (the lock not taken); if it returns, the wait goes on and takes the lock once it is released."""
    lock = KINDS[kind]()
    taken = threading.Event()
    release = threading.Event()

    def holder() -> None:
        with lock:
            taken.set()
            release.wait(10)

    calls: list[float] = []

    def handler(signum: int, frame: object) -> None:
        calls.append(time.monotonic())
        if handler_raises:
            raise _Raised("from the handler")
        threading.Timer(0.1, release.set).start()

    old = signal.signal(signal.SIGALRM, handler)
    t = threading.Thread(target=holder)
    t.start()
    try:
        assert taken.wait(10)
        signal.setitimer(signal.ITIMER_REAL, 0.1)
        if handler_raises:
            with pytest.raises(_Raised):
                lock.acquire(timeout=5)
            assert not lock._is_owned()
            release.set()
        else:
            assert lock.acquire(timeout=5) is True
            assert lock._is_owned()
            lock.release()
        assert len(calls) == 1
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        release.set()
        t.join(10)


# --- the device and its endpoints' C methods ----------------------------------------------------------------
@pytest.fixture
def pair(host_path: str) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    host, remote = loopback_pair(eventfd=True)
    assert host._gate.open == (host_path == "c-path")
    yield host, remote
    remote.close()
    host.close()


@pytest.fixture
def python_sends(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    return count_python_methods(monkeypatch, ("_send_py",))


def _connect(host: RpmsgDevice, remote: RpmsgDevice) -> tuple[Endpoint, Endpoint]:
    r = remote.endpoint("svc")
    h = host.open("svc", timeout=5)
    r.settimeout(5)
    h.send(b"hello")  # the first send after open is the Python method's (it settles the channel)
    assert r.recv() == b"hello"
    return h, r


def test_every_device_has_one(pair: tuple[RpmsgDevice, RpmsgDevice]) -> None:
    for device in pair:
        assert type(device.lock) is MODULE.DeviceLock
        assert type(device._changed._lock) is MODULE.DeviceLock  # type: ignore[attr-defined]


def test_a_send_under_the_lock_its_thread_holds_leaves_it_as_it_was(
    pair: tuple[RpmsgDevice, RpmsgDevice], python_sends: Counter[str], host_path: str
) -> None:
    host, remote = pair
    h, r = _connect(host, remote)
    python_sends.clear()
    with host.lock, host.lock:
        h.send(b"under the lock")
        assert host.lock._is_owned()  # type: ignore[attr-defined]
    assert python_sends["_send_py"] == (0 if host_path == "c-path" else 1)  # the C method took it once more
    assert not host.lock._is_owned()  # type: ignore[attr-defined]

    def take_and_give_back() -> bool:
        taken = host.lock.acquire(False)
        if taken:
            host.lock.release()
        return taken

    assert _from_another_thread(take_and_give_back) == ("ok", True)  # every level let go
    assert r.recv() == b"under the lock"


def test_a_send_while_another_thread_holds_the_lock_waits_for_it(
    pair: tuple[RpmsgDevice, RpmsgDevice], python_sends: Counter[str], host_path: str
) -> None:
    """The C method never touches the rings under another thread's lock: it hands over to the Python method,
    which waits for the lock."""
    host, remote = pair
    h, r = _connect(host, remote)
    python_sends.clear()
    held = threading.Event()
    released: list[float] = []

    def holder() -> None:
        with host.lock:
            held.set()
            time.sleep(0.2)
            released.append(time.monotonic())

    t = threading.Thread(target=holder)
    t.start()
    assert held.wait(10)
    h.send(b"after the holder")
    sent = time.monotonic()
    t.join(10)
    assert python_sends["_send_py"] == 1
    assert released and sent >= released[0]
    assert r.recv() == b"after the holder"
    h.send(b"free again")
    assert python_sends["_send_py"] == (1 if host_path == "c-path" else 2)
    assert r.recv() == b"free again"


# --- owning the doorbell: the C gate's own/disown and the Python twin's (rpmsg._native.PyGate) ------------------
GATES: dict[str, Callable[[], Any]] = {"Gate": lambda: MODULE.Gate(), "PyGate": PyGate}


class _Flaky:
    """A lock whose acquire (or a notify) raises a handler's exception once, after doing its work: as an alarm's
    handler raising as the C call returns."""

    def __init__(self, lock: Any, acquire_raises: bool) -> None:
        self.lock, self.acquire_raises = lock, acquire_raises

    def acquire(self) -> bool:
        got = bool(self.lock.acquire())
        if self.acquire_raises:
            self.acquire_raises = False
            raise _HandlerRaised("from acquire")
        return got

    def __getattr__(self, name: str) -> Any:
        return getattr(self.lock, name)


class _HandlerRaised(Exception):
    pass


def _own_disown(gate: Any, lock_kind: str, acquire_raises: bool, notify_raises: bool, waiters: int) -> list[object]:
    """What own/disown do to the gate's owner and the lock, and the calls to notify_all, as a list to compare."""
    real = KINDS[lock_kind]()
    lock = _Flaky(real, acquire_raises)
    seen: list[object] = []
    notes = {"raise": notify_raises}

    def notify_all() -> None:
        seen.append("notify")
        if notes["raise"]:
            notes["raise"] = False
            raise _HandlerRaised("from notify_all")

    gate.waiters = waiters
    real.acquire()
    gate.own(lock)
    seen += [gate.owner == threading.get_ident(), real._is_owned()]
    try:
        gate.disown(lock, notify_all)
        seen.append("returned")
    except _HandlerRaised as exc:
        seen.append(f"raised {exc}")
    seen += [gate.owner, real._is_owned()]
    real.release()
    return seen


@pytest.mark.parametrize("lock_kind", list(KINDS))
@pytest.mark.parametrize("acquire_raises", [False, True], ids=["acquire-returns", "acquire-raises"])
@pytest.mark.parametrize("notify_raises", [False, True], ids=["notify-returns", "notify-raises"])
@pytest.mark.parametrize("waiters", [0, 1])
def test_both_gates_own_and_disown_alike(
    lock_kind: str, acquire_raises: bool, notify_raises: bool, waiters: int
) -> None:
    """own: the doorbell this thread's, the lock let go. disown: the lock taken back even when a handler raises as
    acquire returns, the doorbell given up, waiters notified (again, if a handler raised at the first call), then
    the first handler's exception raised."""
    got = {name: _own_disown(make(), lock_kind, acquire_raises, notify_raises, waiters) for name, make in GATES.items()}
    assert got["Gate"] == got["PyGate"]
    raised = acquire_raises or (notify_raises and waiters)
    notified = ["notify"] * (waiters * (2 if notify_raises else 1))
    first = "from acquire" if acquire_raises else "from notify_all"
    assert got["Gate"] == [True, False, *notified, f"raised {first}" if raised else "returned", None, True]


@pytest.mark.parametrize("gate_kind", list(GATES))
def test_disown_gives_up_on_a_lock_whose_calls_keep_failing(gate_kind: str) -> None:
    """Not a hang: a lock whose ``_is_owned`` always raises is tried 100 times, then its first error raised."""

    class Broken:
        calls = 0

        def release(self) -> None:
            pass

        def _is_owned(self) -> bool:
            Broken.calls += 1
            raise _HandlerRaised(f"call {Broken.calls}")

    gate = GATES[gate_kind]()
    gate.own(Broken())
    with pytest.raises(_HandlerRaised, match=r"^call 1$"):
        gate.disown(Broken(), lambda: None)
    assert Broken.calls == 100 and gate.owner is None
