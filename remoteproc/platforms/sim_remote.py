"""The simulated remote processor of the ``sim`` platform (run by it; not a user command).

It behaves as remote firmware does: read the resource table where the firmware was linked, wait for the
host's DRIVER_OK (the bit, polled every millisecond), take the vring addresses the host wrote into the table,
log to the trace buffer, announce its services through the name service and serve them.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import time

from resource_table import Trace, Vdev, parse_with_spans, vdev_field_offset
from rpmsg import EndpointClosed, PeerLost, RemoteCore, RpmsgDevice
from rpmsg.protocol import driver_ok
from transports.doorbell import SocketDoorbell
from transports.shmfile import SharedFile
from virtio import VringLayout
from virtio.features import VIRTIO_RING_F_EVENT_IDX


class TraceLog:
    """Appends NUL-terminated text to the firmware's trace buffer, as firmware does."""

    def __init__(self, file: SharedFile, trace: Trace | None) -> None:
        self.memory = file.memory
        self.trace = trace
        self.pos = 0

    def __call__(self, text: str) -> None:
        if self.trace is None:
            return
        raw = text.encode()[: max(0, self.trace.len - 1 - self.pos)]
        self.memory.write(self.trace.da + self.pos, raw + b"\0")
        self.pos += len(raw)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--shm", required=True)
    ap.add_argument("--map", required=True)
    ap.add_argument("--table", required=True)
    ap.add_argument("--socket", required=True)
    ap.add_argument("--service", action="append", default=[])
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)  # the host reports what matters; its going away is normal here
    layout = []
    for item in args.map.split(","):
        name, da, size = item.split(":")
        layout.append((name, int(da, 0), int(size, 0)))
    file = SharedFile(f"/dev/shm/{args.shm}", sum(s for _, _, s in layout), create=False, layout=layout)
    table_da, table_size = (int(x, 0) for x in args.table.split(":"))

    table, spans = parse_with_spans(file.memory.read(table_da, table_size))
    vdev_index = next((i for i, e in enumerate(table.entries) if isinstance(e, Vdev)), None)
    if vdev_index is None:  # legal (Linux starts it): the firmware runs with nothing to serve, until stopped
        TraceLog(file, next((e for e in table.entries if isinstance(e, Trace)), None))("sim remote: no vdev\n")
        parent = os.getppid()
        while os.getppid() == parent:
            time.sleep(0.2)
        return 0
    status_da = table_da + spans[vdev_index].offset + vdev_field_offset(table.version, "status")
    deadline = time.monotonic() + 30
    while not driver_ok(file.memory.read(status_da, 1)[0]):
        if time.monotonic() > deadline:
            print("sim remote: no DRIVER_OK within 30 s", file=sys.stderr)
            return 1
        time.sleep(0.001)
    table, spans = parse_with_spans(file.memory.read(table_da, table_size))  # now with the host's values
    vdev = table.entries[vdev_index]
    assert isinstance(vdev, Vdev)
    log = TraceLog(file, next((e for e in table.entries if isinstance(e, Trace)), None))
    log(f"sim remote: DRIVER_OK seen, vrings at {vdev.vrings[0].da:#x} and {vdev.vrings[1].da:#x}\n")

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(args.socket)
    rx = VringLayout.legacy(vdev.vrings[0].da, vdev.vrings[0].num, vdev.vrings[0].align)
    tx = VringLayout.legacy(vdev.vrings[1].da, vdev.vrings[1].num, vdev.vrings[1].align)
    event_idx = bool(vdev.gfeatures & (1 << VIRTIO_RING_F_EVENT_IDX))
    device = RpmsgDevice(RemoteCore(file.memory, rx, tx, event_idx=event_idx), SocketDoorbell(sock))
    for service in args.service or ["echo"]:
        if service != "echo":
            print(f"sim remote: unknown service {service!r}", file=sys.stderr)
            return 2
        ep = device.endpoint("rpmsg-echo")
        log("sim remote: rpmsg-echo announced\n")

        def serve(ep=ep) -> None:  # type: ignore[no-untyped-def]
            try:
                while True:
                    data, src = ep.recvfrom()
                    ep.sendto(data, src)
            except (EndpointClosed, PeerLost):
                pass

        threading.Thread(target=serve, daemon=True).start()
    while device.failure is None:
        time.sleep(0.05)
    device.close()
    file.close()
    return 0


def run(argv: list[str] | None = None) -> int:
    """:func:`main`, with an error as one line on stderr instead of a traceback: the host puts that line in
    its own error (the sim platform reads this process's stderr when it exits before connecting)."""
    try:
        return main(argv)
    except Exception as exc:  # the process boundary: whatever stopped the remote, said in one line
        print(f"sim remote: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(run())
