"""rproc's vdev status writes in Linux's order, relative to starting and stopping the remote
(remoteproc/conformance/linux/vdev_status.py LINUX_START / LINUX_STOP, seen against the real kernel by
tests/conformance/linux/test_lifecycle_linux.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from remoteproc.boards import MPS2_AN505
from remoteproc.conformance.linux.vdev_status import LINUX_START, LINUX_STOP, record_vdev_events
from remoteproc.lifecycle import State
from remoteproc.platforms.sim import SimPlatform
from remoteproc.rproc import RemoteProc


@pytest.fixture
def rp() -> Iterator[RemoteProc]:
    proc = RemoteProc(SimPlatform(MPS2_AN505))
    yield proc
    proc.close()


def test_stop_resets_the_vdev_before_the_remote_is_stopped(rp: RemoteProc, example_firmware: Path) -> None:
    """Linux resets the vdev (status 0, then 1) while the remote still runs, then stops it (rproc_stop:
    rproc_stop_subdevices before ops->stop). rproc stopped the remote first and wrote the bytes after
    (start, 0, 1, 3, 7, stop, 0, 1): a firmware never saw the reset it sees under Linux."""
    rp.load(example_firmware)
    events = record_vdev_events(rp)
    rp.start()
    rp.stop()
    assert events == [*LINUX_START, *LINUX_STOP]


def test_recovery_after_a_crash_keeps_linuxs_order(rp: RemoteProc, example_firmware: Path) -> None:
    """rproc_boot_recovery: rproc_stop (the vdev reset, then ops->stop), then rproc_start again."""
    rp.load(example_firmware)
    events = record_vdev_events(rp)
    rp.start()
    assert rp.platform.process is not None
    rp.platform.process.kill()  # the remote dies on its own
    rp.platform.process.wait()
    assert rp.state is State.CRASHED
    rp.recover()
    rp.stop()
    assert events == [*LINUX_START, *LINUX_STOP, *LINUX_START, *LINUX_STOP]
