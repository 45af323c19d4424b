"""Soak: ten million 16-byte messages in each direction at once between two processes over a /dev/shm file,
every payload checked and the order kept on both sides, descriptors and memory flat at the end.

RPROC_SOAK_MESSAGES sets the count (default 10,000,000); see docs/reliability.md for longer runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from array import array
from pathlib import Path

from tests.reliability.soak import (
    BATCH,
    BUF,
    LAYOUT0,
    LAYOUT1,
    NUM,
    POOL_RX,
    POOL_TX,
    SIZE,
    fds,
    payload,
    rss_kib,
    seqs_ok,
)
from transports.shmfile import SharedFile
from virtio import Buf, DriverQueue

REPO = Path(__file__).resolve().parents[2]
COUNT = int(os.environ.get("RPROC_SOAK_MESSAGES", "10000000"))


def test_soak_both_directions() -> None:
    path = Path("/dev/shm") / f"rproc-soak-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    shm = SharedFile(path, SIZE, create=True)
    try:
        rx = DriverQueue(shm.memory, LAYOUT0, index=0)
        tx = DriverQueue(shm.memory, LAYOUT1, index=1)
        rx.reset()
        tx.reset()
        rx_bufs = [POOL_RX + BUF * i for i in range(NUM)]
        rx.add_many([Buf(a, BUF, write=True) for a in rx_bufs], rx_bufs)
        rx.publish()
        tx.set_pool([POOL_TX + BUF * i for i in range(NUM)])
        fds0 = fds()
        peer = subprocess.Popen(
            [sys.executable, "-m", "tests.reliability.soak_peer", str(path), str(COUNT)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
        )
        out = bytearray(NUM * 16)
        lens = array("I", bytes(4 * NUM))
        sent = got = 0
        rss0 = rss_kib()
        deadline = time.monotonic() + 600
        while sent < COUNT or got < COUNT:
            progress = False
            if sent < COUNT:
                tx.reclaim()
                n = min(BATCH, COUNT - sent)
                k = tx.send_copy(payload(sent, n), [16] * n, BUF)
                if k:
                    sent += k
                    tx.publish()
                    progress = True
            if got < COUNT:
                n = rx.recv_copy_into(out, lens, NUM, BUF)  # copies out and posts the buffers again
                if n:
                    assert seqs_ok(out, n, got), f"bad payload in messages {got}..{got + n}"
                    got += n
                    rx.publish()
                    progress = True
            if not progress:
                assert peer.poll() is None, f"peer exited: {peer.stdout.read() if peer.stdout else ''}"
                assert time.monotonic() < deadline, f"stuck at {sent} sent, {got} received"
                os.sched_yield()
        result, _ = peer.communicate(timeout=120)
        assert peer.returncode == 0, result
        status, peer_fds0, peer_fds1, peer_growth = result.split()
        assert status == "ok" and peer_fds0 == peer_fds1
        assert int(peer_growth) < 16 * 1024, f"the peer grew by {peer_growth} KiB"
        assert fds() == fds0
        assert rss_kib() - rss0 < 16 * 1024, f"this side grew by {rss_kib() - rss0} KiB"
    finally:
        rx.close()
        tx.close()
        shm.close(unlink=True)


BOARD_COUNT = int(os.environ.get("RPROC_BOARD_SOAK_MESSAGES", "1000000"))


def test_soak_over_the_emulated_board(services_firmware: Path) -> None:
    """A million messages through the firmware's echo on QEMU's Cortex-M33: each one back, intact, in order."""
    import shutil
    import struct

    import pytest

    from remoteproc.platforms.qemu import QemuPlatform
    from remoteproc.rproc import RemoteProc

    if not shutil.which("qemu-system-arm"):
        pytest.fail("qemu-system-arm is not installed: run ./scripts/setup")
    with RemoteProc(QemuPlatform()) as rp:
        rp.load(services_firmware)
        rp.start()
        assert rp.rpmsg is not None
        ep = rp.rpmsg.open("rpmsg-echo", timeout=10)
        ep.settimeout(20)
        fds0 = fds()
        window = 128
        sent = got = 0
        pack = struct.Struct("<QQ").pack
        while got < BOARD_COUNT:
            while sent < BOARD_COUNT and sent - got < window:
                ep.send(pack(sent, sent ^ 0x5A5A5A5A5A5A5A5A))
                sent += 1
            seq, check = struct.unpack("<QQ", ep.recv())
            assert (seq, check) == (got, got ^ 0x5A5A5A5A5A5A5A5A), f"message {got} came back as {seq}"
            got += 1
        assert fds() == fds0
        assert rp.platform.crashed() is False
