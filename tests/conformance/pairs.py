"""rproc against rproc over every transport, as peers of the conformance catalogues (the shared suite).

:class:`RemoteOver` is a remote peer (host role): rproc's host on the transport, rproc's remote serving the echo
channel on the other end (remoteproc.conformance.peers.rproc_remote.serve), in a thread of this process or, for
shm, in a process of its own. :class:`HostOver` is a host peer (remote role): rproc's remote on the transport, and
rproc's host driving the remote-role traffic (remoteproc.conformance.peers.rproc_host.traffic) on the other end.

Transports: loop:// (this process), shm (two processes, real shared memory; named with kicks on the socket,
or anonymous (memfd) with eventfd kicks), devmem (a file standing for
/dev/mem, a fake interrupt controller: tests/rpmsg/conftest.py), uart (a pty pair: each side its own memory,
mirrored over the serial link) and vhost-user (the back-end by URL, the Python front-end sending what User-Mode
Linux sends, rproc's host core on its memory: no kernel needed).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from remoteproc.conformance.common import ECHO_CHANNEL, CountingDoorbell, NotApplicable
from remoteproc.conformance.host_role import HostContext
from remoteproc.conformance.peers import RprocHostPeer, RprocRemotePeer
from remoteproc.conformance.peers.rproc_host import traffic
from remoteproc.conformance.peers.rproc_remote import serve as serve_echo
from remoteproc.conformance.remote_role import HostRun
from rpmsg import HostCore, Profile, RemoteCore, RpmsgDevice, RpmsgError, host_on, loopback_pair, remote_on
from tests.rpmsg.conftest import devmem_pair
from tests.transports.test_vhost_user import LINUX_RPMSG_DRIVER
from tests.transports.vhost_user_frontend import GUEST_BASE, Frontend
from transports import vhost_user_messages as vu
from transports.uart import FdPort, UartLink, UartWindowLink
from transports.url import open_link

TRANSPORTS = ("loop", "shm", "shm-memfd-eventfd", "devmem", "uart", "vhost-user")
KIB = 1024

Closer = Callable[[], None]


def _uart_profile(p: Profile) -> Profile:
    """The serial link mirrors every ring write: rings of 16, as rpmsg.wiring.UART_PROFILE."""
    return Profile(num=16, rx_count=16, tx_count=16, rx_size=p.rx_size, tx_size=p.tx_size)


@dataclasses.dataclass
class _Parts:
    """The host device, how to make the remote device, what closes the transport's other parts, and what waits
    until every kick written has reached its receiver (None: a kick written is there at once)."""

    host: RpmsgDevice
    make_remote: Callable[[], RpmsgDevice]
    closers: list[Closer]
    settle_kicks: Closer | None = None


def _pair(transport: str, p: Profile, tmp: Path, interrupt_latency: float = 0.0) -> _Parts:
    """A pair on one of the in-process transports. The remote is made in the caller's thread of choice
    (vhost-user's is made while the front-end starts the device); ``interrupt_latency``: devmem's interrupt
    controller delays each interrupt by that long."""
    closers: list[Closer] = []
    if transport == "loop":
        host, remote = loopback_pair(p)
        return _Parts(host, lambda: remote, closers)
    if transport == "devmem":
        pair = devmem_pair(tmp, p, latency=interrupt_latency)
        closers.append(pair.close)
        # The remote's end on a SoC: it stops, and with it the interrupt line the host listens on.
        closers.insert(0, pair.host_line.close)
        return _Parts(pair.host, lambda: pair.remote, closers, pair.hardware.settle)
    if transport == "uart":
        master, slave = os.openpty()
        a = UartLink.open(f"uart://{os.ttyname(slave)}", rto=0.03)
        b = UartLink(FdPort(master), name="master", rto=0.03)
        a.wait_connected(5)
        b.wait_connected(5)
        host = host_on(UartWindowLink(a, p.size, "host"), p, wait="spin")
        remote = remote_on(UartWindowLink(b, p.size, "remote"), p, wait="spin")

        def close_uart() -> None:
            a.close()
            os.close(master)
            os.close(slave)

        closers += [b.close, close_uart]
        return _Parts(host, lambda: remote, closers)
    if transport == "vhost-user":
        path = tmp / "rpmsg.sock"
        link = open_link(f"vhost-user://{path}", role="remote")
        guest = dataclasses.replace(p, base=GUEST_BASE)  # the guest's driver lays out the rings in its memory
        front = Frontend.connect(str(path), size=max(guest.size, 0x100000), profile=guest)
        made: dict[str, object] = {}
        starter = threading.Thread(target=lambda: made.setdefault("remote", remote_on(link, timeout=10)))
        starter.start()
        front.negotiate(LINUX_RPMSG_DRIVER | (1 << vu.F_PROTOCOL_FEATURES))
        front.set_mem_table()
        front.setup_vrings()
        core, bell = front.start_host()
        host = RpmsgDevice(core, bell)
        host.start()  # the start kick on vring 0
        starter.join(10)

        def remote_device() -> RpmsgDevice:
            device = made.get("remote")
            assert isinstance(device, RpmsgDevice), "the vhost-user back-end did not start"
            return device

        closers += [link.close, front.close]
        return _Parts(host, remote_device, closers)
    raise ValueError(transport)


# Where a remote's death cannot reach rproc's host, so peer-death is n/a (and why).
DEATH_UNSEEN = {
    "uart": "a serial line has no hang-up and the link retransmits without end: a silent remote is not reported "
    "(docs/uart-link.md)",
    "vhost-user": "the test's front-end learns of events through the kick and call eventfds only, not the "
    "vhost-user socket that tells a guest of the back-end's end (User-Mode Linux's virtio_uml watches it)",
}


class _ThreadLifecycle:
    """A peer in a thread of this process: killed by closing its device (and what a SoC's remote takes with it)."""

    def __init__(self, transport: str, remote: RpmsgDevice, thread: threading.Thread, on_kill: list[Closer]) -> None:
        self.transport, self.remote, self.thread, self.on_kill = transport, remote, thread, on_kill
        self.failed: list[BaseException] = []

    def kill(self) -> None:
        if self.transport in DEATH_UNSEEN:
            raise NotApplicable(DEATH_UNSEEN[self.transport])
        self.remote.close()
        for close in self.on_kill:
            close()

    def exit_code(self, timeout: float) -> int | None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            return None
        return 1 if self.failed else 0

    def reap(self) -> None:
        self.remote.close()
        self.thread.join(10)
        assert not self.thread.is_alive(), "the remote's thread did not end"


class RemoteOver:
    """rproc's remote on ``transport`` as a remote peer (host role), with the host's buffers of ``profile``."""

    def __init__(self, transport: str, tmp: Path, profile: Profile | None = None) -> None:
        self.transport, self.tmp = transport, tmp
        self.profile = profile or Profile()
        if transport == "uart":
            self.profile = _uart_profile(self.profile)
        self.description = f"rproc remote over {transport}"
        self.starts = 0

    def start(self, timeout: float) -> HostContext:
        if self.transport.startswith("shm"):
            anonymous = self.transport == "shm-memfd-eventfd"  # "shm": named memory, kicks on the socket
            return RprocRemotePeer(profile=self.profile, memfd=anonymous, eventfd=anonymous).start(timeout)
        self.starts += 1
        tmp = self.tmp / f"start{self.starts}"
        tmp.mkdir()
        parts = _pair(self.transport, self.profile, tmp)
        host, remote, closers = parts.host, parts.make_remote(), parts.closers
        on_kill = closers[:1] if self.transport == "devmem" else []
        lifecycle: _ThreadLifecycle

        def run() -> None:
            try:
                serve_echo(remote, "")
            except BaseException as exc:  # the lifecycle reports it as a status of 1
                lifecycle.failed.append(exc)

        thread = threading.Thread(target=run, name=f"rproc remote over {self.transport}", daemon=True)
        lifecycle = _ThreadLifecycle(self.transport, remote, thread, on_kill)
        thread.start()
        host.doorbell = CountingDoorbell(host.doorbell)
        return HostContext(host, ECHO_CHANNEL, lifecycle, timeout=timeout, closers=[remote.close, *closers])


class _ThreadRun:
    """A host in a thread of this process driving the remote-role traffic; its status: 0, or 1 if it failed."""

    def __init__(
        self,
        transport: str,
        remote: RpmsgDevice,
        host: RpmsgDevice,
        total: int,
        closers: list[Closer],
        sizes: Sequence[int] | None = None,
    ):
        self.description = f"rproc host over {transport}"
        self.device = remote
        self.table: tuple[int, int, int] | None = None
        self.channel, self.channel_addr = ECHO_CHANNEL, 0x400
        self.host, self.closers = host, closers
        self.settle_kicks: Callable[[], None] | None = None  # what the kick ledger waits on (session.py)
        self.failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._drive, args=(total, sizes), name=self.description, daemon=True)
        self.thread.start()

    def _drive(self, total: int, sizes: Sequence[int] | None) -> None:
        try:
            traffic(self.host, "", 5.0, total, sizes)
        except (RpmsgError, AssertionError) as exc:
            self.failure.append(exc)
        finally:
            self.host.close()

    def exit_code(self, timeout: float) -> int | None:
        self.thread.join(timeout)
        if self.thread.is_alive():
            return None
        return 1 if self.failure else 0

    def close(self) -> None:
        self.host.close()
        self.thread.join(10)
        self.device.close()
        for close in self.closers:
            with contextlib.suppress(OSError):
                close()


def _seen_started(remote: RpmsgDevice, host: RpmsgDevice, timeout: float) -> None:
    """Wait until the remote sees every receive buffer the host posted at its start (over uart its copy of the
    memory follows the host's a little later): what the remote role observes first."""
    core, posted = remote.core, host.core
    assert isinstance(core, RemoteCore) and isinstance(posted, HostCore)
    avail_idx = core.to_host.layout.avail + 2
    deadline = time.monotonic() + timeout
    while int.from_bytes(core.memory.read(avail_idx, 2), "little") < posted.rx_count:
        assert time.monotonic() < deadline, f"the remote did not see the host's {posted.rx_count} receive buffers"
        time.sleep(0.005)


class HostOver:
    """rproc's host on ``transport`` as a host peer (remote role), sending ``total`` small messages after the
    sizes and the burst (70,000: the 16-bit indices wrap). ``interrupt_latency``: devmem's interrupt controller
    delays each interrupt by that long."""

    def __init__(
        self,
        transport: str,
        tmp: Path,
        profile: Profile | None = None,
        total: int = 70_000,
        sizes: Sequence[int] | None = None,
        interrupt_latency: float = 0.0,
    ) -> None:
        self.transport, self.tmp, self.total, self.sizes = transport, tmp, total, sizes
        self.interrupt_latency = interrupt_latency
        self.profile = profile or Profile()
        if transport == "uart":
            self.profile = _uart_profile(self.profile)
        self.description = f"rproc host over {transport}"

    def start(self, timeout: float) -> HostRun:
        if self.transport.startswith("shm"):
            return RprocHostPeer(profile=self.profile).start(timeout)  # named memory, eventfd kicks
        parts = _pair(self.transport, self.profile, self.tmp, self.interrupt_latency)
        host, remote = parts.host, parts.make_remote()
        _seen_started(remote, host, timeout)
        remote.doorbell = CountingDoorbell(remote.doorbell)
        run = _ThreadRun(self.transport, remote, host, self.total, parts.closers, self.sizes)
        run.settle_kicks = parts.settle_kicks
        return run
