"""The device side of the soak test: receive COUNT messages on queue 1 (checking each), send COUNT on queue 0.

    python -m tests.reliability.soak_peer PATH COUNT
Prints "ok <fds-at-start> <fds-at-end> <rss-growth-kib>" when every message arrived in order, intact.
"""

from __future__ import annotations

import os
import sys
import time
from array import array

from tests.reliability.soak import BATCH, LAYOUT0, LAYOUT1, NUM, SIZE, fds, payload, rss_kib, seqs_ok
from transports.shmfile import SharedFile
from virtio import DeviceQueue


def main() -> int:
    path, count = sys.argv[1], int(sys.argv[2])
    shm = SharedFile(path, SIZE, create=False)
    to_drv = DeviceQueue(shm.memory, LAYOUT0, index=0)
    from_drv = DeviceQueue(shm.memory, LAYOUT1, index=1)
    out = bytearray(NUM * 16)
    lens = array("I", bytes(4 * NUM))
    got = sent = 0
    fds0, rss0 = fds(), rss_kib()
    deadline = time.monotonic() + 600
    while got < count or sent < count:
        progress = False
        if got < count:
            n = from_drv.recv_copy_into(out, lens, NUM)
            if n:
                if not seqs_ok(out, n, got):
                    print(f"bad payload in messages {got}..{got + n}", flush=True)
                    return 1
                got += n
                from_drv.publish()
                progress = True
        if sent < count:
            n = min(BATCH, count - sent)
            k = to_drv.send_copy(payload(sent, n), [16] * n)
            if k:
                sent += k
                to_drv.publish()
                progress = True
        if not progress:
            if time.monotonic() > deadline:
                print(f"stuck at {got} received, {sent} sent", flush=True)
                return 1
            os.sched_yield()
    print(f"ok {fds0} {fds()} {rss_kib() - rss0}", flush=True)
    to_drv.close()
    from_drv.close()
    shm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
