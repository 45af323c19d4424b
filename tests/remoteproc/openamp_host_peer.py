"""The host of the OpenAMP profile as a program (rproc in the place of OpenAMP's echo pinger): connect, set
DRIVER_OK, echo every size 1..496 through the demo channel, exit 0 (1 on a wrong or missing echo).

python -m tests.remoteproc.openamp_host_peer SHM EVENT [--bad-gfeatures]

--bad-gfeatures: a broken host that accepts a feature the remote never offered (the remote-role scenario
status-handshake must fail).
"""

from __future__ import annotations

import sys

from remoteproc.openamp import CHANNEL, GFEATURES_OFFSET, host_device
from rpmsg import RpmsgError
from transports.openamp import OpenAmpLink


def main() -> int:
    link = OpenAmpLink("host", shm=sys.argv[1], event=sys.argv[2], timeout=20)
    if "--bad-gfeatures" in sys.argv:
        write = link.memory.write

        def bad(da: int, data: bytes | bytearray | memoryview) -> None:
            write(da, (0x3).to_bytes(4, "little") if da == GFEATURES_OFFSET else data)

        link.memory.write = bad  # type: ignore[method-assign]
    device = host_device(link)
    status = 0
    try:
        ep = device.open(CHANNEL, timeout=10)
        ep.settimeout(10)
        for size in range(1, 497):
            payload = bytes((i * 3 + size) & 0xFF for i in range(size))
            ep.send(payload)
            if ep.recv() != payload:
                status = 1
    except RpmsgError as exc:
        print(f"openamp_host_peer: {exc}", file=sys.stderr)
        status = 1
    device.close()
    link.close()
    return status


if __name__ == "__main__":
    raise SystemExit(main())
