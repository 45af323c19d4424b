"""Doorbells beyond shared memory's lend their descriptors too (transports.doorbell.Loans): devmem's UIO doorbell,
which C cannot kick, and the UART mirror's, which C kicks through its sender thread's eventfd (stop 36). The fast
path's sleep polls their ``fileno()`` by number (tests/rpmsg/test_doorbell_kinds.py covers the shared-memory kinds
C kicks and drains). Closed under a running device (its link closed first), such a doorbell fails
the device at once, with its own words, and keeps its descriptor open until the device closes: the number is not
reused meanwhile. Before, the device learnt of the close only at its next kick or wait, and the descriptor number
was free at once while the fast path could still poll it."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rpmsg import PeerLost, Profile, RpmsgDevice
from rpmsg.wiring import UART_PROFILE, host_on, remote_on
from tests.rpmsg.conftest import devmem_pair, fd_is_open
from transports.uart import FdPort, UartLink, UartWindowLink


@pytest.fixture(params=["devmem", "uart"])
def pair(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    closers: list[Callable[[], None]] = []
    if request.param == "devmem":
        devmem = devmem_pair(tmp_path, Profile())
        host, remote = devmem.host, devmem.remote
        closers.append(devmem.close)
    else:
        master, slave = os.openpty()
        a = UartLink.open(f"uart://{os.ttyname(slave)}", rto=0.03)
        b = UartLink(FdPort(master), name="master", rto=0.03)
        a.wait_connected(5)
        b.wait_connected(5)
        host = host_on(UartWindowLink(a, UART_PROFILE.size, "host"), UART_PROFILE, wait="block")
        remote = remote_on(UartWindowLink(b, UART_PROFILE.size, "remote"), UART_PROFILE, wait="block")
        closers += [a.close, b.close, lambda: os.close(master), lambda: os.close(slave)]
    yield host, remote
    for device in (host, remote):
        device.close()
    for close in closers:
        close()


def _identity(fd: int) -> tuple[int, int] | None:
    """What descriptor ``fd`` is now (device and inode), None when it is not open."""
    if not fd_is_open(fd):
        return None
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


@pytest.mark.parametrize("role", ["host", "remote"])
def test_a_doorbell_closed_under_its_device_fails_it_and_keeps_its_descriptor(
    pair: tuple[RpmsgDevice, RpmsgDevice], role: str
) -> None:
    host, remote = pair
    served = remote.endpoint("svc")
    ep = host.open("svc", timeout=10)
    served.settimeout(10)
    ep.send(b"before")
    assert served.recvfrom()[0] == b"before"
    mine, me, peer = (host, ep, served) if role == "host" else (remote, served, ep)
    bell = mine.doorbell
    number = bell.fileno()
    ident = _identity(number)
    bell.close()
    assert isinstance(mine.failure, Exception) and str(mine.failure) == "doorbell closed"  # at once, no call made
    assert _identity(number) == ident  # lent: still this doorbell's, not free for the process to reuse
    with pytest.raises(PeerLost, match="rpmsg device unusable: doorbell closed"):
        me.sendto(b"after", peer.addr)
    mine.close()
    # returned with the device's close: the number is free, or (another thread of the test's fake hardware opened
    # a file meanwhile and got it) no longer this doorbell's
    assert _identity(number) != ident
