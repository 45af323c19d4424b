"""rproc's side of the Linux scenarios: the rpmsg remote behind the guest's virtio_rpmsg_bus.

It binds an echo endpoint (announced as ``rpmsg-raw`` when the name service is negotiated, so the kernel's
rpmsg_char makes a /dev/rpmsgN for it) and records the channels the kernel announces to it. A message
``close`` makes it close the endpoint, which announces NS destroy: the kernel must remove the device node.
"""

from __future__ import annotations

import argparse
import sys
import threading
from dataclasses import dataclass, field

from rpmsg.device import Endpoint, RpmsgDevice
from rpmsg.errors import EndpointClosed, PeerLost, RpmsgTimeout
from rpmsg.wiring import VhostUserRemote

ECHO_NAME = "rpmsg-raw"  # rpmsg_char (Linux 6.1) binds channels of this name to /dev/rpmsgN
ECHO_ADDR = 0x400
CLOSE_REQUEST = b"close"


@dataclass
class EchoService:
    device: RpmsgDevice
    addr: int = ECHO_ADDR
    echoed: int = 0
    channel_events: list[tuple[str, int, bool]] = field(default_factory=list)
    closed_by_request: threading.Event = field(default_factory=threading.Event)
    stopped: threading.Event = field(default_factory=threading.Event)
    failure: BaseException | None = None

    def __post_init__(self) -> None:
        self._changed = threading.Condition()
        self.device.on_channel(self._on_channel)
        self.endpoint: Endpoint = self.device.endpoint(ECHO_NAME, addr=self.addr)
        self._thread = threading.Thread(target=self._run, name="echo service", daemon=True)
        self._thread.start()

    def _on_channel(self, name: str, addr: int, created: bool) -> None:
        with self._changed:
            self.channel_events.append((name, addr, created))
            self._changed.notify_all()

    def wait_channel_event(self, event: tuple[str, int, bool], timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: event in self.channel_events, timeout)

    def _run(self) -> None:
        ep = self.endpoint
        ep.settimeout(0.2)
        try:
            while not self.stopped.is_set():
                try:
                    data, src = ep.recvfrom()
                except RpmsgTimeout:
                    continue
                if data == CLOSE_REQUEST:
                    ep.close()  # announces NS destroy
                    self.closed_by_request.set()
                    return
                ep.sendto(data, src)
                self.echoed += 1
        except (PeerLost, EndpointClosed) as exc:
            if not self.stopped.is_set():
                self.failure = exc
        except BaseException as exc:  # reported by the test
            self.failure = exc

    def stop(self) -> None:
        self.stopped.set()
        self._thread.join(timeout=5)


def main(argv: list[str] | None = None) -> int:
    """A remote in its own process (so a test can kill it): serve one start, echo until killed."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--socket", required=True)
    parser.add_argument("--timeout", type=float, default=60)
    args = parser.parse_args(argv)
    with VhostUserRemote(args.socket) as remote:
        print("listening", flush=True)
        remote.accept(args.timeout)
        device = remote.start(args.timeout)
        service = EchoService(device)
        print("started", flush=True)
        service.stopped.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
