"""The firmware's C rpmsg remote against rproc's Python host, in one process over one bytearray: every size,
the name service, zero-copy receive, and a host that writes garbage (malformed messages, broken rings)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from resource_table import ResourceTable, Vdev, Vring, build_with_spans
from rpmsg import HostCore, Profile, RpmsgDevice
from tests.firmware.remote_lib import load
from transports.doorbell import EventfdDoorbell
from transports.memory import MappedRegion, RegionMemory
from virtio import Buf

BASE = 0x80000000
TABLE = 0x0
P = Profile(num=16, rx_count=16, tx_count=16, base=BASE + 0x1000)
SIZE = 0x1000 + P.size


@dataclass
class Pair:
    host: RpmsgDevice = field(repr=False)
    lib: Any = field(repr=False)
    ffi: Any = field(repr=False)
    remote: Any = field(repr=False)
    backing: bytearray = field(repr=False)
    kicks: list[int] = field(repr=False)
    keep: list[Any] = field(repr=False)

    def pump(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            assert self.lib.rpmsg_poll(self.remote) >= 0
            self.host.process()


@pytest.fixture
def pair() -> Iterator[Pair]:
    mod = load()
    ffi, lib = mod.ffi, mod.lib
    backing = bytearray(SIZE)
    memory = RegionMemory([MappedRegion("ram", BASE, SIZE, backing)])
    # The table as the host leaves it after negotiation: vrings placed, NS negotiated, DRIVER_OK (Linux: 0x07).
    rx, tx = P.rx_layout, P.tx_layout
    table = ResourceTable(
        entries=(
            Vdev(
                id=7,
                dfeatures=1,
                gfeatures=1,
                status=7,
                vrings=(
                    Vring(da=rx.desc, align=P.align, num=P.num, notifyid=0),
                    Vring(da=tx.desc, align=P.align, num=P.num, notifyid=1),
                ),
            ),
        )
    )
    data, spans = build_with_spans(table)
    memory.write(BASE + TABLE, data)
    host_bell, remote_bell = EventfdDoorbell.pair()
    core = HostCore(memory, rx, tx, pool_da=P.pool_da, rx_count=16, tx_count=16)
    host = RpmsgDevice(core, host_bell, wait="busy")
    host.start()
    kicks: list[int] = []

    @ffi.def_extern()
    def py_kick(ctx: Any, queue: int) -> None:
        kicks.append(queue)

    @ffi.def_extern()
    def py_echo(r: Any, ept: Any, data: Any, length: int, src: int) -> None:
        payload = ffi.buffer(ffi.cast("uint8_t *", data), length)[:]  # read in place (zero-copy receive)
        assert lib.rpmsg_send(r, ept.addr, src, payload, length) == 0

    host_ptr = ffi.from_buffer("uint8_t[]", backing, require_writable=True)
    region = ffi.new("struct rp_region *", {"da": BASE, "size": SIZE, "host": host_ptr})
    remote = ffi.new("struct rpmsg_remote *")
    vdev = ffi.cast("struct fw_rsc_vdev *", host_ptr + TABLE + spans[0].offset)
    assert lib.rpmsg_remote_ready(vdev) == 1
    assert lib.rpmsg_remote_init(remote, vdev, region, lib.py_kick, ffi.NULL) == 0
    ept = ffi.new("struct rpmsg_ept *")
    assert lib.rpmsg_create_ept(remote, ept, b"rpmsg-echo", 0xFFFFFFFF, lib.py_echo, ffi.NULL) == 0
    p = Pair(host, lib, ffi, remote, backing, kicks, [host_ptr, region, ept, vdev, remote_bell])
    yield p
    host.close()
    remote_bell.close()


def test_announce_and_echo_every_size(pair: Pair) -> None:
    assert pair.host.wait_for_channel("rpmsg-echo", timeout=1) == 1024
    ep = pair.host.open("rpmsg-echo", timeout=1)
    ep.settimeout(0)
    for size in range(0, 497):
        payload = bytes((size + i) & 0xFF for i in range(size))
        ep.send(payload)
        pair.pump()
        assert ep.recv() == payload
    assert pair.remote.dropped == 0
    # The host suppresses TX-complete interrupts (vring 1 avail.flags = NO_INTERRUPT, like Linux): the remote
    # returned 497 buffers and respected that every time; its kicks were for new messages on vring 0.
    assert 1 not in pair.kicks and 0 in pair.kicks


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.binary(min_size=0, max_size=512), st.integers(0, 600)), min_size=1, max_size=8))
def test_garbage_from_the_host_is_dropped(pair: Pair, garbage: list[tuple[bytes, int]]) -> None:
    """The host writes arbitrary bytes and lengths into its send buffers; the C remote drops what is malformed
    (counting it), never reads past a buffer, and goes on echoing."""
    core = pair.host.core
    assert isinstance(core, HostCore)
    before = pair.remote.dropped
    malformed = 0
    for raw, length in garbage:
        buf = core.get_tx_buffer()
        addr = buf.addr
        core.give_back(buf)
        addr2 = core.tx.pool_take()
        assert addr2 == addr
        data = raw[:512].ljust(512, b"\0")  # the whole buffer: no stale bytes from an earlier message
        core.memory.write(addr, data)
        n = min(length, 512)
        core.tx.add([Buf(addr, n)], token=addr)
        core.tx.publish()
        hdr_len = int.from_bytes(data[12:14], "little")
        if n < 16 or hdr_len > n - 16:
            malformed += 1
        pair.pump(1)
    assert pair.remote.dropped - before == malformed
    ep = pair.host.open("rpmsg-echo", timeout=1)
    ep.settimeout(0)
    ep.send(b"still echoing")
    pair.pump()
    assert ep.recv() == b"still echoing"
    ep.close()


def test_a_broken_ring_is_reported_not_crashed(pair: Pair) -> None:
    core = pair.host.core
    assert isinstance(core, HostCore)
    tx = P.tx_layout
    core.memory.write(tx.avail + 2, (40).to_bytes(2, "little"))  # avail idx jumps by more than the ring holds
    assert pair.lib.rpmsg_poll(pair.remote) < 0


def test_a_reset_by_the_host_is_reported(pair: Pair) -> None:
    """Status back to 0 (Linux on stop and detach) is a device reset: rpmsg_poll says so, so the firmware can
    wait for the next DRIVER_OK and set up again (the vrings may have moved)."""
    vdev_status = BASE + TABLE + 20 + 24  # header 16 + offset[0] 4, then status at 24 in the vdev
    pair.backing[vdev_status - BASE] = 0
    assert pair.lib.rpmsg_poll(pair.remote) == -25  # RPMSG_ERR_RESET
    pair.backing[vdev_status - BASE] = 7
    assert pair.lib.rpmsg_poll(pair.remote) >= 0
