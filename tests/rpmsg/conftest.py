"""The shared rpmsg suite runs over loop:// (remote services in a thread of this process), shm (remote services in
another process, real shared memory; socket or eventfd doorbell) and devmem (a file as physical memory, a fake
interrupt controller) — and every test of this directory twice: with the host's per-message C path
(rpmsg/fastpath.py) and with the general Python path it stands in for."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from rpmsg import Profile, RpmsgDevice, loopback_pair
from rpmsg.endpoint import Endpoint
from rpmsg.waiting import WaitMode
from rpmsg.wiring import host_on, remote_on
from tests.rpmsg.services import start_services
from tests.transports.fake_uio import FakeInterruptHardware
from transports.doorbell import c_doorbell_of
from transports.url import open_link

REPO = Path(__file__).resolve().parents[2]


@dataclass
class HostSide:
    device: RpmsgDevice
    transport: str
    kill: Callable[[], None]
    """Make the remote disappear without a goodbye: SIGKILL its process, or drop its doorbell (loop)."""


def _check_path(device: RpmsgDevice, host_path: str) -> None:
    """The parametrisation is real: the device (host or remote) uses the C path exactly when asked to, and with
    a doorbell C can kick (eventfds, socket bytes, datagrams: transports.doorbell.c_doorbell_of) then also its
    endpoints' C methods (rpmsg/csrc/endpoint*.c)."""
    assert (device._fast is not None) == (host_path == "c-path"), (host_path, device._fast)
    methods = host_path == "c-path" and c_doorbell_of(device.doorbell) is not None
    assert device._gate.open == methods, (host_path, device.core, device.doorbell)


def eventfd_pair(
    host_path: str, profile: Profile | None = None, *, wait: WaitMode = "spin"
) -> Iterator[tuple[RpmsgDevice, RpmsgDevice]]:
    """(host, remote) in this process with eventfd kicks (the doorbell the endpoints' C methods kick in C), both
    with their C methods exactly when ``host_path`` asks for them; closed afterwards. For a fixture to yield from."""
    host, remote = loopback_pair(profile, wait=wait, eventfd=True)
    assert host._gate.open == remote._gate.open == (host_path == "c-path")
    yield host, remote
    remote.close()
    host.close()


def fd_is_open(fd: int) -> bool:
    """Whether ``fd`` is a descriptor of this process now."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def count_python_methods(monkeypatch: pytest.MonkeyPatch, names: Iterable[str]) -> Counter[str]:
    """How often each of the endpoint's Python methods ``names`` runs from now on (each still runs)."""
    counts: Counter[str] = Counter()
    for name in names:
        original = getattr(Endpoint, name)

        def counted(self: Endpoint, *args: Any, _original: Any = original, _name: str = name, **kw: Any) -> Any:
            counts[_name] += 1
            return _original(self, *args, **kw)

        monkeypatch.setattr(Endpoint, name, counted)
    return counts


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@dataclass
class DevmemPair:
    """A host and a remote over ``devmem://`` on a file standing for /dev/mem, a :class:`FakeInterruptHardware`
    between them. ``host_line`` is the interrupt line the host listens on: closing it is the remote's end as a
    host on an SoC sees it. :meth:`close` closes the links and the hardware (the devices first, by the caller)."""

    host: RpmsgDevice
    remote: RpmsgDevice
    host_line: socket.socket
    hardware: FakeInterruptHardware
    _closers: list[Callable[[], None]]

    def close(self) -> None:
        for close in self._closers:
            close()


def devmem_pair(tmp: Path, profile: Profile, *, latency: float = 0.0) -> DevmemPair:
    mem = tmp / "physical"
    mem.write_bytes(bytes(profile.size + 0x1000))
    to_remote, to_host = profile.size, profile.size + 4  # the two doorbell registers
    host_hw, host_uio = socket.socketpair()
    remote_hw, remote_uio = socket.socketpair()
    hw = FakeInterruptHardware(mem, {to_remote: remote_hw, to_host: host_hw}, latency=latency)
    base = f"devmem://0x0?size={profile.size:#x}&path={mem}"
    host_link = open_link(f"{base}&uio=fd:{host_uio.fileno()}&mailbox={to_remote}", role="host")
    remote_link = open_link(f"{base}&uio=fd:{remote_uio.fileno()}&mailbox={to_host}", role="remote")

    def close_hardware() -> None:
        hw.stop.set()
        hw.thread.join()
        for s in (host_hw, host_uio, remote_hw, remote_uio):
            s.close()

    closers = [host_link.close, remote_link.close, close_hardware]
    return DevmemPair(host_on(host_link, profile), remote_on(remote_link, profile), host_hw, hw, closers)


@pytest.fixture(autouse=True, params=["c-path", "python-path"])
def host_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Which per-message path the devices made in the test use, both roles, in this process and in the remote
    processes it starts (read when a device is made)."""
    monkeypatch.setenv("RPROC_RPMSG_FASTPATH", "1" if request.param == "c-path" else "0")
    return str(request.param)


@pytest.fixture(params=["loop", "shm", "shm-memfd-eventfd", "devmem"])
def host(request: pytest.FixtureRequest, tmp_path: Path, host_path: str) -> Iterator[HostSide]:
    fds_before = _open_fds()
    if request.param == "devmem":
        pair = devmem_pair(tmp_path, Profile())
        dev, remote = pair.host, pair.remote
        start_services(remote)

        def kill() -> None:
            # The remote stops, and with it the interrupt line the host listens on: all a host sees on a SoC.
            remote.close()
            pair.host_line.close()

        side = HostSide(dev, "devmem", kill)
        _check_path(side.device, host_path)
        yield side
        dev.close()
        remote.close()
        pair.close()
        assert _open_fds() <= fds_before, "the test leaked file descriptors"
        return
    if request.param == "loop":
        dev, remote = loopback_pair()
        start_services(remote)
        _check_path(dev, host_path)
        _check_path(remote, host_path)
        yield HostSide(dev, "loop", remote.close)
        dev.close()
        remote.close()
    else:
        name = f"rproc-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.rpmsg.remote_main", name],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            anonymous = request.param == "shm-memfd-eventfd"
            p = Profile()
            how = "doorbell=eventfd&memfd=1" if anonymous else "doorbell=socket"  # "shm": bytes on the socket
            link = open_link(f"shm://{name}?size={p.size}&{how}", role="host")
            dev = host_on(link, p, timeout=20)
            if anonymous:
                assert not Path("/dev/shm", name).exists()  # the memory has no name anyone could open
        except BaseException:
            proc.kill()
            raise
        side = HostSide(dev, "shm", lambda: proc.send_signal(signal.SIGKILL))
        _check_path(side.device, host_path)
        yield side
        dev.close()
        link.close()
        try:
            _out, err = proc.communicate(timeout=10)  # also closes the pipes
        finally:
            proc.kill()
        assert "Traceback" not in err, err
        assert not Path("/dev/shm", name).exists()
    assert _open_fds() <= fds_before, "the test leaked file descriptors"
