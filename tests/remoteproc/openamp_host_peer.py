"""The host of the OpenAMP profile as a program (rproc in the place of OpenAMP's echo pinger): connect, set
DRIVER_OK, echo every size 1..496 through the demo channel, count the wrong or missing echoes, print
" Test Results: Error count = N" and exit 0 whatever N is, as OpenAMP's pingers do.

python -m tests.remoteproc.openamp_host_peer SHM EVENT [--bad-gfeatures] [--wrong-echoes N]

It starts as OpenAMP's host does (libmetal + the "generic" Linux machine of openamp-system-reference): it opens
the shared file, creating it 0600 and growing it under an flock if need be, and maps it *before* it connects to
the event socket; as soon as ``connect()`` returns it reads the resource table, once. A remote that replaced the
file after that, or listened before writing its table, gets what OpenAMP's host printed: "Failed to set resource
table to remoteproc", exit status 255.

--bad-gfeatures: a broken host that accepts a feature the remote never offered (the remote-role scenario
status-handshake must fail).
--wrong-echoes N: a pinger whose check fails N times (it compares the first N echoes with other bytes): it
counts N errors and exits 0 (the remote-role scenario host-ends-cleanly must fail on the count).
"""

from __future__ import annotations

import fcntl
import os
import socket
import sys
import time

from remoteproc.platforms.openamp import CHANNEL, GFEATURES_OFFSET, TABLE_SIZE, host_device
from resource_table import ResourceTableError, parse
from rpmsg import RpmsgError
from transports.doorbell import Doorbell, SocketDoorbell
from transports.link import Link
from transports.openamp import LAYOUT, SHM_SIZE
from transports.shmfile import SharedFile


class MapFirstHost(Link):
    """OpenAMP's host order: map the file (libmetal's ``metal_open`` + ``metal_map``), then connect."""

    layout = LAYOUT

    def __init__(self, shm: str, event: str, timeout: float) -> None:
        fd = os.open(shm, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if os.fstat(fd).st_size < SHM_SIZE:
                os.ftruncate(fd, SHM_SIZE)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        self.file = SharedFile(shm, SHM_SIZE, create=False)  # this inode stays mapped, whatever happens to the name
        super().__init__(self.file.memory, "host")
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(event)
                break
            except (FileNotFoundError, ConnectionRefusedError):
                sock.close()
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)
        self._doorbell = SocketDoorbell(sock)

    def _connect(self, timeout: float) -> Doorbell:
        raise AssertionError("connected when opened")

    def close(self) -> None:
        super().close()
        self.file.close()


def main() -> int:
    link = MapFirstHost(sys.argv[1], sys.argv[2], timeout=20)
    try:
        table = parse(link.memory.read(0, TABLE_SIZE))  # at once, as OpenAMP's host does: no second look
        if len(table.vdevs) != 1:
            raise ResourceTableError(f"{len(table.vdevs)} vdevs")
    except ResourceTableError as exc:
        print(f"Failed to set resource table to remoteproc ({exc})", file=sys.stderr)
        link.close()
        return 255
    if "--bad-gfeatures" in sys.argv:
        write = link.memory.write

        def bad(da: int, data: bytes | bytearray | memoryview) -> None:
            write(da, (0x3).to_bytes(4, "little") if da == GFEATURES_OFFSET else data)

        link.memory.write = bad  # type: ignore[method-assign]
    wrong = int(sys.argv[sys.argv.index("--wrong-echoes") + 1]) if "--wrong-echoes" in sys.argv else 0
    device = host_device(link)
    errors = 0
    try:
        ep = device.open(CHANNEL, timeout=10)
        ep.settimeout(10)
        for size in range(1, 497):
            payload = bytes((i * 3 + size) & 0xFF for i in range(size))
            ep.send(payload)
            expected = payload if size > wrong else bytes(size)
            if ep.recv() != expected:
                errors += 1
    except RpmsgError as exc:
        print(f"openamp_host_peer: {exc}", file=sys.stderr)
        errors += 1
    print(f" Test Results: Error count = {errors} ")
    device.close()
    link.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
