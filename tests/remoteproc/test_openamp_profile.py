"""rproc in both roles of OpenAMP's Linux-userspace demo, on its exact layout: the bytes each side leaves in the
shared file are checked against OpenAMP's numbers, then messages go both ways between the two processes."""

from __future__ import annotations

import os
import stat
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from remoteproc.platforms.openamp import CHANNEL, host_device
from transports.openamp import OpenAmpLink

REPO = Path(__file__).resolve().parents[2]


def test_rproc_host_and_remote_on_the_openamp_layout(tmp_path: Path) -> None:
    shm = f"/dev/shm/rproc-openamp-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    remote = subprocess.Popen([sys.executable, "-m", "tests.remoteproc.openamp_peer", shm, event], cwd=REPO)
    try:
        deadline = time.monotonic() + 20
        while not Path(event).exists():
            assert time.monotonic() < deadline and remote.poll() is None, "the remote did not start"
            time.sleep(0.01)
        link = OpenAmpLink("host", shm=shm, event=event)
        image = link.memory.read(0, 0x80000)
        # The remote's table: ver 1, one entry at 0x14; vdev id 7, dfeatures NS, two vrings at 0x4000 / 0x8000.
        assert struct.unpack_from("<5I", image, 0) == (1, 1, 0, 0, 0x14)
        assert struct.unpack_from("<6I4B", image, 0x14) == (3, 7, 0, 1, 0, 0, 0, 2, 0, 0)
        assert struct.unpack_from("<5I", image, 0x30) == (0x4000, 0x1000, 256, 1, 0)
        assert struct.unpack_from("<5I", image, 0x44) == (0x8000, 0x1000, 256, 2, 0)
        device = host_device(link)
        after = link.memory.read(0, 0x80000)
        assert after[0x2C] == 0x04  # status: DRIVER_OK alone, as OpenAMP's host writes it
        assert struct.unpack_from("<I", after, 0x24)[0] == 1  # gfeatures: NS
        assert struct.unpack_from("<HH", after, 0x4000 + 16 * 256) == (0, 256)  # vring 0: 256 buffers posted
        first_rx = struct.unpack_from("<Q", after, 0x4000)[0]
        assert first_rx == 0x10000  # receive buffers start the pool
        assert struct.unpack_from("<H", after, 0x8000 + 16 * 256)[0] == 1  # vring 1 avail.flags = NO_INTERRUPT
        ep = device.open(CHANNEL, timeout=20)
        assert (ep.addr, ep.peer) == (0x400, 0x400)  # endpoints 0x400 <-> 0x400, like the demo
        ep.settimeout(20)
        for size in (1, 100, 496):
            ep.send(bytes([size & 0xFF]) * size)
            assert ep.recv() == bytes([size & 0xFF]) * size
        tx_first = struct.unpack_from("<Q", link.memory.read(0x8000, 8))[0]
        assert tx_first == 0x10000 + 256 * 512  # send buffers come after the 256 receive buffers
        device.close()
        link.close()
        assert remote.wait(20) == 0
    finally:
        if remote.poll() is None:
            remote.kill()
    assert not Path(shm).exists() and not Path(event).exists()


def test_host_waits_for_a_table_written_after_the_socket_listens(tmp_path: Path) -> None:
    """The remote listens before it writes its table (a restarted one shows a zeroed file for a moment): the host
    takes the zeros for "not yet", and a table that never comes for a clear error."""
    import threading

    from remoteproc.errors import RemoteprocError
    from remoteproc.platforms.openamp import remote_device

    shm = f"/dev/shm/rproc-openamp-late-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    remote_link = OpenAmpLink("remote", shm=shm, event=event)
    remote_link.listen()  # early, as a remote that listens before its table is written
    host_link = OpenAmpLink("host", shm=shm, event=event)  # connected: the socket listens, the file is zeros
    try:
        with pytest.raises(RemoteprocError, match=r"no usable OpenAMP resource table at offset 0 within 0\.1 s"):
            host_device(host_link, timeout=0.1)
        started: list[object] = []
        t = threading.Thread(target=lambda: started.append(host_device(host_link, timeout=10)))
        t.start()
        time.sleep(0.1)
        remote = remote_device(remote_link, timeout=10)  # writes the table now, then waits for DRIVER_OK
        t.join(10)
        assert started, "the host gave up on a table written late"
        remote.close()
        started[0].close()  # type: ignore[attr-defined]
    finally:
        host_link.close()
        remote_link.close()
        Path(shm).unlink(missing_ok=True)


@pytest.mark.parametrize("first", ["host", "remote"])
def test_either_side_of_the_openamp_pair_may_start_first(first: str, tmp_path: Path) -> None:
    """The model of OpenAMP's host (it maps the file before it connects, and reads the table once, as soon as
    connect() returns) against rproc's remote, in both orders. Host first failed every time: rproc's remote
    replaced the file the host had mapped and listened before writing its table (exit 255, "Failed to set
    resource table", as OpenAMP's own host)."""
    shm = f"/dev/shm/rproc-openamp-order-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    host_cmd = [sys.executable, "-m", "tests.remoteproc.openamp_host_peer", shm, event]
    remote_cmd = [sys.executable, "-m", "tests.remoteproc.openamp_peer", shm, event]
    procs = []
    try:
        if first == "host":
            procs.append(subprocess.Popen(host_cmd, cwd=REPO, stderr=subprocess.PIPE))
            deadline = time.monotonic() + 20
            while not (Path(shm).exists() and Path(shm).stat().st_size == 0x80000):  # mapped, now connecting
                assert time.monotonic() < deadline and procs[0].poll() is None, "the host did not start"
                time.sleep(0.01)
            time.sleep(0.2)  # and retrying its connect
            procs.append(subprocess.Popen(remote_cmd, cwd=REPO))
        else:
            procs.append(subprocess.Popen(remote_cmd, cwd=REPO))
            time.sleep(0.5)  # the remote waits for a host
            procs.append(subprocess.Popen(host_cmd, cwd=REPO, stderr=subprocess.PIPE))
        host = procs[0] if first == "host" else procs[1]
        remote = procs[1] if first == "host" else procs[0]
        _, err = host.communicate(timeout=60)
        assert host.returncode == 0, err.decode(errors="replace")  # every size 1..496 echoed
        assert remote.wait(20) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        Path(shm).unlink(missing_ok=True)
    assert not Path(event).exists()


def test_the_remote_reuses_only_a_file_that_is_its_own(tmp_path: Path) -> None:
    """What a host that started first made is reused (same inode, grown to the size); a file that is not ours
    to reuse is replaced by a new owner-only one (a symlink, group/other bits, too large) or, of another uid,
    refused with its path (it is not removed)."""
    from transports import TransportError

    shm = tmp_path / "openamp.shm"
    event = str(tmp_path / "e")
    fd = os.open(shm, os.O_RDWR | os.O_CREAT, 0o600)  # a host that has created the file, not yet grown it
    os.close(fd)
    inode = shm.stat().st_ino
    link = OpenAmpLink("remote", shm=str(shm), event=event)
    assert (shm.stat().st_ino, shm.stat().st_size) == (inode, 0x80000)
    link.close()
    for name, make in (
        ("symlink", lambda: shm.symlink_to(tmp_path / "elsewhere")),
        ("others may write", lambda: (shm.write_bytes(bytes(0x80000)), shm.chmod(0o666))),
        ("too large", lambda: (shm.write_bytes(bytes(0x80001)), shm.chmod(0o600))),
    ):
        (tmp_path / "elsewhere").write_bytes(bytes(0x80000))
        make()
        old = os.open(shm, os.O_PATH | os.O_NOFOLLOW)  # held open: its inode number is not reused
        link = OpenAmpLink("remote", shm=str(shm), event=event)
        info = shm.lstat()
        assert info.st_ino != os.fstat(old).st_ino, name
        os.close(old)
        assert stat.S_ISREG(info.st_mode), name
        assert (oct(info.st_mode & 0o7777), info.st_size) == (oct(0o600), 0x80000), name
        assert (tmp_path / "elsewhere").read_bytes() == bytes(0x80000)  # a symlink's target is never written
        link.close()
        assert not shm.exists()
    if os.geteuid() == 0:
        shm.write_bytes(bytes(0x80000))
        os.chown(shm, 65534, 65534)
        with pytest.raises(TransportError, match=rf"{shm} is owned by uid 65534, not by us .*remove it"):
            OpenAmpLink("remote", shm=str(shm), event=event)
        assert shm.exists()


def test_one_way_in_open_link_then_host_device_and_remote_device(tmp_path: Path) -> None:
    """openamp:// from open_link (spy+ too) with remoteproc.platforms.openamp's host_device/remote_device is the way in;
    rpmsg's host_on/remote_on refuse it (host_on wrote rproc's layout over OpenAMP's table, the remote exited
    234; remote_on never wrote a table), and host_device/remote_device refuse a link that is not openamp://."""
    import threading

    from remoteproc.errors import RemoteprocError
    from remoteproc.platforms.openamp import remote_device
    from rpmsg import LocalProtocolError
    from rpmsg.wiring import host_on, remote_on
    from transports.url import open_link

    shm = f"/dev/shm/rproc-openamp-way-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    url = f"openamp://?shm={shm}&event={event}"
    remote_link = open_link(url, role="remote")
    try:
        for call in (remote_on, host_on):
            with pytest.raises(LocalProtocolError, match=rf"{call.__name__}: openamp:// .*host_device\(link\)"):
                call(remote_link)
        with pytest.raises(RemoteprocError, match="host_device needs the host side"):
            host_device(remote_link)
        shm_link = open_link(f"shm://rproc-openamp-way-{os.getpid()}?size=4096", role="host")
        with pytest.raises(RemoteprocError, match=r"remote_device needs an openamp:// link .*not ShmLink"):
            remote_device(shm_link)
        shm_link.close()
        assert Path(shm).read_bytes() == bytes(0x80000)  # nothing was written by the refused calls
        served: list[object] = []

        def serve() -> None:
            device = remote_device(remote_link, timeout=20)
            served.append(device)
            ep = device.endpoint(CHANNEL, addr=0x400)
            data, src = ep.recvfrom()
            ep.sendto(data, src)

        t = threading.Thread(target=serve)
        t.start()
        host_link = open_link("spy+" + url, role="host", timeout=20)
        with pytest.raises(LocalProtocolError, match="host_on: openamp://"):
            host_on(host_link)
        device = host_device(host_link, timeout=20)
        ep = device.open(CHANNEL, timeout=20)
        ep.settimeout(20)
        ep.send(b"one way in")
        assert ep.recv() == b"one way in"
        t.join(20)
        device.close()
        host_link.close()
        served[0].close()  # type: ignore[attr-defined]
    finally:
        remote_link.close()
    assert not Path(shm).exists()
