"""The remote of the OpenAMP-profile test: rproc in the place of OpenAMP's echo demo remote (argument 0).

python -m tests.remoteproc.openamp_peer SHM EVENT [--clobber-status]

--clobber-status: a broken remote that resets the status byte once it runs (the conformance scenario
status-and-features must fail).
"""

from __future__ import annotations

import sys

from remoteproc.platforms.openamp import CHANNEL, STATUS_OFFSET, remote_device
from rpmsg import EndpointClosed, PeerLost
from transports.openamp import OpenAmpLink


def main() -> int:
    link = OpenAmpLink("remote", shm=sys.argv[1], event=sys.argv[2])
    device = remote_device(link, timeout=20)
    if "--clobber-status" in sys.argv:
        link.memory.write(STATUS_OFFSET, b"\0")
    ep = device.endpoint(CHANNEL, addr=0x400)
    try:
        while True:
            data, src = ep.recvfrom()
            ep.sendto(data, src)
    except (EndpointClosed, PeerLost):
        pass
    device.close()
    link.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
