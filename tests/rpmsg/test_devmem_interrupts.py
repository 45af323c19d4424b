"""The devmem pair's interrupt lines behave as UIO's: kicks made while the receiver is not listening coalesce
into one pending interrupt, none is lost, and nothing piles up.

A receiver that spins (the default wait mode, and "busy") does not read its UIO descriptor while messages flow,
so the peer's kicks meet a line whose last interrupt is still unread. The fake hardware of the shared suite once
queued one count per kick there until its socket filled, then its thread died silently: every later kick was
lost, and the c-path devmem catalogue's index-wraparound (70,000 round trips) crawled at one echo window per
10 s receive timeout, about one run in five (tests/rpmsg/conftest.py, FakeInterruptHardware)."""

from __future__ import annotations

import os
import select
import time
from pathlib import Path

from rpmsg import Profile
from tests.rpmsg.conftest import devmem_pair
from transports.devmem import UioDoorbell


def _pending_bytes(fd: int) -> int:
    """What waits unread on a UIO descriptor (read away)."""
    got = 0
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        got += len(chunk)
    return got


def _kick_until_held(kick: UioDoorbell, register: Path, offset: int, limit: int) -> int:
    """Kick until the hardware leaves the mailbox register set for 5 ms (the line is masked) or ``limit``
    kicks were taken in one by one: how many kicks the hardware took."""
    taken = 0
    for _ in range(limit):
        kick.notify(0)
        stop = time.monotonic() + 0.005
        while int.from_bytes(register.read_bytes()[offset : offset + 4], "little"):
            if time.monotonic() > stop:
                return taken
        taken += 1
    return taken


def test_kicks_while_the_line_is_unread_coalesce_and_none_is_lost(tmp_path: Path) -> None:
    profile = Profile()
    pair = devmem_pair(tmp_path, profile)
    try:
        host_bell, remote_bell = pair.host.doorbell, pair.remote.doorbell
        assert isinstance(host_bell, UioDoorbell) and isinstance(remote_bell, UioDoorbell)
        # The host never reads its line meanwhile (a spinning receiver): 3,000 kicks queued a count each before.
        taken = _kick_until_held(remote_bell, tmp_path / "physical", profile.size + 4, 3000)
        assert taken == 1, f"the hardware took {taken} kicks while the host's line was unread: it must mask it"
        time.sleep(0.01)
        assert _pending_bytes(host_bell.fileno()) == 4  # one count waiting, as a UIO read returns
        host_bell._enable()  # what UioDoorbell.wait does after the read: the held kick fires now
        assert host_bell.wait(1) is True
        assert host_bell.wait(0.05) is False  # nothing more was pending
        remote_bell.notify(0)  # and the line still works
        assert host_bell.wait(1) is True
    finally:
        pair.host.close()
        pair.remote.close()
        pair.close()
