"""No lost wake-up: several threads each blocking in ``recvfrom()`` on their own endpoint all get their message.

One of them owns the doorbell and sleeps on it with the peer's kicks asked for; the others wait on the device's
condition. Before the fix a second receiver, entering while the first slept, turned the peer's kicks off again
(NO_NOTIFY / NO_INTERRUPT, as a lone receiver does while it looks at the ring): the owner then slept through every
message (issue 17). docs/rpmsg.md ("Waking up") states the rule these tests hold the code to.

- The regression tests put N receivers to sleep (one on the doorbell, N-1 on the condition), then send to them in
  several orders, both roles, with the endpoints' C methods (eventfd doorbells), the Python C path (the loop's
  socket doorbells) and, through conftest's ``host_path``, the general Python path; with and without event indices.
- The stress tests: many receiver threads and several sender threads, messages to random endpoints, every one
  checked to arrive once and in order per (sender, endpoint); in one process (both roles, every wait mode), and
  between two processes over shared memory with eventfd doorbells (``tests/rpmsg/wakeup_peer.py``).

RPROC_WAKEUP_MESSAGES scales the stress tests (default: a few seconds each); RPROC_WAKEUP_SECONDS is how long a
receiver may go without a message before the test fails with the state of the rings (default 10).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from rpmsg import Profile, RpmsgDevice, RpmsgTimeout, loopback_pair
from rpmsg.endpoint import Endpoint
from rpmsg.waiting import WaitMode
from rpmsg.wiring import host_on
from tests.rpmsg.wakeup_peer import (
    BASE,
    CONTROL,
    SENDER_BASE,
    Tally,
    ring_state,
    start_receivers,
    start_senders,
    watch,
)
from transports.url import open_link

REPO = Path(__file__).resolve().parents[2]
PROFILE = Profile(num=16, rx_count=16, tx_count=16)
MESSAGES = int(os.environ.get("RPROC_WAKEUP_MESSAGES", "10000"))
WATCHDOG = float(os.environ.get("RPROC_WAKEUP_SECONDS", "10"))


def _wait_until(what: Callable[[], bool], device: RpmsgDevice, doing: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not what():
        if time.monotonic() > deadline:
            pytest.fail(f"{doing}: not reached in {seconds} s; {ring_state(device)}")
        time.sleep(0.001)


def _asleep(device: RpmsgDevice, n: int) -> Callable[[], bool]:
    """All ``n`` receivers wait: one owns the doorbell, the others wait on the condition."""

    def check() -> bool:
        with device._lock:
            waiters = len(device._changed._waiters)  # type: ignore[attr-defined]
            return device.waiting.owner is not None and waiters == n - 1

    return check


@pytest.fixture(params=["c-methods", "c-path", "c-methods-event-idx"])
def doorbell(request: pytest.FixtureRequest, host_path: str) -> str:
    """c-methods: eventfd doorbells (the endpoints' C methods, the sleep in C); c-path: the loop's socket
    doorbells (rpmsg/device.py's C path, the sleep in Python). Under host_path "python-path" both are the general
    Python path."""
    return str(request.param)


def _pair(doorbell: str, wait: WaitMode) -> tuple[RpmsgDevice, RpmsgDevice]:
    host, remote = loopback_pair(
        PROFILE, wait=wait, eventfd=doorbell != "c-path", event_idx=doorbell.endswith("event-idx")
    )
    remote.doorbell.wait(0)  # the host's start kick: a first sleeper would wake to it at a moment of its choosing
    return host, remote


CASES = [(2, "forward"), (2, "reverse"), (2, "one-by-one"), (4, "shuffled"), (4, "one-by-one"), (8, "shuffled")]


@pytest.mark.parametrize("role", ["host", "remote"])
@pytest.mark.parametrize(("n", "order"), CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_every_blocking_receiver_gets_its_message(doorbell: str, role: str, n: int, order: str) -> None:
    host, remote = _pair(doorbell, "block")
    receiving, sending = (host, remote) if role == "host" else (remote, host)
    try:
        endpoints = [receiving.endpoint(addr=BASE + i) for i in range(n)]
        sender = sending.endpoint(addr=SENDER_BASE)
        got: dict[int, tuple[bytes, int] | BaseException] = {}

        def receive(ep: Endpoint) -> None:
            try:
                got[ep.addr] = ep.recvfrom()
            except BaseException as exc:  # reported by the test, not lost in the thread
                got[ep.addr] = exc

        threads = {ep.addr: threading.Thread(target=receive, args=(ep,), daemon=True) for ep in endpoints}
        for i, t in enumerate(threads.values()):
            t.start()
            _wait_until(_asleep(receiving, i + 1), receiving, f"receiver {i + 1} of {n} asleep")
        targets = [ep.addr for ep in endpoints]
        if order == "reverse":
            targets.reverse()
        elif order == "shuffled":
            random.Random(n).shuffle(targets)
        left = n
        for addr in targets:
            sender.sendto(b"to %#x" % addr, addr)
            if order != "one-by-one":
                continue
            # each in turn: the one served leaves, another takes the doorbell over and sleeps again
            threads[addr].join(timeout=WATCHDOG)
            if threads[addr].is_alive():
                pytest.fail(f"the receiver of {addr:#x} never woke; {ring_state(receiving)}")
            left -= 1
            if left:
                _wait_until(_asleep(receiving, left), receiving, f"{left} receivers asleep again")
        deadline = time.monotonic() + WATCHDOG
        for t in threads.values():
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        stalled = [f"{addr:#x}" for addr, t in threads.items() if t.is_alive()]
        if stalled:
            pytest.fail(f"lost wake-up: receivers {stalled} still asleep after {WATCHDOG} s; {ring_state(receiving)}")
        assert got == {addr: (b"to %#x" % addr, sender.addr) for addr in threads}
    finally:
        host.close()  # wakes any receiver still asleep (EndpointClosed) before the memory goes
        remote.close()


@pytest.mark.parametrize("role", ["host", "remote"])
def test_a_receive_that_finds_a_message_while_asking_for_kicks_leaves_no_sleeper_without_them(
    doorbell: str, role: str, host_path: str
) -> None:
    """A woken receiver turns the kicks off, looks, and asks for them again before sleeping; a message that comes
    between the look and the asking is taken at once and the kicks stay off. The device's note of them must say
    so, or the next thread to sleep on the doorbell (one that waited on the condition) believes they are on and
    sleeps through its message. The message is sent from a hook at exactly that point: the C receive reads the
    endpoint's timeout there; the Python C path calls the fast path's recv with arm 1."""
    host, remote = _pair(doorbell, "block")
    receiving, sending = (host, remote) if role == "host" else (remote, host)
    armed, injected = threading.Event(), threading.Event()
    try:
        a = receiving.endpoint(addr=BASE)
        b = receiving.endpoint(addr=BASE + 1)
        sender = sending.endpoint(addr=SENDER_BASE)

        def inject() -> None:
            if armed.is_set() and not injected.is_set():
                injected.set()
                sender.sendto(b"to a", a.addr)

        class Hooked(Endpoint):
            @property
            def _timeout(self) -> float | None:
                inject()
                value: float | None = self.__dict__.get("_timeout_value")
                return value

            @_timeout.setter
            def _timeout(self, value: float | None) -> None:
                self.__dict__["_timeout_value"] = value

        fast = receiving._fast
        if doorbell == "c-path" and fast is not None:
            original = fast.recv

            def recv(arm: int) -> int:
                if arm > 0:
                    inject()
                return original(arm)

            fast.recv = recv  # type: ignore[method-assign]
        else:
            a.__class__ = Hooked
        got: dict[int, tuple[bytes, int] | BaseException] = {}

        def receive(ep: Endpoint) -> None:
            try:
                got[ep.addr] = ep.recvfrom()
            except BaseException as exc:  # reported by the test
                got[ep.addr] = exc

        ta = threading.Thread(target=receive, args=(a,), daemon=True)
        ta.start()
        _wait_until(_asleep(receiving, 1), receiving, "a asleep")
        tb = threading.Thread(target=receive, args=(b,), daemon=True)
        tb.start()
        _wait_until(_asleep(receiving, 2), receiving, "a on the doorbell, b on the condition")
        if host_path == "c-path":
            armed.set()
            os.eventfd_write(receiving._wake_fd, 1)  # a wakes with nothing for it, looks again, asks for kicks
        else:
            sender.sendto(b"to a", a.addr)  # the general path has no such step: the same exchange, plainly
        ta.join(timeout=WATCHDOG)
        assert not ta.is_alive(), ring_state(receiving)
        assert got[a.addr] == (b"to a", sender.addr)
        _wait_until(_asleep(receiving, 1), receiving, "b asleep on the doorbell")
        sender.sendto(b"to b", b.addr)
        tb.join(timeout=WATCHDOG)
        if tb.is_alive():
            pytest.fail(f"lost wake-up: b still asleep after {WATCHDOG} s; {ring_state(receiving)}")
        assert got[b.addr] == (b"to b", sender.addr)
        assert injected.is_set() == (host_path == "c-path")
    finally:
        host.close()
        remote.close()


@pytest.mark.parametrize("role", ["host", "remote"])
def test_a_busy_poller_leaves_the_kicks_on_while_another_thread_sleeps_on_the_doorbell(
    doorbell: str, role: str
) -> None:
    """The wait mode is the device's and may change while a thread sleeps: a thread that then busy-polls turns
    the kicks off to spare the peer its doorbell writes, but not while another thread sleeps on the doorbell
    (the general path's rule too)."""
    host, remote = _pair(doorbell, "block")
    receiving, sending = (host, remote) if role == "host" else (remote, host)
    try:
        a = receiving.endpoint(addr=BASE)
        b = receiving.endpoint(addr=BASE + 1)
        sender = sending.endpoint(addr=SENDER_BASE)
        got: dict[int, tuple[bytes, int] | BaseException] = {}

        def receive(ep: Endpoint) -> None:
            try:
                got[ep.addr] = ep.recvfrom()
            except BaseException as exc:  # reported by the test
                got[ep.addr] = exc

        ta = threading.Thread(target=receive, args=(a,), daemon=True)
        ta.start()
        _wait_until(_asleep(receiving, 1), receiving, "a asleep on the doorbell")
        receiving.wait_mode = "busy"
        asked_off = threading.Event()
        kicks = receiving.waiting.kicks

        def noted(on: bool) -> bool:
            if not on:
                asked_off.set()
            return kicks(on)

        receiving.waiting.kicks = noted  # type: ignore[method-assign]
        b.settimeout(0.05)  # b busy-polls for a while and leaves with nothing: nobody else wakes a
        with pytest.raises(RpmsgTimeout):
            b.recvfrom()
        assert asked_off.is_set()
        sender.sendto(b"to a", a.addr)
        ta.join(timeout=WATCHDOG)
        if ta.is_alive():
            pytest.fail(f"lost wake-up: a still asleep after {WATCHDOG} s; {ring_state(receiving)}")
        assert got[a.addr] == (b"to a", sender.addr)
    finally:
        host.close()
        remote.close()


RECEIVERS, SENDERS = 12, 3
STRESS_CASES = [(role, wait, False) for role in ("host", "remote") for wait in ("block", "spin", "busy")]
STRESS_CASES += [(role, "block", True) for role in ("host", "remote")]


def _check_tally(tally: Tally, messages: int, ok: bool, device: RpmsgDevice, who: str) -> None:
    if not ok:
        pytest.fail(
            f"{who}: stalled after {tally.received} of {messages} messages (none for {WATCHDOG} s); "
            f"{ring_state(device)}; errors: {tally.errors[:5]}"
        )
    assert tally.errors == [], who
    assert tally.received == messages, who


@pytest.mark.parametrize(
    ("role", "wait", "event_idx"),
    STRESS_CASES,
    ids=[f"{r}-{w}" + ("-event-idx" if e else "") for r, w, e in STRESS_CASES],
)
def test_many_receivers_and_senders_lose_nothing(role: str, wait: WaitMode, event_idx: bool) -> None:
    """RECEIVERS threads receiving on one device, SENDERS threads sending to them at random from the other (eventfd
    doorbells: the endpoints' C methods, or under host_path "python-path" the general path)."""
    count = MESSAGES // 4 if wait == "busy" else MESSAGES  # busy: 15 threads spinning on two cores in CI
    host, remote = loopback_pair(PROFILE, wait=wait, eventfd=True, event_idx=event_idx)
    receiving, sending = (host, remote) if role == "host" else (remote, host)
    try:
        tally, receivers = start_receivers(receiving, RECEIVERS, SENDERS)
        send_errors: list[str] = []
        senders = start_senders(sending, RECEIVERS, SENDERS, count, len(role) + len(wait), send_errors)
        ok = watch(tally, receivers + senders, WATCHDOG)
        _check_tally(tally, count, ok, receiving, f"{role} receivers")
        assert send_errors == []
    finally:
        host.close()  # wakes any thread still waiting before the memory goes
        remote.close()


@pytest.mark.parametrize("wait", ["block", "spin"])
def test_two_processes_both_ways_lose_nothing(wait: WaitMode) -> None:
    """The host here, the remote in another process over /dev/shm with eventfd doorbells: on each side RECEIVERS
    threads blocking in recvfrom() and SENDERS threads sending to the other side's at random, both at once."""
    name = f"rproc-wakeup-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    seed = random.randrange(1 << 16)
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.rpmsg.wakeup_peer", name, wait]
        + [str(v) for v in (RECEIVERS, SENDERS, MESSAGES, seed, WATCHDOG)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        link = open_link(f"shm://{name}?size={Profile().size}&doorbell=eventfd", role="host")
        device = host_on(link, wait=wait, timeout=20)
        try:
            control = device.endpoint(addr=CONTROL - 1)
            tally, receivers = start_receivers(device, RECEIVERS, SENDERS)
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
            control.sendto(b"go", CONTROL)
            send_errors: list[str] = []
            senders = start_senders(device, RECEIVERS, SENDERS, MESSAGES, seed + 1, send_errors)
            ok = watch(tally, receivers + senders, WATCHDOG)
            if not ok:
                state = ring_state(device)  # before the remote's end changes it
                child.kill()
                out, _err = child.communicate()
                pytest.fail(
                    f"host (seed {seed}): stalled after {tally.received} of {MESSAGES} messages (none for "
                    f"{WATCHDOG} s); {state}; errors: {tally.errors[:5]}; the remote said: {out.strip()[-2000:]}"
                )
            control.sendto(b"bye", CONTROL)
            try:
                out, err = child.communicate(timeout=WATCHDOG + 30)
            except subprocess.TimeoutExpired:
                pytest.fail(f"the remote process (seed {seed}) did not finish; {ring_state(device)}")
            _check_tally(tally, MESSAGES, ok, device, f"host (seed {seed})")
            assert send_errors == []
            assert out.strip(), err
            report = json.loads(out.splitlines()[-1])
            assert report == {"received": MESSAGES, "errors": []}, (seed, report, err[-2000:])
            assert child.returncode == 0, err
        finally:
            device.close()
            link.close()
    finally:
        child.kill()
        child.communicate()
    assert not Path("/dev/shm", name).exists()
