"""Services the remote side runs for the shared rpmsg suite, in a thread (loop://) or another process (shm).

- rpmsg-echo: sends every message back to its sender.
- rpmsg-sink: expects u32 sequence numbers 0, 1, 2...; b"report" answers "count ok".
- rpmsg-source: b"<count> <size>" makes it send count messages of size bytes, each starting with its u32 number.
- rpmsg-ctl: b"create NAME" announces a new channel NAME (an echo), b"destroy NAME" withdraws it.
"""

from __future__ import annotations

import struct
import threading

from rpmsg import Endpoint, EndpointClosed, PeerLost, RpmsgDevice


def _loop(ep: Endpoint, handle: object) -> None:
    try:
        while True:
            data, src = ep.recvfrom()
            handle(data, src)  # type: ignore[operator]
    except (EndpointClosed, PeerLost):
        pass


def start_services(device: RpmsgDevice) -> list[threading.Thread]:
    echo = device.endpoint("rpmsg-echo")
    sink = device.endpoint("rpmsg-sink")
    source = device.endpoint("rpmsg-source")
    ctl = device.endpoint("rpmsg-ctl")
    state = {"count": 0, "ok": True}
    dynamic: dict[str, Endpoint] = {}
    threads: list[threading.Thread] = []

    def on_sink(data: bytes, src: int) -> None:
        if data == b"report":
            sink.sendto(f"{state['count']} {'ok' if state['ok'] else 'bad'}".encode(), src)
            return
        if len(data) < 4 or struct.unpack_from("<I", data)[0] != state["count"]:
            state["ok"] = False
        state["count"] += 1

    def on_source(data: bytes, src: int) -> None:
        count, size = (int(x) for x in data.split())
        for i in range(count):
            source.sendto(struct.pack("<I", i).ljust(size, bytes((i & 0xFF,))), src)

    def on_ctl(data: bytes, src: int) -> None:
        verb, name = data.decode().split()
        if verb == "create":
            ep = device.endpoint(name)
            dynamic[name] = ep
            run(ep, lambda d, s, ep=ep: ep.sendto(d, s))
        elif verb == "destroy":
            dynamic.pop(name).close()
        ctl.sendto(b"done", src)

    def run(ep: Endpoint, handle: object) -> None:
        t = threading.Thread(target=_loop, args=(ep, handle), daemon=True, name=f"svc-{ep.name}")
        t.start()
        threads.append(t)

    run(echo, lambda d, s: echo.sendto(d, s))
    run(sink, on_sink)
    run(source, on_source)
    run(ctl, on_ctl)
    return threads
