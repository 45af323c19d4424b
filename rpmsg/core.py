"""The two rpmsg roles over virtqueues, without I/O: :class:`HostCore` (virtio driver) and :class:`RemoteCore`
(virtio device).

Theory of operation
-------------------
The host owns every buffer (Linux ``rpmsg_probe``): one pool, ``rx_count`` buffers posted device-writable to
vring 0 (remote -> host) at start, ``tx_count`` handed out for sending on vring 1 (host -> remote) and taken back
from vring 1's used ring. The remote never allocates: it sends by filling a host RX buffer popped from vring 0, and
receives by popping host TX buffers from vring 1, returning each (used) once read.

Both cores are sans-I/O: operations return nothing about notifications directly; instead queues that need a
kick accumulate in :attr:`intents` (``take_intents()`` drains them) and incoming traffic comes out of
:meth:`poll` as events. A runner (:mod:`rpmsg.device`) moves intents to a doorbell and events to endpoints.

Where it lives: :mod:`rpmsg.host_core` (:class:`HostCore`), :mod:`rpmsg.remote_core` (:class:`RemoteCore`),
:mod:`rpmsg.core_common` (what both share); every message rule they apply (header checks, the 0xFFFF cap,
chained descriptors, buffer sizes) is a function of :mod:`rpmsg.protocol`, stated once there. This module
names them all, as before the split.

Interoperability rules (see :mod:`rpmsg.protocol`): payload length from ``hdr.len``, bounded by the used length
and the buffer; ``reserved`` ignored; any peer address accepted.
"""

from __future__ import annotations

from rpmsg.core_common import ChannelEvent, CoreBase, Event, Message, Payload, TxBuffer
from rpmsg.host_core import HostCore
from rpmsg.remote_core import RemoteCore

__all__ = ["ChannelEvent", "CoreBase", "Event", "HostCore", "Message", "Payload", "RemoteCore", "TxBuffer"]
