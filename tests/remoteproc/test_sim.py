"""The remoteproc core on the sim platform: Linux's boot order byte by byte, messages, crash and recovery."""

from __future__ import annotations

import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from remoteproc.boards import MPS2_AN505
from remoteproc.errors import RemoteprocError
from remoteproc.lifecycle import State, StateError
from remoteproc.platforms.sim import SimPlatform
from remoteproc.rproc import RemoteProc
from transports.memory import RegionMemory


@pytest.fixture
def rp() -> Iterator[RemoteProc]:
    proc = RemoteProc(SimPlatform(MPS2_AN505))
    yield proc
    proc.close()
    assert not proc.platform.path.exists()


def echo(rp: RemoteProc, payload: bytes) -> bytes:
    assert rp.rpmsg is not None
    ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
    ep.settimeout(10)
    try:
        ep.send(payload)
        return ep.recv()
    finally:
        ep.close()


def test_start_messages_crash_recover_messages(rp: RemoteProc, example_firmware: Path) -> None:
    rp.load(example_firmware)
    rp.start()
    assert rp.state is State.RUNNING
    assert echo(rp, b"first life") == b"first life"
    assert "rpmsg-echo announced" in rp.read_trace()
    assert rp.platform.process is not None
    rp.platform.process.kill()  # the remote dies on its own
    rp.platform.process.wait()
    assert rp.state is State.CRASHED
    rp.recover()
    assert rp.state is State.RUNNING
    assert echo(rp, b"second life") == b"second life"
    rp.stop()
    assert rp.state is State.OFFLINE
    assert rp.lifecycle.history == [
        State.OFFLINE,
        State.RUNNING,
        State.CRASHED,
        State.OFFLINE,
        State.RUNNING,
        State.OFFLINE,
    ]


def test_lifecycle_refuses_out_of_order(rp: RemoteProc, example_firmware: Path) -> None:
    with pytest.raises(StateError, match="load a firmware first"):
        rp.start()
    rp.load(example_firmware)
    rp.start()
    with pytest.raises(StateError, match="offline"):
        rp.start()
    with pytest.raises(StateError):
        rp.load(example_firmware)


class TableSpy(RegionMemory):
    """Records the resource table as the remote sees it after every write that touches it."""

    def __init__(self, base: RegionMemory, table_da: int, size: int) -> None:
        super().__init__(base.regions)
        self.table_da, self.size = table_da, size
        self.snapshots: list[bytes] = []

    def write(self, da: int, data: bytes | bytearray | memoryview) -> None:
        super().write(da, data)
        if da < self.table_da + self.size and da + len(data) > self.table_da:
            self.snapshots.append(self.read(self.table_da, self.size))


def test_linux_write_back_order_byte_by_byte(rp: RemoteProc, example_firmware: Path) -> None:
    rp.load(example_firmware)
    assert rp.image is not None and rp.image.resource_table is not None
    table_da, size = rp.image.resource_table.addr, rp.image.resource_table.size
    spy = TableSpy(rp.platform.memory, table_da, size)
    rp.platform.memory = spy
    rp.start()
    original = example_firmware.read_bytes()[rp.image.resource_table.offset :][:size]
    # Expected table, packed by hand from the firmware's values and Linux's rules (not by our builder).
    assert rp.resources is not None
    [vdev] = rp.resources.vdevs
    vdev_off = struct.unpack_from("<I", original, 16 + 8)[0]

    def table(status: int, gfeatures: int) -> bytes:
        t = bytearray(original)
        struct.pack_into("<I", t, vdev_off + 16, gfeatures)
        t[vdev_off + 24] = status
        for n, ring in enumerate(vdev.vrings):
            at = vdev_off + 28 + 20 * n
            struct.pack_into("<I", t, at, ring.da)  # the host's vring address
            struct.pack_into("<I", t, at + 12, n)  # notify ids from 0, the firmware's values ignored
        return bytes(t)

    expected = [
        table(0, 0),  # the cached copy, negotiated, copied over the loaded table right before start
        table(0, 0),  # virtio reset
        table(1, 0),  # ACKNOWLEDGE
        table(3, 0),  # DRIVER
        table(3, 1),  # gfeatures: VIRTIO_RPMSG_F_NS, the only feature the firmware offers
        table(7, 1),  # DRIVER_OK, after the receive buffers were posted
    ]
    assert spy.snapshots == expected
    rp.stop()
    # What Linux 6.1 leaves in device memory on stop (seen by tests/conformance/linux/test_remoteproc_linux.py):
    # reset, then ACKNOWLEDGE again (virtio_dev_remove); the vrings' da and notifyid are reset in Linux's cached
    # copy of the table only (rproc_free_vring after rproc_reset_rsc_table_on_stop), so they stay here.
    stopped = bytearray(expected[-1])
    stopped[vdev_off + 24] = 1
    assert spy.read(table_da, size) == bytes(stopped)


def test_demo_command(example_firmware: Path) -> None:
    start = time.monotonic()
    res = subprocess.run(
        [sys.executable, "-m", "remoteproc", "demo", "--rounds", "200", "--messages", "2000"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    assert "echoed every size from 1 to 496 bytes: all identical" in res.stdout
    assert "round trip, 16 bytes, 200 times: p50" in res.stdout
    assert "stopped: offline" in res.stdout
    assert time.monotonic() - start < 60


def test_remote_that_exits_is_seen_at_once_and_told_in_one_line(capfd: pytest.CaptureFixture[str]) -> None:
    """The remote dies before connecting (here: no table where it was told to look): the host says so with the
    exit status and the remote's own one-line error, without waiting out the timeout (before: 30 s here, then
    "did not come up"), no traceback shown, and its shared file removed."""
    platform = SimPlatform(MPS2_AN505)
    try:
        platform.start(0x80000000, 0x100)  # nothing was written there: version 0
        with pytest.raises(RemoteprocError) as err:
            platform.connect(timeout=30)
    finally:
        platform.close()
    message = str(err.value)
    assert message.startswith("the simulated remote exited with status 1 before it connected: sim remote: ")
    assert "ParseError: field ver, offset 0x0: version 0 is not a resource table version" in message
    assert "\n" not in message
    assert "Traceback" not in capfd.readouterr().err
    assert not platform.path.exists()


def test_failed_start_leaves_no_shared_file(rp: RemoteProc, example_firmware: Path) -> None:
    """A start that fails after the rings are set up: the host's views of the shared memory are let go, so
    close unmaps and removes its file (before: BufferError from close, the 22 MB file left; the fixture checks)."""
    rp.load(example_firmware)
    start = rp.platform.start
    rp.platform.start = lambda da, size: start(da + 4, size)  # type: ignore[method-assign]
    with pytest.raises(RemoteprocError, match="exited with status 1 before it connected: sim remote: ParseError"):
        rp.start()
    assert rp.state is State.OFFLINE


def test_rpmsg_buffer_size_comes_from_the_session(example_firmware: Path) -> None:
    """RemoteProc(rx_size=..., tx_size=...) sizes the buffer pool and the host's buffers (rproc cut 512-byte buffers
    whatever the session asked): 1 KiB buffers carry a 1,000-byte message both ways."""
    with RemoteProc(SimPlatform(MPS2_AN505), rx_size=1024, tx_size=1024) as rp:
        rp.load(example_firmware)
        assert rp.resources is not None
        [vdev] = rp.resources.vdevs
        assert vdev.buffers_size % 1024 == 0 and vdev.buffers_size // 1024 == 2 * vdev.vrings[0].num
        rp.start()
        assert rp.rpmsg is not None and rp.rpmsg.core.max_payload == 1024 - 16
        assert echo(rp, bytes(range(256)) * 3 + b"x" * 232) == bytes(range(256)) * 3 + b"x" * 232
