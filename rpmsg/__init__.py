"""rpmsg over virtio, host and remote roles, with socket-like endpoints.

host, remote = rpmsg.loopback_pair()
echo = remote.endpoint("rpmsg-echo")           # the remote announces it through the name service
ep = host.open("rpmsg-echo", timeout=1)        # the host connects to it
ep.send(b"ping"); data, src = echo.recvfrom(); echo.sendto(data, src); ep.recv()

Across processes or hardware: ``host_on(open_link(url, role="host"), profile)`` in one,
``remote_on(open_link(url, role="remote"), profile)`` in the other (:mod:`rpmsg.wiring`, :mod:`transports.url`).
"""

from rpmsg.core import ChannelEvent, HostCore, Message, RemoteCore, TxBuffer
from rpmsg.device import RpmsgDevice
from rpmsg.endpoint import Endpoint
from rpmsg.errors import (
    EndpointClosed,
    LocalProtocolError,
    MessageTooLong,
    PeerLost,
    RemoteProtocolError,
    RpmsgError,
    RpmsgTimeout,
    WouldBlock,
)
from rpmsg.profiles import Limits, Profile
from rpmsg.wiring import host_on, loopback_pair, remote_on

__all__ = [
    "ChannelEvent",
    "Endpoint",
    "EndpointClosed",
    "HostCore",
    "Limits",
    "LocalProtocolError",
    "Message",
    "MessageTooLong",
    "PeerLost",
    "Profile",
    "RemoteCore",
    "RemoteProtocolError",
    "RpmsgDevice",
    "RpmsgError",
    "RpmsgTimeout",
    "TxBuffer",
    "WouldBlock",
    "host_on",
    "loopback_pair",
    "remote_on",
]
