"""Remote process of the rpmsg benchmarks: "bench-echo" echoes, "bench-count" counts and reports on b"report".

python benchmarks/rpmsg_remote.py NAME WAIT_MODE
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rpmsg import EndpointClosed, PeerLost
from rpmsg.shm import remote_over_shm


def main() -> int:
    device, link = remote_over_shm(sys.argv[1], wait=sys.argv[2])  # type: ignore[arg-type]
    ep = device.endpoint(f"bench-{sys.argv[3]}")
    n = 0
    try:
        while True:
            data, src = ep.recvfrom()
            if sys.argv[3] == "echo":
                ep.sendto(data, src)
            elif data == b"report":
                ep.sendto(str(n).encode(), src)
                n = 0
            else:
                n += 1
    except (EndpointClosed, PeerLost):
        pass
    device.close()
    link.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
