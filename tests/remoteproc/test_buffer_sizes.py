"""`rproc load` sessions with the host's rpmsg buffer sizes chosen per direction (RemoteProc(rx_size=, tx_size=),
`rproc load --rx-size/--tx-size`); Linux's 512 both ways by default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from remoteproc.boards import MPS2_AN505
from remoteproc.errors import RemoteprocError
from remoteproc.platforms.sim import SimPlatform
from remoteproc.rproc import RemoteProc
from rpmsg import HostCore, MessageTooLong


def rproc(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remoteproc", *args], capture_output=True, text=True, timeout=60)


def test_the_default_is_linux_512_both_ways(example_firmware: Path) -> None:
    with RemoteProc(SimPlatform(MPS2_AN505)) as rp:
        rp.load(example_firmware)
        assert rp.resources is not None
        placement = rp.resources.vdevs[0]
        assert (placement.rx_size, placement.tx_size) == (512, 512)
        assert placement.buffers_size == 2 * placement.buffers_per_direction * 512


def test_a_session_with_big_buffers_each_way(example_firmware: Path) -> None:
    """4 KiB to receive, 16 KiB to send: the buffer block is sized for both, the firmware's side takes the sizes
    from the descriptors, and each direction's limit is min(size - 16, 65535)."""
    with RemoteProc(SimPlatform(MPS2_AN505), rx_size=4096, tx_size=16384) as rp:
        rp.load(example_firmware)
        assert rp.resources is not None
        placement = rp.resources.vdevs[0]
        half = placement.buffers_per_direction
        assert half > 0 and placement.buffers_size == half * (4096 + 16384)
        rp.start()
        assert rp.rpmsg is not None and isinstance(rp.rpmsg.core, HostCore)
        assert (rp.rpmsg.core.rx_size, rp.rpmsg.core.tx_size) == (4096, 16384)
        ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
        ep.settimeout(10)
        payload = bytes(range(256)) * 15 + bytes(range(240))  # 4080: the reply fills a 4 KiB buffer exactly
        ep.send(payload)
        assert ep.recv() == payload
        with pytest.raises(MessageTooLong) as err:
            ep.send(bytes(16369))
        assert err.value.limit == 16368
        ep.close()
        rp.stop()


def test_buffers_the_memory_cannot_hold_are_refused_clearly(example_firmware: Path) -> None:
    """256 buffers of 64 KiB each way are 32 MiB: more than the board's 16 MiB pool, said at load."""
    want = r"rpmsg buffers, 256 x 65536 B to receive and 256 x 65536 B to send .*carveout pool"
    rp = RemoteProc(SimPlatform(MPS2_AN505), rx_size=65536, tx_size=65536)
    try:
        with pytest.raises(RemoteprocError, match=want):
            rp.load(example_firmware)
    finally:
        rp.close()


def test_fewer_buffers_make_room_for_64_kib(example_firmware: Path) -> None:
    """Linux's count (256 each way) of 64 KiB is 32 MiB; at most 128 buffers (64 each way) fit the 16 MiB pool."""
    with RemoteProc(SimPlatform(MPS2_AN505), rx_size=65536, tx_size=65536, buffers=128) as rp:
        rp.load(example_firmware)
        assert rp.resources is not None
        assert rp.resources.vdevs[0].buffers_per_direction == 64
        rp.start()
        assert rp.rpmsg is not None and isinstance(rp.rpmsg.core, HostCore)
        assert (rp.rpmsg.core.rx_count, rp.rpmsg.core.tx_count) == (64, 64)
        ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
        ep.settimeout(10)
        payload = bytes(range(256)) * 255 + bytes(range(240))  # 65,520: a 64 KiB buffer exactly
        ep.send(payload)
        assert ep.recv() == payload
        ep.close()
        rp.stop()


@pytest.mark.parametrize("buffers", [0, 1, 2.0])
def test_fewer_than_one_buffer_each_way_is_refused(buffers: int) -> None:
    platform = SimPlatform(MPS2_AN505)
    with pytest.raises(RemoteprocError, match="buffers"):
        RemoteProc(platform, buffers=buffers)
    assert not platform.path.exists()  # the platform it was given is closed, not leaked


@pytest.mark.parametrize("size", [0, 16, -1])
def test_a_buffer_without_room_after_the_header_is_refused(size: int) -> None:
    platform = SimPlatform(MPS2_AN505)
    with pytest.raises(RemoteprocError, match="rx_size"):
        RemoteProc(platform, rx_size=size)
    assert not platform.path.exists()


def test_rproc_load_refuses_a_size_without_room_in_one_line(example_firmware: Path) -> None:
    res = rproc("load", "--platform", "sim", "--tx-size", "16", str(example_firmware))
    assert res.returncode == 1
    assert (
        res.stderr.strip()
        == "rproc: error: tx_size 16: an rpmsg buffer needs more than the 16-byte header (Linux: 512)"
    )


def test_rproc_load_with_sizes(example_firmware: Path) -> None:
    text = "x" * 3000  # past Linux's 496
    res = rproc("load", "--platform", "sim", "--rx-size", "4096", "--tx-size", "0x1000", str(example_firmware),
                "--send", f"rpmsg-echo:{text}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert text in res.stdout
    big = "y" * 60000
    res = rproc("load", "--platform", "sim", "--rx-size", "0x10000", "--tx-size", "0x10000", "--buffers", "128",
                str(example_firmware), "--send", f"rpmsg-echo:{big}")  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert big in res.stdout
    res = rproc("load", "--platform", "sim", str(example_firmware), "--send", f"rpmsg-echo:{text}")
    assert res.returncode != 0
    assert "3000 bytes do not fit" in res.stderr and "496" in res.stderr
    assert "Traceback" not in res.stderr


def test_the_firmwares_buffer_carveout_is_used_when_it_holds_the_block(
    example_firmware: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The example firmware declares vdev0buffer, 1 MiB at 0x80100000: 256 x 2 KiB each way (1 MiB) go there; 256 x
    (4 + 16) KiB do not, and are placed in the pool with a warning naming both sizes."""
    with RemoteProc(SimPlatform(MPS2_AN505), rx_size=2048, tx_size=2048) as rp:
        rp.load(example_firmware)
        assert rp.resources is not None and rp.resources.vdevs[0].buffers_da == 0x80100000
    with RemoteProc(SimPlatform(MPS2_AN505), rx_size=4096, tx_size=16384) as rp:
        rp.load(example_firmware)
        assert rp.resources is not None and rp.resources.vdevs[0].buffers_da != 0x80100000
    assert "carveout 'vdev0buffer' holds 0x100000 bytes, the rpmsg buffers need 0x500000" in caplog.text
