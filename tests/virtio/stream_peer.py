"""Device side of the two-process stream test: map the shared file, receive N messages, check each one.

Run as: python -m tests.virtio.stream_peer SPEC SIZE COUNT LENGTH (SPEC: see streaming.Window).
Exits 0 after COUNT messages arrived in order with the expected bytes; prints what went wrong otherwise.
"""

from __future__ import annotations

import sys
import time
from array import array

from tests.virtio.streaming import NUM, RING_DA, Window, expected_payloads
from virtio import DeviceQueue, VringLayout


def main() -> int:
    spec, size, count, length = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    shm = Window(spec, size, create=False)
    dev = DeviceQueue(shm.memory, VringLayout.legacy(shm.base + RING_DA, NUM, 0x1000))
    out = bytearray(NUM * length)
    lens = array("I", [0] * NUM)
    received = 0
    deadline = time.monotonic() + 120
    while received < count:
        n = dev.recv_copy_into(out, lens, NUM)
        if n == 0:
            if time.monotonic() > deadline:
                print(f"timeout after {received} messages", flush=True)
                return 1
            time.sleep(0)
            continue
        dev.publish()
        if any(x != length for x in lens[:n]):
            print(f"message {received}: lengths {list(lens[:n])}", flush=True)
            return 1
        if out[: n * length] != expected_payloads(received, n, length):
            print(f"payload mismatch in messages {received}..{received + n}", flush=True)
            return 1
        received += n
    print(f"ok {received}", flush=True)
    dev.close()
    shm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
