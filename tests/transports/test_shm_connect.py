"""ShmLink.connect_remote refusing a host's file leaves nothing of the connection open."""

from __future__ import annotations

import os
import threading
import uuid

import pytest

from transports.doorbell import Doorbell
from transports.errors import TransportError
from transports.shm import ShmLink


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("doorbell", ["eventfd", "dgram"])
def test_a_file_smaller_than_asked_closes_the_socket_and_the_passed_fds(doorbell: str) -> None:
    """The remote asks for more bytes than the host's file has: TransportError naming both sizes, and the
    descriptors the host passed with its greeting (two eventfds, or a datagram socket) closed with the socket.
    Before, they stayed open (plain ints, never wrapped)."""
    name = f"rproc-test-connect-{os.getpid()}-{uuid.uuid4().hex[:6]}"
    before = _open_fds()
    host = ShmLink.create_host(name, 0x4000, doorbell=doorbell)
    bells: list[Doorbell] = []
    t = threading.Thread(target=lambda: bells.append(host.connect(10)), daemon=True)
    t.start()
    try:
        with pytest.raises(TransportError, match=r"is 16384 bytes, 65536 needed"):
            ShmLink.connect_remote(name, 0x10000, timeout=10)
    finally:
        t.join(10)
        host.close()  # the host's side of the connection, and its own file
    assert bells, "the host accepted no connection"
    assert _open_fds() <= before, sorted(_open_fds() - before)
