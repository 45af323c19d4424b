"""atheris fuzz targets. Each takes bytes and must either succeed or raise the package's own error: any other
exception, a hang or (in the C engine, under the sanitizer build) an invalid access is a bug.

    .venv/bin/python fuzz/run.py resource_table -runs=100000      # one target, longer
    .venv/bin/python fuzz/run.py --list

Corpus seeds live in fuzz/seeds/<target>/ (built from the repository's own descriptions); a crash found
becomes a regression test in tests/."""

from __future__ import annotations

import atexit
import contextlib
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from remoteproc.errors import FirmwareError
from remoteproc.firmware import firmware_info
from resource_table import Dialect, ResourceTableError, build, check, parse
from rpmsg import Profile, RemoteProtocolError, RpmsgError, loopback_pair
from transports import bytearray_memory
from transports.serial_link import LinkCore
from transports.vhost_user_backend import VhostUserBackend
from transports.vhost_user_messages import VhostUserProtocolError
from virtio import Buf, DeviceQueue, DriverQueue, VirtioError, VringLayout


def resource_table(data: bytes) -> None:
    for dialect in Dialect:
        try:
            table = parse(data, dialect=dialect)
        except ResourceTableError:
            continue
        build(table)
        check(data, dialect=dialect)


_scratch: Path | None = None


def use_scratch(directory: Path) -> None:
    """Files of the targets (an ELF to open, a socket to bind) go into ``directory``: fuzz/run.py makes one
    for the run and removes it at the end, crash or not."""
    global _scratch
    _scratch = directory


def scratch() -> Path:
    """The targets' directory: the one :func:`use_scratch` gave, or one made on first use and removed at exit
    (the targets run in a test process too). Nothing is created on import."""
    global _scratch
    if _scratch is None:
        _scratch = Path(tempfile.mkdtemp(prefix="rproc-fuzz-"))
        atexit.register(shutil.rmtree, _scratch, True)
    return _scratch


def elf(data: bytes) -> None:
    path = scratch() / "fw.elf"
    path.write_bytes(data)
    with contextlib.suppress(FirmwareError):
        firmware_info(path)


def virtqueue(data: bytes) -> None:
    """The peer's bytes over a live ring; both sides operate on it."""
    mem = bytearray_memory(0x4000)
    layout = VringLayout.legacy(0, 16, 64)
    drv, dev = DriverQueue(mem, layout), DeviceQueue(mem, layout)
    drv.reset()
    drv.add_many([Buf(0x2000 + 64 * i, 64, write=bool(i & 1)) for i in range(8)], list(range(8)))
    drv.publish()
    mem.write(0, data[: layout.end])
    for op in (
        dev.peek,
        dev.skip,
        dev.pop_many,
        dev.publish,
        drv.peek_used,
        drv.skip_used,
        drv.get_used,
        lambda: dev.recv_copy_into(bytearray(1024), [0] * 16, 16),
        lambda: dev.send_copy(b"x" * 8, [8]),
    ):
        with contextlib.suppress(VirtioError):
            op()  # type: ignore[operator]


def rpmsg_messages(data: bytes) -> None:
    """The remote's bytes as messages in host buffers (first two bytes: the used length)."""
    host, remote = loopback_pair(Profile(num=8, rx_count=8, tx_count=8))
    try:
        core = remote.core
        chain = core.to_host.pop()  # type: ignore[union-attr]
        if chain is not None and len(data) >= 2:
            used = int.from_bytes(data[:2], "little") % 513
            core.memory.write(chain.descs[0].addr, data[2:514])
            core.to_host.push(chain.head, used)  # type: ignore[union-attr]
            core.to_host.publish()  # type: ignore[union-attr]
            try:
                host.process()
            except RemoteProtocolError as exc:
                raise AssertionError(f"a malformed message broke the device: {exc}") from None
    finally:
        host.close()
        remote.close()


def remote_sends(data: bytes) -> None:
    """The host's bytes over vring 0 (its descriptors and avail ring: the buffers the remote sends into), met by the
    remote's sends on the C path (eventfd doorbells: the endpoints' C methods): copies of any size (rpf_dev_put,
    straight into a one-descriptor buffer or through the stack for a chain), zero-copy buffers one and batched
    (rpf_dev_lend, rpf_dev_send_buffers), send_many. Each succeeds or raises rpmsg's own error. The last four
    bytes choose the sizes (0..1023: past the 496 a 512-byte buffer holds, and past the stack copy's 4,080 for
    none)."""
    p = Profile(num=8, rx_count=8, tx_count=8)
    host, remote = loopback_pair(p, eventfd=True)
    try:
        rx = p.rx_layout
        remote.core.memory.write(rx.desc, data[: rx.used - rx.desc])
        sizes = [int.from_bytes(data[-4 + i : len(data) - 3 + i] or b"\x10", "little") * 4 for i in range(4)]
        ep = remote.endpoint(peer=0x400)
        ep.settimeout(0)

        def zero_copy_one() -> None:
            buf = ep.get_buffer()
            n = min(sizes[1], buf.capacity)
            buf[:n] = bytes(n)
            ep.send_buffer(buf, sizes[1])

        def zero_copy_batch() -> None:
            bufs = ep.get_buffers(4)
            ep.send_buffers(bufs, [min(sizes[2], b.capacity) for b in bufs])

        for op in (
            lambda: ep.send(bytes(sizes[0])),
            zero_copy_one,
            zero_copy_batch,
            lambda: ep.send_many([bytes(sizes[3])] * 3),
        ):
            with contextlib.suppress(RpmsgError):
                op()
    finally:
        host.close()
        remote.close()


_vhost_backend: VhostUserBackend | None = None


def vhost_user(data: bytes) -> None:
    """A front-end's byte stream (no descriptors) into the back-end's request handling: every request is
    answered or refused, a malformed one ends the connection with VhostUserProtocolError, nothing else."""
    global _vhost_backend
    if _vhost_backend is None:
        _vhost_backend = VhostUserBackend(scratch() / "s", device_features=1, num_queues=2)
    with contextlib.suppress(VhostUserProtocolError):
        _vhost_backend.feed(data)


def serial_link(data: bytes) -> None:
    """Bytes from a UART into the link core: frames are decoded or counted bad; no exception of any kind. The
    nonces come from seed 1, so the seeds (fuzz/seeds/serial_link: a peer's handshake and DATA bound to them, then
    replays) reach the session's paths."""
    core = LinkCore(seed=1, window=4, max_payload=64)
    core.start(0.0)
    for i in range(0, len(data), 97):
        core.receive(data[i : i + 97], i / 1000)
        core.transmit(i / 1000)


_FW_BASE = 0x80000000
_FW_SIZE = 0x2000
_GUARD = b"\xa5" * 64
_FW_RESULTS = {0, -20, -21, -24, -25, -26}  # RPMSG_OK and the RPMSG_ERR_* rpmsg_send may return


def _fw_vring(raw: int, what: str) -> int:
    """A table value from 4 fuzz bytes: mostly one a host could write (in the region, a power of two), else any."""
    if raw >> 31:
        return raw
    if what == "da":
        return _FW_BASE + (raw & 0x1FF0) - (0x100 if raw & 0x10000 else 0)
    return 1 << (raw & (15 if what == "align" else 7))


def fwlib_ring(data: bytes) -> None:
    """A host's resource table and ring memory, anything at all, given to the firmware library's remote
    (firmware/lib/rpmsg_remote.c; tests/virtio/test_sanitizers.py runs this target on an ASan/UBSan build):
    rpmsg_remote_init sets up or refuses, rpmsg_poll and rpmsg_send return one of their codes, and nothing is
    read or written outside the region (ASan; guard bytes on both sides)."""
    from tests.firmware.remote_lib import load, write_table

    mod = load()
    ffi, lib = mod.ffi, mod.lib
    head = data[:26].ljust(26, b"\0")
    raw = [int.from_bytes(head[i : i + 4], "little") for i in range(0, 24, 4)]
    backing = bytearray(_GUARD + bytes(_FW_SIZE) + _GUARD)
    region = memoryview(backing)[len(_GUARD) : len(_GUARD) + _FW_SIZE]
    table = bytearray(0x100)
    vrings = [(_fw_vring(raw[3 * i], "da"), _fw_vring(raw[3 * i + 1], "align"), _fw_vring(raw[3 * i + 2], "num"))
              for i in range(2)]  # fmt: skip
    write_table(table, vrings, gfeatures=0, status=head[24])
    region[0x100 : 0x100 + len(data) - 26] = data[26 : 26 + _FW_SIZE - 0x100]  # rings and buffers: garbage
    region[: len(table)] = table
    host = ffi.from_buffer("uint8_t[]", backing, require_writable=True) + len(_GUARD)
    rp_region = ffi.new("struct rp_region *", {"da": _FW_BASE, "size": _FW_SIZE, "host": host})
    remote = ffi.new("struct rpmsg_remote *")
    vdev = ffi.cast("struct fw_rsc_vdev *", host + 20)
    rc = lib.rpmsg_remote_init(remote, vdev, rp_region, ffi.NULL, ffi.NULL)
    assert rc in (0, -23, -24), rc  # OK, NOT_READY, RING
    if rc == 0:
        ept, got = ffi.new("struct rpmsg_ept *"), []  # type: ignore[var-annotated]
        handle = ffi.new_handle(got)
        assert lib.rpmsg_create_ept(remote, ept, b"", 1024, lib.py_record, handle) == 0  # no name: no announce
        for size in (head[25], 0, 600):
            assert lib.rpmsg_poll(remote) >= -25
            assert lib.rpmsg_send(remote, 1024, 53, bytes(size), size) in _FW_RESULTS
    assert backing[: len(_GUARD)] == _GUARD and backing[-len(_GUARD) :] == _GUARD


def mirror(data: bytes) -> None:
    """A peer's messages (a length byte, then the message) into the firmware's C mirror (firmware/lib/mirror.c;
    ASan/UBSan build in tests/virtio/test_sanitizers.py) and its Python twin: both apply or refuse each alike,
    their windows stay equal, and their next flushes send the same messages."""
    from tests.firmware.mirror_lib import MIRROR_ERR_RANGE, CMirror
    from transports.errors import AddressError
    from transports.mirror import Mirror, MirrorError

    window = 0x400
    ranges, index = [(0x40, 0x80), (0x200, 0x100)], [0x42, 0x202, 0x244]
    py_mem, c_window = bytearray_memory(window), bytearray(window)
    py, c = Mirror(py_mem, ranges, index_fields=index, max_payload=64), CMirror(c_window, 0, ranges, index, 64)
    pos = 0
    while pos < len(data):
        n = data[pos]
        message, pos = data[pos + 1 : pos + 1 + n], pos + 1 + n
        got = c.apply(message)
        try:
            want = py.apply(message)
        except AddressError:
            assert got == MIRROR_ERR_RANGE, (message, got)
            continue
        except MirrorError:
            assert got < -1 and got != MIRROR_ERR_RANGE, (message, got)
            continue
        assert got == (-1 if want is None else want), (message, got, want)
        if data[pos - 1 : pos] == b"\xff":  # now and then this side writes too, and both flush
            py_mem.write(0x40, message[:0x80])
            c_window[0x40 : 0x40 + len(message[:0x80])] = message[:0x80]
            assert c.changes() == py.changes()
    assert py_mem.read(0, window) == bytes(c_window)
    assert c.changes() == py.changes()


TARGETS: dict[str, Callable[[bytes], None]] = {
    "resource_table": resource_table,
    "elf": elf,
    "virtqueue": virtqueue,
    "rpmsg_messages": rpmsg_messages,
    "remote_sends": remote_sends,
    "vhost_user": vhost_user,
    "serial_link": serial_link,
    "fwlib_ring": fwlib_ring,
    "mirror": mirror,
}
