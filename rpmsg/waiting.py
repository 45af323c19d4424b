"""How threads wait on one rpmsg device, either role (host or remote): :class:`Waiter`, one per device.

No thread is started unless needed. A thread that waits for a message drives the device itself: it processes
the rings, and when nothing is there it waits on the doorbell (``wait="block"``), spins on the rings
(``"busy"``), or spins a while and then waits (``"spin"``, the default: ~85 ns under load, nothing when idle).
One waiter at a time owns the doorbell (:attr:`Waiter.owner`); others wait on the device's condition, which the
owner signals. Only when someone asks for a pollable descriptor (:meth:`Endpoint.fileno`, or asyncio) or sets a
receive callback does the pump thread start (:meth:`Waiter.ensure_pump`), so that the descriptor becomes
readable, or the callback runs, even while nobody is receiving. A sender on asyncio waiting for a buffer is woken
by the pump through an eventfd (:meth:`Waiter.await_buffer`).

The peer's kicks for new messages are asked for only while a thread sleeps on the doorbell (:meth:`Waiter.kicks`),
never turned off while another thread sleeps there: it waits for exactly those kicks (docs/rpmsg.md, "Waking up").

Every method is called with the device's lock held (and returns with it held) unless it says otherwise. The C
methods of the endpoints (rpmsg/csrc/endpoint*.c) sleep on the same descriptors and set the owner, the gate's
``owner`` (a thread ident), in C.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from rpmsg import fastpath
from rpmsg.errors import EndpointClosed, PeerLost, RemoteProtocolError
from transports.doorbell import PeerLostError

if TYPE_CHECKING:
    from rpmsg.device import RpmsgDevice

WaitMode = Literal["block", "spin", "busy"]
SPIN_SECONDS = 50e-6
BUSY_SLICE_SECONDS = 0.001  # a busy-polling waiter looks at the doorbell (the peer's end) this often
BUFFER_POLL_SECONDS = 0.005


class Waiter:
    """Doorbell ownership, the three wait modes, the pump thread and the wake-up of async senders of one device."""

    def __init__(self, device: RpmsgDevice) -> None:
        self.device = device
        self.pump: threading.Thread | None = None
        self._next_doorbell_check = 0.0
        self._buffer_fd: int | None = None  # readable when the pump woke while async senders wait for a buffer
        self._async_senders = 0
        # Wakes the thread blocked on the doorbell when another thread took in its message, or at close.
        self.wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)

    @property
    def owner(self) -> int | None:
        """The ident (threading.get_ident) of the thread sleeping on the doorbell, if any (kept in the gate's
        ``owner``, which the C blocking receive sets in C around its sleep: no Python runs there, where a pending
        signal handler could raise mid-set)."""
        return self.device._gate.owner

    @owner.setter
    def owner(self, thread: int | None) -> None:
        self.device._gate.owner = thread

    @property
    def kicks_on(self) -> bool:
        """Whether we asked the peer to kick us for new messages (kept in the gate: the C methods change it)."""
        return bool(self.device._gate.kicks_on)

    @kicks_on.setter
    def kicks_on(self, on: bool) -> None:
        self.device._gate.kicks_on = on

    # --- the doorbell ----------------------------------------------------------------------------------------
    def owning(self, work: Callable[..., None], *args: object) -> None:
        """Run ``work(*args)`` owning the doorbell, without the lock (entered and left with the lock held); a peer found
        gone meanwhile fails the device. Other waiters wait on the condition, notified at the end.

        A signal handler runs where Python code starts or a C call returns, and one that raises ends what it
        interrupts: the gate's ``own`` (doorbell owned, lock let go) and ``disown`` (lock taken back, doorbell given
        up, waiters notified) are one C call each, and ``disown`` runs in the finally block whatever ``work`` or a
        handler raised. (A context manager's ``__exit__`` is a Python call: a handler raising at its start left the
        lock free and the doorbell owned; tests/rpmsg/test_signal_points.py.)"""
        dev = self.device
        gate, lock = dev._gate, dev._lock
        lost = None
        try:
            gate.own(lock)
            work(*args)
        except PeerLostError as exc:
            lost = exc
        finally:
            gate.disown(lock, dev._changed.notify_all)
        if lost is not None:
            self.peer_lost(lost)

    def peer_lost(self, exc: PeerLostError) -> None:
        """The peer was found gone while unlocked (the lock held again): the device fails, unless closed."""
        dev = self.device
        if not dev._closed:
            dev._fail(exc)

    def wait_changed(self, timeout: float | None) -> None:
        """Wait on the device's condition (the lock held), counted in the gate's ``waiters``: the doorbell owner
        (here or in C) notifies the condition when it leaves only while someone waits on it, which spares a
        lone receiver ~0.15 us per sleep."""
        gate = self.device._gate
        gate.waiters += 1
        try:
            self.device._changed.wait(timeout)
        finally:
            gate.waiters -= 1

    def wake_owner(self) -> None:
        """The doorbell owner sleeps in select, not on the condition: a message another thread took in may be
        its own, so wake it to look."""
        owner = self.owner
        if owner is not None and owner != threading.get_ident() and not self.device._closed:
            os.eventfd_write(self.wake_fd, 1)

    def block(self, timeout: float | None) -> None:
        """Sleep until the peer kicks, another thread wakes us, or ``timeout``; PeerLostError if the peer left
        (called without the lock)."""
        dev = self.device
        fast = dev._fast
        if fast is not None:  # the same wait in C: ppoll on both descriptors, an eventfd's kick read there
            if fast.wait(0, True, -1 if timeout is None else int(timeout * 1e9)) == fastpath.DOORBELL:
                dev.doorbell.wait(0)  # not a kick read in C: the doorbell's own check (the peer's end?)
            return
        if dev._publish is not None:
            dev._publish()  # the flag that asks the peer to kick us was just set: the peer must see it
        ready, _, _ = select.select([dev.doorbell.fileno(), self.wake_fd], [], [], timeout)
        if self.wake_fd in ready:
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self.wake_fd)
        if dev.doorbell.fileno() in ready:
            dev.doorbell.wait(0)  # consumes the kick; raises PeerLostError at end of file

    def kicks(self, on: bool) -> bool:
        """Turn the peer's kicks for new messages on or off; True if messages are already waiting. Never off
        while another thread (or the pump) sleeps on the doorbell: it waits for exactly those kicks."""
        if on == self.kicks_on:
            return False
        owner = self.owner
        if not on and (self.pump is not None or (owner is not None and owner != threading.get_ident())):
            return False
        self.kicks_on = on
        try:
            return self.device.core.notifications(on)
        except Exception:  # a broken ring shows up in process(), which reports it properly
            return True

    # --- waiting for a message or a buffer -------------------------------------------------------------------
    def wait(self, deadline: float | None, *, for_buffer: bool = False) -> None:
        """Wait for something to happen, in the device's wait mode; the caller looks at the rings again.
        ``for_buffer``: what is awaited is a send buffer coming back, not a message."""
        dev = self.device
        if dev._closed:  # by a callback run while processing: its doorbell is gone
            raise EndpointClosed("the rpmsg device is closed")
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        fast = dev._fast
        if dev.wait_mode == "busy":
            if dev._gate.kicks_on:
                self.kicks(False)  # we poll anyway: spare the peer a doorbell write per message
            # Without the lock, as `with self._unlocked` but written out: this runs once per message, where
            # that context manager's two calls cost ~0.1 us of a ~2 us round trip.
            lost = None
            lock = dev._lock
            try:
                lock.release()
                if fast is not None:
                    # Spin in C (the GIL released) until the ring has entries or a slice is over.
                    slice_s = BUSY_SLICE_SECONDS if remaining is None else min(remaining, BUSY_SLICE_SECONDS)
                    fast.wait(int(slice_s * 1e9), False, -1, watch_send=for_buffer)
                now = time.monotonic()
                if now >= self._next_doorbell_check:
                    # Busy-polling never blocks on the doorbell, so look at it now and then: it is what says
                    # that the peer is gone (and it drains the kicks we do not need).
                    self._next_doorbell_check = now + BUSY_SLICE_SECONDS
                    dev.doorbell.wait(0)
                    time.sleep(0)  # let other threads of this process run now and then
            except PeerLostError as exc:
                lost = exc
            finally:
                # The lock taken back with C calls only: a Python call's entry is where a signal handler may run,
                # and one that raised there left the lock not taken (1 in ~60 runs of the signal test, busy mode)
                try:
                    if not lock._is_owned():  # type: ignore[attr-defined]
                        lock.acquire()
                except BaseException:
                    if not lock._is_owned():  # type: ignore[attr-defined]
                        lock.acquire()
                    raise
            if lost is not None:
                self.peer_lost(lost)
            if fast is None:
                dev.process()
            return
        if self.pump is not None or self.owner is not None:
            self.wait_changed(remaining)
            return
        self.owning(self._spin_then_block, remaining, for_buffer)
        if fast is None:
            dev.process()

    def _spin_then_block(self, remaining: float | None, for_buffer: bool) -> None:
        """Wait modes spin and block, owning the doorbell without the lock (:meth:`owning`)."""
        dev = self.device
        fast = dev._fast
        if dev.wait_mode == "spin":
            with dev._lock:
                self.kicks(False)
            if fast is not None:
                spin = SPIN_SECONDS if remaining is None else min(remaining, SPIN_SECONDS)
                if fast.wait(int(spin * 1e9), False, -1, watch_send=for_buffer) == fastpath.READY:
                    return
            else:
                stop = time.perf_counter() + SPIN_SECONDS
                while time.perf_counter() < stop:
                    if dev.process():
                        return
        with dev._lock:
            if self.kicks(True):
                return  # a message arrived between the last poll and asking for kicks
        self.block(remaining)

    def wait_for_buffer(self, deadline: float | None) -> None:
        """Wait for a send buffer (host: one the remote gives back; remote: one the host posts), at most until
        ``deadline`` (then RpmsgTimeout)."""
        dev = self.device
        if deadline is not None and time.monotonic() >= deadline:
            raise dev.no_buffer("in time")
        if dev.core.want_buffer_wakeup(True):
            return  # buffers came back meanwhile
        # Bounded: RPMsg-Lite without RL_ALLOW_CONSUMED_BUFFERS_NOTIFICATION never kicks after consuming, so
        # look at the used ring again every few milliseconds instead of waiting for a kick that may not come.
        poll = time.monotonic() + BUFFER_POLL_SECONDS
        try:
            self.wait(poll if deadline is None else min(deadline, poll), for_buffer=True)
            fast = dev._fast
            if fast is not None and not (isinstance(fast, fastpath.RemoteFastPath) and fast.send_ready()):
                # The C wait only waits: take in what arrived meanwhile, which also gives the peer its buffers
                # back (a peer that reposts only once its sends are consumed, as OpenAMP's flood pinger, waits
                # for exactly that). Except a remote whose host posted a buffer meanwhile: its send goes on at
                # once and the messages stay in the ring, where the next receive takes them in C, not through
                # the Python parser and queue (issue 20: OpenAMP's host -> rproc's remote ran 57-77 % of its
                # messages that way). (The host's send keeps the intake: a host skipping it once looped.)
                dev.process()
        finally:
            dev.core.want_buffer_wakeup(False)

    # --- the pump thread and asyncio -------------------------------------------------------------------------
    def ensure_pump(self) -> None:
        """Start the pump thread (once; takes the lock itself)."""
        dev = self.device
        with dev._lock:
            if self.pump is None and not dev._closed:
                self.pump = threading.Thread(target=self._run_pump, name="rpmsg-pump", daemon=True)
                dev._update_gate()
                self.pump.start()

    def _run_pump(self) -> None:
        dev = self.device
        while True:
            with dev._lock:
                if dev._closed or dev.failure is not None:
                    return
                self.kicks(True)
            try:
                dev.process()
                self.block(0.05)
                if self._async_senders:
                    self._wake_async_senders()
            except PeerLostError as exc:
                with dev._lock:
                    dev._fail(exc)
                return
            except (PeerLost, EndpointClosed):
                return

    def _wake_async_senders(self) -> None:
        with self.device._lock:
            if self._buffer_fd is not None:
                os.eventfd_write(self._buffer_fd, 1)

    async def await_buffer(self, wait: float) -> None:
        """Let the event loop run until a send buffer may have come back: the pump thread woke (a kick, such as
        the one asked for here when the peer gives buffers back), or ``wait`` seconds passed (a peer that never
        kicks after consuming, as for a blocking send: BUFFER_POLL_SECONDS). Takes the lock itself."""
        dev = self.device
        loop = asyncio.get_running_loop()
        with dev._lock:
            dev.check()
            if self._buffer_fd is None:
                self._buffer_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
            fd = self._buffer_fd
            self._async_senders += 1
            try:
                back = dev.core.want_buffer_wakeup(True)
            except RemoteProtocolError as exc:
                self._async_senders -= 1
                raise dev._broke(exc) from exc
        try:
            if back:
                return  # buffers came back meanwhile
            self.ensure_pump()
            ready: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, set_once, ready)
            try:
                await asyncio.wait_for(ready, wait)
            except asyncio.TimeoutError:  # not TimeoutError before Python 3.11
                pass
            finally:
                loop.remove_reader(fd)
        finally:
            with dev._lock:
                self._async_senders -= 1
                if not self._async_senders and not dev._closed:
                    dev.core.want_buffer_wakeup(False)
                    if self._buffer_fd is not None:
                        with contextlib.suppress(BlockingIOError):
                            os.eventfd_read(self._buffer_fd)

    # --- closing ---------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """At the device's close (the lock held, the device marked closed): wake the thread blocked on the
        doorbell and let it leave before the descriptors go, then (without the lock) the pump thread."""
        os.eventfd_write(self.wake_fd, 1)
        deadline = time.monotonic() + 2
        while self.owner is not None and time.monotonic() < deadline:
            self.wait_changed(0.05)

    def join_pump(self) -> None:
        """Let the pump thread end (called without the lock)."""
        if self.pump is not None and self.pump is not threading.current_thread():
            self.pump.join(timeout=2)

    def close(self) -> None:
        os.close(self.wake_fd)
        if self._buffer_fd is not None:
            os.close(self._buffer_fd)
            self._buffer_fd = None


def set_once(future: asyncio.Future[None]) -> None:
    """Complete ``future`` once (an event loop reader callback)."""
    if not future.done():
        future.set_result(None)
