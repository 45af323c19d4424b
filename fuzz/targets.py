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
from rpmsg import Profile, RemoteProtocolError, loopback_pair
from transports import bytearray_memory
from transports.serial_link import LinkCore
from transports.vhost_user import VhostUserBackend
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
        dev.pop_many,
        dev.publish,
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
    """Bytes from a UART into the link core: frames are decoded or counted bad; no exception of any kind."""
    core = LinkCore(session=1, window=4, max_payload=64)
    core.start(0.0)
    for i in range(0, len(data), 97):
        core.receive(data[i : i + 97], i / 1000)
        core.transmit(i / 1000)


TARGETS: dict[str, Callable[[bytes], None]] = {
    "resource_table": resource_table,
    "elf": elf,
    "virtqueue": virtqueue,
    "rpmsg_messages": rpmsg_messages,
    "vhost_user": vhost_user,
    "serial_link": serial_link,
}
