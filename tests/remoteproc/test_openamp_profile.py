"""rproc in both roles of OpenAMP's Linux-userspace demo, on its exact layout: the bytes each side leaves in the
shared file are checked against OpenAMP's numbers, then messages go both ways between the two processes."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from remoteproc.openamp import CHANNEL, host_device
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
    from remoteproc.openamp import remote_device

    shm = f"/dev/shm/rproc-openamp-late-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    event = str(tmp_path / "openamp.event.0")
    remote_link = OpenAmpLink("remote", shm=shm, event=event)
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
