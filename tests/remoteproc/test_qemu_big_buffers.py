"""Big rpmsg buffers with the firmware's C library on QEMU's emulated Cortex-M33 (firmware/examples/services):
the host chooses the sizes per direction (RemoteProc(rx_size=, tx_size=, buffers=)), the firmware takes them from
the descriptors, and each side holds min(buffer - 16, 65535)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from remoteproc.platforms.qemu import QemuPlatform
from remoteproc.rproc import RemoteProc
from rpmsg import HostCore, MessageTooLong
from rpmsg.protocol import HEADER_SIZE, MAX_PAYLOAD


def limit(size: int) -> int:
    return min(size - HEADER_SIZE, MAX_PAYLOAD)


def pattern(n: int, seed: int) -> bytes:
    return bytes((seed + i * 7) & 0xFF for i in range(n))


@pytest.mark.parametrize(
    ("rx_size", "tx_size", "buffers"),
    [
        (4096, 16384, 512),  # Linux's count: 256 each way
        (65536, 65536 + HEADER_SIZE, 128),  # 64 each way, so that they fit the board's 16 MiB
        (512, 65536, 128),
    ],
    ids=["rx4k-tx16k", "rx64k-tx64k+16", "rx512-tx64k"],
)
def test_echo_at_the_limits_on_the_emulated_m33(
    services_firmware: Path, rx_size: int, tx_size: int, buffers: int
) -> None:
    if not shutil.which("qemu-system-arm"):
        pytest.fail("qemu-system-arm is not installed: run ./scripts/setup")
    with RemoteProc(QemuPlatform(), rx_size=rx_size, tx_size=tx_size, buffers=buffers) as rp:
        rp.load(services_firmware)
        rp.start()
        assert rp.rpmsg is not None and isinstance(rp.rpmsg.core, HostCore)
        assert (rp.rpmsg.core.rx_size, rp.rpmsg.core.tx_size) == (rx_size, tx_size)
        ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
        ep.settimeout(20)
        both = min(limit(rx_size), limit(tx_size))
        for n in (both, 1, both - 1):  # the echo crosses both directions: the smaller limit, exactly
            ep.send(pattern(n, n))
            assert ep.recv() == pattern(n, n)
        with pytest.raises(MessageTooLong) as err:  # the host's limit: one byte more is refused
            ep.send(bytes(limit(tx_size) + 1))
        assert err.value.limit == limit(tx_size)
        if limit(tx_size) > limit(rx_size):
            # The firmware's limit: the host sends what its receive buffers cannot hold; the firmware's echo of
            # it is refused (RPMSG_ERR_TOO_BIG, the buffer kept), nothing is written, the next echo comes back.
            ep.send(pattern(limit(rx_size) + 1, 9))
            ep.send(b"after")
            assert ep.recv() == b"after"
        rp.stop()
