"""RpmsgDevice.state(): a JSON-serialisable snapshot of vrings, endpoints, channels, buffers held and counters."""

from __future__ import annotations

import json
import struct
import time

import pytest

from rpmsg import PeerLost, loopback_pair
from tests.rpmsg.conftest import HostSide


def test_state_of_a_working_host_is_json(host: HostSide) -> None:
    with host.device.open("rpmsg-echo", timeout=10) as ep:
        ep.settimeout(10)
        for word in (b"a", b"bb"):
            ep.send(word)
        deadline = time.monotonic() + 10
        while len(ep._queue) < 2 and time.monotonic() < deadline:
            host.device.process()
        state = json.loads(json.dumps(host.device.state()))
        assert state["role"] == "host" and not state["closed"] and state["failure"] is None
        assert state["channels"]["rpmsg-echo"] == ep.peer
        (mine,) = [e for e in state["endpoints"] if e["addr"] == ep.addr]
        assert mine["name"] == "rpmsg-echo" and mine["peer"] == ep.peer
        assert (mine["queued"], mine["queued_bytes"], mine["dropped"]) == (2, 3, 0)
        rx, tx = state["vrings"]
        assert (rx["index"], rx["name"], rx["side"], tx["index"], tx["side"]) == (0, "rx", "driver", 1, "driver")
        assert rx["num"] == host.device.core.rx.num and not rx["broken"] and rx["error"] is None
        # every receive buffer is posted again once its message is copied out
        assert rx["in_flight"] == state["buffers"]["rx_count"] == state["buffers"]["rx_posted"]
        assert rx["avail"]["idx"] == host.device.core.rx.state()["avail_shadow"]
        assert set(state["counters"]) >= {"queue_dropped", "unbound_dropped", "ns_refused", "callback_errors"}
    closed = host.device.state()
    assert all(e["addr"] != ep.addr for e in closed["endpoints"])  # type: ignore[union-attr]


def test_state_counts_buffers_held_zero_copy_on_both_sides() -> None:
    host, remote = loopback_pair()
    try:
        rep = remote.endpoint("zc", zero_copy=True)
        with host.open("zc", timeout=10, zero_copy=True) as ep:
            ep.settimeout(10)
            rep.settimeout(10)
            ep.send(b"to remote")
            held_remote = rep.recv_message()
            assert remote.state()["buffers"] == {
                "from_host_held": 1,
                "to_host_spare": False,
                "to_host_kept": 0,
                "to_host_held": 0,
            }
            assert remote.state()["vrings"][1]["in_flight"] == 1  # type: ignore[index]
            rep.sendto(b"to host", held_remote.src)
            held_host = ep.recv_message()
            buffers = host.state()["buffers"]
            assert buffers["rx_held"] == 1  # type: ignore[index]
            buf = ep.get_buffer()
            assert host.state()["buffers"]["tx_held"] == 1  # type: ignore[index]
            ep.send_buffer(buf, 0)
            held_host.release()
            held_remote.release()
            assert remote.state()["buffers"]["from_host_held"] == 0  # type: ignore[index]
            state = host.state()
            assert state["buffers"]["rx_held"] == 0 and state["buffers"]["tx_held"] == 0  # type: ignore[index]
    finally:
        host.close()
        remote.close()


def test_state_of_a_broken_ring_says_why() -> None:
    host, remote = loopback_pair()
    try:
        layout = host.core.tx.layout
        # The host publishes an avail index far ahead of the descriptors it made available: the remote's ring breaks.
        host.core.memory.write(layout.avail + 2, struct.pack("<H", layout.num + 7))
        with pytest.raises(PeerLost):
            remote.process()
        state = remote.state()
        json.dumps(state)
        assert state["failure"] is not None
        tx = state["vrings"][1]  # type: ignore[index]
        assert tx["broken"] and tx["error"] and tx["avail"]["idx"] == layout.num + 7
    finally:
        host.close()
        remote.close()
