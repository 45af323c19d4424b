"""What :meth:`rpmsg.device.RpmsgDevice.state` reports of the rings and buffers, either role (host or remote):
the shared indices and flags as they are in memory now, this side's own view of them, and the buffers this side
holds (docs/rpmsg.md, "State"). Reads only; no I/O beyond the mapped memory.
"""

from __future__ import annotations

import struct

from rpmsg.core import HostCore, RemoteCore
from virtio import DeviceQueue, DriverQueue
from virtio.status import describe


def rings_state(core: HostCore | RemoteCore) -> tuple[dict[str, object], list[dict[str, object]]]:
    """(the buffers this side holds, its two vrings) of an open device's core."""
    host = isinstance(core, HostCore)
    if isinstance(core, HostCore):
        queues: list[tuple[str, DriverQueue | DeviceQueue]] = [("rx", core.rx), ("tx", core.tx)]
        rx_posted = core.rx.num - core.rx.num_free
        tx_free = len(core.tx.pool)
        tx_in_flight = core.tx.num - core.tx.num_free
        buffers: dict[str, object] = {
            "rx_count": core.rx_count,
            "rx_size": core.rx_size,
            "rx_posted": rx_posted,
            "rx_held": core.rx_count - rx_posted,  # zero-copy messages not released yet
            "tx_count": core.tx_count,
            "tx_size": core.tx_size,
            "tx_free": tx_free,
            "tx_in_flight": tx_in_flight,  # sent, not given back by the remote yet
            "tx_held": core.tx_count - tx_free - tx_in_flight,  # get_buffer() not sent yet
        }
    else:
        queues = [("rx", core.to_host), ("tx", core.from_host)]
        kept = (core._spare is not None) + len(core._spares)
        buffers = {
            "from_host_held": _device_in_flight(core.from_host),  # zero-copy messages not released yet
            "to_host_spare": core._spare is not None,  # a host buffer kept for the next send (too small, given back)
            "to_host_kept": kept,  # host buffers kept for the next sends
            "to_host_held": _device_in_flight(core.to_host) - kept,  # zero-copy send buffers not sent yet
        }
    return buffers, [_queue_state(name, q, host) for name, q in queues]


def _field(state: dict[str, object], key: str) -> int:
    value = state[key]
    assert isinstance(value, int)
    return value


def _device_in_flight(q: DeviceQueue) -> int:
    """Chains a device side popped and has not pushed back."""
    st = q.state()
    return (_field(st, "last_avail") - _field(st, "used_shadow")) & 0xFFFF


def _queue_state(name: str, q: DriverQueue | DeviceQueue, host: bool) -> dict[str, object]:
    """One vring for :meth:`RpmsgDevice.state`: what is in shared memory now (avail and used flags and idx) and
    this side's own view of it."""
    layout = q.layout
    avail_flags, avail_idx = struct.unpack("<HH", q.memory.read(layout.avail, 4))
    used_flags, used_idx = struct.unpack("<HH", q.memory.read(layout.used, 4))
    st = q.state()
    err = _field(st, "err")
    driver = isinstance(q, DriverQueue)
    out: dict[str, object] = {
        "index": q.index,
        "name": name,  # from the host's point of view: vring 0 carries the remote's messages to the host
        "side": "driver" if driver else "device",
        "engine": q.backend,
        "num": q.num,
        "desc": layout.desc,
        "avail": {"idx": avail_idx, "flags": avail_flags},
        "used": {"idx": used_idx, "flags": used_flags},
        "event_idx": q.event_idx,
        "broken": bool(st["broken"]),
        "error": describe(err, _field(st, "err_where"), _field(st, "err_value")) if err else None,
    }
    if isinstance(q, DriverQueue):
        out["last_used"] = st["last_used"]  # the next used entry this side will read
        out["in_flight"] = q.num - _field(st, "num_free")  # descriptors the peer holds
    else:
        out["last_avail"] = st["last_avail"]  # the next avail entry this side will read
        out["in_flight"] = _device_in_flight(q)  # chains this side holds
    out["notifications_suppressed"] = bool(st["suppressed"])
    return out
