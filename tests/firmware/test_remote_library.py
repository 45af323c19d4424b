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
from rpmsg.protocol import pack_header
from tests.firmware.remote_lib import (
    RPMSG_ERR_BAD_BUFFER,
    RPMSG_ERR_RING,
    RPMSG_ERR_TOO_BIG,
    RPMSG_OK,
    FirmwareRemote,
    load,
    write_table,
)
from transports.doorbell import EventfdDoorbell
from transports.memory import MappedRegion, RegionMemory
from virtio import Buf, DriverQueue, VringLayout

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


def test_has_work_says_when_the_firmware_may_sleep(pair: Pair) -> None:
    """rpmsg_has_work (docs/mcu.md, "Sleeping"): 0 only when rpmsg_poll has nothing to do; a host message comes
    with a kick (the library never suppresses vring 1's), so a remote asleep after a 0 is woken for it."""
    remote_bell = pair.keep[-1]
    pair.pump()
    while remote_bell.wait(0):
        pass  # the start kick and the ones before
    assert pair.lib.rpmsg_has_work(pair.remote) == 0
    ep = pair.host.open("rpmsg-echo", timeout=1)
    ep.send(b"wake up")
    assert pair.lib.rpmsg_has_work(pair.remote) == 1
    assert remote_bell.wait(0)  # the host kicked the sleeping remote
    assert pair.lib.rpmsg_poll(pair.remote) == 1
    assert pair.lib.rpmsg_has_work(pair.remote) == 0
    pair.host.process()
    assert ep.recv() == b"wake up"
    vdev_status = BASE + TABLE + 20 + 24
    pair.backing[vdev_status - BASE] = 0  # a reset: rpmsg_poll must run to report it
    assert pair.lib.rpmsg_has_work(pair.remote) == 1
    pair.backing[vdev_status - BASE] = 7
    ep.close()


def test_a_sender_waiting_for_a_buffer_asks_for_a_kick(pair: Pair) -> None:
    """rpmsg_want_buffer_wakeup, the C twin of RemoteCore.want_buffer_wakeup: with every host receive buffer
    taken, the sender turns vring 0's kicks on, sleeps, and the host's re-post wakes it."""
    core = pair.host.core
    assert isinstance(core, HostCore)
    remote_bell = pair.keep[-1]
    pair.pump()
    while remote_bell.wait(0):
        pass
    used_flags = core.rx.layout.used  # vring 0's used.flags: the remote's suppression of the host's kicks
    assert pair.backing[used_flags - BASE] & 1  # off while nobody waits (the host re-posts after every message)
    sent = 0
    while pair.lib.rpmsg_send(pair.remote, 1024, 1024, b"fill", 4) == 0:
        sent += 1
    assert sent == 16
    assert pair.lib.rpmsg_send(pair.remote, 1024, 1024, b"more", 4) == -20  # RPMSG_ERR_NO_BUFFER
    assert pair.lib.rpmsg_want_buffer_wakeup(pair.remote, 1) == 0  # none posted: sleep
    assert not pair.backing[used_flags - BASE] & 1
    while remote_bell.wait(0):
        pass
    pair.host.process()  # takes the 16 messages, re-posts their buffers
    assert remote_bell.wait(0)  # and kicks vring 0
    assert pair.lib.rpmsg_want_buffer_wakeup(pair.remote, 1) == 1
    assert pair.lib.rpmsg_send(pair.remote, 1024, 1024, b"more", 4) == 0
    assert pair.lib.rpmsg_want_buffer_wakeup(pair.remote, 0) == 0
    assert pair.backing[used_flags - BASE] & 1


# ---- the host's vring addresses and buffer shapes (issue 17): a standalone rig, the host driven by hand ----

RIG_BASE = 0x80000000
RIG_SIZE = 0x8000
RIG_POOL = RIG_BASE + 0x4000


@dataclass
class Rig:
    memory: bytearray
    fw: FirmwareRemote
    mem: RegionMemory
    rx: DriverQueue | None = None  # vring 0, the host's receive buffers
    tx: DriverQueue | None = None  # vring 1, the host's messages


def rig(vrings: list[tuple[int, int, int]]) -> Rig:
    memory = bytearray(RIG_SIZE)
    write_table(memory, vrings)
    mem = RegionMemory([MappedRegion("ram", RIG_BASE, RIG_SIZE, memory)])
    fw = FirmwareRemote(memory, RIG_BASE)
    r = Rig(memory, fw, mem)
    if fw.init() == RPMSG_OK:
        r.rx = DriverQueue(mem, VringLayout.legacy(vrings[0][0], vrings[0][2], vrings[0][1]), index=0)
        r.tx = DriverQueue(mem, VringLayout.legacy(vrings[1][0], vrings[1][2], vrings[1][1]), index=1)
    return r


GOOD = [(RIG_BASE + 0x1000, 16, 8), (RIG_BASE + 0x2000, 16, 8)]


@pytest.mark.parametrize(
    "vrings",
    [
        [(RIG_BASE + 0x10000, 16, 8), GOOD[1]],  # vring 0 past the region
        [GOOD[0], (0x1000, 16, 8)],  # vring 1 below it
        [(RIG_BASE + RIG_SIZE - 0x80, 16, 8), GOOD[1]],  # starts inside, ends outside
        [(RIG_BASE + 0x1000, 0, 8), GOOD[1]],  # align 0
        [(RIG_BASE + 0x1000, 24, 8), GOOD[1]],  # align not a power of two
        [(RIG_BASE + 0x1000, 16, 6), GOOD[1]],  # num not a power of two
        [(RIG_BASE + 0x1000, 16, 0), GOOD[1]],
        [(RIG_BASE + 0x1000, 16, 65536), GOOD[1]],
        [(RIG_BASE + 0x1004, 16, 8), GOOD[1]],  # descriptors not 16-byte aligned
        [(RIG_BASE + 0x1000, 0x80000000, 8), GOOD[1]],  # the used ring 2 GiB on
    ],
)
def test_vrings_the_region_cannot_hold_are_refused(vrings: list[tuple[int, int, int]]) -> None:
    """A vring the host placed outside the shared region (or with a bad num or align) is refused by
    rpmsg_remote_init, and send and poll keep saying so: no write through a null pointer (issue 17)."""
    r = rig(vrings)
    assert r.rx is None
    assert r.fw.init() == RPMSG_ERR_RING
    assert r.fw.poll() == RPMSG_ERR_RING
    assert r.fw.send(1024, 1, b"x") == RPMSG_ERR_RING
    assert r.fw.broken() == (True, True)


def test_the_used_ring_is_where_linux_puts_it() -> None:
    """Legacy layout: used at the next `align` boundary of the address (Linux vring_init, virtio/layout.py), not
    of the offset from da: with da 0x80001040 and align 0x1000 that is 0x80002000, not 0x80002040."""
    da = RIG_BASE + 0x1040
    r = rig([(da, 0x1000, 8), (RIG_BASE + 0x3000, 16, 8)])
    assert r.rx is not None
    layout = VringLayout.legacy(da, 8, 0x1000)
    assert layout.used == RIG_BASE + 0x2000
    r.rx.add([Buf(RIG_POOL, 512, write=True)], token=RIG_POOL)
    r.rx.publish()
    assert r.fw.send(1024, 77, b"hello") == RPMSG_OK
    assert r.mem.read(layout.used + 2, 2) == b"\x01\x00"
    assert [(u.token, u.len) for u in r.rx.get_used()] == [(RIG_POOL, 21)]


def test_a_message_in_a_chain_is_delivered_and_the_ring_moves_on() -> None:
    """A host message split over two readable descriptors: delivered whole (virtio 1.2 2.7.4: a device takes any
    arrangement), returned with used.len = the chain's bytes; it used to wedge rpmsg_poll at RPMSG_ERR_RING with
    the queue neither broken nor advanced."""
    r = rig(GOOD)
    assert r.tx is not None and r.rx is not None
    r.rx.add([Buf(RIG_POOL + 0x800, 512, write=True)], token=0)
    r.rx.publish()
    assert r.fw.create_ept(b"", 1024) == (RPMSG_OK, 1024)
    message = pack_header(5, 1024, 30) + bytes(range(30))
    r.mem.write(RIG_POOL, message[:20])
    r.mem.write(RIG_POOL + 0x100, message[20:])
    r.tx.add([Buf(RIG_POOL, 20), Buf(RIG_POOL + 0x100, 26)], token=1)
    r.tx.publish()
    assert r.fw.poll() == 1
    assert r.fw.received == [(5, 1024, bytes(range(30)))]
    assert [(u.token, u.len) for u in r.tx.get_used()] == [(1, 46)]
    assert r.fw.broken() == (False, False)
    assert r.fw.poll() == 0


def test_a_send_fills_a_chain_of_writable_descriptors() -> None:
    """A host receive buffer of two writable descriptors is filled across both; rpmsg_send used to return
    RPMSG_ERR_TOO_BIG for it forever."""
    r = rig(GOOD)
    assert r.rx is not None
    r.rx.add([Buf(RIG_POOL, 16, write=True), Buf(RIG_POOL + 0x100, 100, write=True)], token=7)
    r.rx.publish()
    assert r.fw.send(1024, 99, b"spans two") == RPMSG_OK
    assert [(u.token, u.len) for u in r.rx.get_used()] == [(7, 25)]
    assert r.mem.read(RIG_POOL, 16) == pack_header(1024, 99, 9)
    assert r.mem.read(RIG_POOL + 0x100, 9) == b"spans two"


def test_a_buffer_too_small_for_a_send_is_kept_for_the_next() -> None:
    """As the Python remote does: a host buffer too small for a send stays with the remote (RPMSG_ERR_TOO_BIG) and
    the next send that fits uses it. It used to go back with used.len 0, which Linux's rpmsg_recv_single() checks
    as len - sizeof(hdr) unsigned: it would have taken the buffer's stale bytes for a message."""
    r = rig(GOOD)
    assert r.rx is not None
    r.rx.add([Buf(RIG_POOL, 32, write=True)], token=3)
    r.rx.add([Buf(RIG_POOL + 0x200, 512, write=True)], token=4)
    r.rx.publish()
    assert r.fw.send(1024, 99, bytes(100)) == RPMSG_ERR_TOO_BIG
    assert r.rx.get_used() == []  # nothing returned
    assert r.fw.send(1024, 99, bytes(100)) == RPMSG_ERR_TOO_BIG  # still that buffer's turn
    assert r.fw.send(1024, 99, b"small") == RPMSG_OK
    assert r.fw.send(1024, 99, bytes(100)) == RPMSG_OK
    assert [(u.token, u.len) for u in r.rx.get_used()] == [(3, 21), (4, 116)]


def test_a_buffer_the_remote_cannot_write_is_returned_unused() -> None:
    r = rig(GOOD)
    assert r.rx is not None
    r.rx.add([Buf(RIG_POOL, 512)], token=3)  # device-readable: a host bug
    r.rx.publish()
    assert r.fw.send(1024, 99, b"x") == RPMSG_ERR_BAD_BUFFER
    assert [(u.token, u.len) for u in r.rx.get_used()] == [(3, 0)]
    assert r.fw.broken() == (False, False)


def test_a_chained_message_past_the_bounce_buffer_is_dropped_and_the_ring_goes_on() -> None:
    """A message split over descriptors is gathered into RPMSG_BOUNCE_SIZE (512) bytes: a larger chain is dropped
    (counted), returned with used.len = its bytes, and the next message is delivered."""
    r = rig(GOOD)
    assert r.tx is not None
    assert r.fw.create_ept(b"", 1024) == (RPMSG_OK, 1024)
    big = pack_header(5, 1024, 600) + bytes(600)
    r.mem.write(RIG_POOL, big)
    r.tx.add([Buf(RIG_POOL, 300), Buf(RIG_POOL + 300, len(big) - 300)], token=1)
    small = pack_header(6, 1024, 3) + b"abc"
    r.mem.write(RIG_POOL + 0x400, small)
    r.tx.add([Buf(RIG_POOL + 0x400, 10), Buf(RIG_POOL + 0x40A, 9)], token=2)
    r.tx.publish()
    assert r.fw.poll() == 2
    assert r.fw.dropped == 1
    assert r.fw.received == [(6, 1024, b"abc")]
    assert [(u.token, u.len) for u in r.tx.get_used()] == [(1, 616), (2, 19)]


def test_two_windows_onto_one_memory() -> None:
    """A core that sees the shared memory at another address than the host: the table's vring da are in the core's
    view (0x80000000), the host's descriptors hold the host's physical addresses (0x04001000 here: Linux in UML,
    docs/linux-conformance.md). With both windows the C remote echoes; with the device window alone every host
    descriptor is outside its memory and the ring is refused."""
    mod = load()
    ffi, lib = mod.ffi, mod.lib
    pa = 0x04001000
    prof = Profile(num=16, rx_count=16, tx_count=16, base=pa + 0x1000)
    backing = bytearray(SIZE)
    memory = RegionMemory([MappedRegion("ram", pa, SIZE, backing)])  # the host writes physical addresses
    rx, tx = prof.rx_layout, prof.tx_layout
    table = ResourceTable(
        entries=(
            Vdev(
                id=7,
                dfeatures=1,
                gfeatures=1,
                status=7,
                vrings=(
                    Vring(da=rx.desc - pa + BASE, align=prof.align, num=prof.num, notifyid=0),
                    Vring(da=tx.desc - pa + BASE, align=prof.align, num=prof.num, notifyid=1),
                ),
            ),
        )
    )
    data, spans = build_with_spans(table)
    memory.write(pa + TABLE, data)
    host_bell, remote_bell = EventfdDoorbell.pair()
    host = RpmsgDevice(HostCore(memory, rx, tx, pool_da=prof.pool_da, rx_count=16, tx_count=16), host_bell, wait="busy")
    host.start()
    kicks: list[int] = []

    @ffi.def_extern()
    def py_kick(ctx: Any, queue: int) -> None:
        kicks.append(queue)

    @ffi.def_extern()
    def py_echo(r: Any, ept: Any, data: Any, length: int, src: int) -> None:
        payload = ffi.buffer(ffi.cast("uint8_t *", data), length)[:]
        assert lib.rpmsg_send(r, ept.addr, src, payload, length) == 0

    try:
        host_ptr = ffi.from_buffer("uint8_t[]", backing, require_writable=True)
        windows = ffi.new("struct rp_region[2]", [(BASE, SIZE, host_ptr), (pa, SIZE, host_ptr)])
        vdev = ffi.cast("struct fw_rsc_vdev *", host_ptr + TABLE + spans[0].offset)
        remote = ffi.new("struct rpmsg_remote *")
        assert lib.rpmsg_remote_init_regions(remote, vdev, windows, 2, lib.py_kick, ffi.NULL) == RPMSG_OK
        ept = ffi.new("struct rpmsg_ept *")
        assert lib.rpmsg_create_ept(remote, ept, b"rpmsg-echo", 0xFFFFFFFF, lib.py_echo, ffi.NULL) == RPMSG_OK
        pair = Pair(host, lib, ffi, remote, backing, kicks, [])
        assert host.wait_for_channel("rpmsg-echo", timeout=1) == 1024
        ep = host.open("rpmsg-echo", timeout=1)
        ep.settimeout(0)
        for size in (0, 1, 100, 496):
            payload = bytes((size + i) & 0xFF for i in range(size))
            ep.send(payload)
            pair.pump()
            assert ep.recv() == payload
        assert remote.dropped == 0
        # The device window alone: the vrings are found, the host's first descriptor is not.
        alone = ffi.new("struct rpmsg_remote *")
        assert lib.rpmsg_remote_init_regions(alone, vdev, windows, 1, lib.py_kick, ffi.NULL) == RPMSG_OK
        ep.send(b"x")
        assert lib.rpmsg_poll(alone) == RPMSG_ERR_RING
        # No window at all: the vrings themselves are refused.
        assert lib.rpmsg_remote_init_regions(alone, vdev, windows, 0, lib.py_kick, ffi.NULL) == RPMSG_ERR_RING
    finally:
        host.close()
        remote_bell.close()
