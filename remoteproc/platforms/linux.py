"""The ``linux`` platform: the kernel's own remoteproc and rpmsg drivers do the work, rproc drives them.

- ``/sys/class/remoteproc/remoteprocN/{name,firmware,state}``: write the firmware's file name to ``firmware``
  (the file must be where the firmware loader looks: /lib/firmware, or the directory in
  ``/sys/module/firmware_class/parameters/path``), then ``start``/``stop`` to ``state``; read ``state`` for
  offline, running, crashed, attached, detached (Linux ``rproc_state_string``).
- rpmsg: ``/dev/rpmsg_ctrlN`` creates endpoints (``RPMSG_CREATE_EPT_IOCTL`` with ``struct rpmsg_endpoint_info
  {char name[32]; u32 src; u32 dst}``), each appearing as ``/dev/rpmsgM``: one ``write`` is one message, one
  ``read`` returns one message. :class:`RpmsgCharEndpoint` gives it the socket-like API of rproc's endpoints.

``root`` points everything at another tree, so the code path is testable on a fake sysfs (tests/remoteproc).
Checked against a real kernel by the Linux-conformance issue.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import shutil
import struct
import time
from dataclasses import dataclass
from pathlib import Path

from remoteproc.errors import RemoteprocError
from remoteproc.lifecycle import State
from resource_table.files import open_regular
from rpmsg.errors import EndpointClosed, RpmsgTimeout, WouldBlock

ENDPOINT_INFO = struct.Struct("<32sII")  # struct rpmsg_endpoint_info (include/uapi/linux/rpmsg.h)
RPMSG_ADDR_ANY = 0xFFFF_FFFF


def _iow(kind: int, nr: int, size: int) -> int:
    """Linux _IOW() on the common encoding (x86, Arm, RISC-V): dir 1 << 30, size << 16, type << 8, nr."""
    return (1 << 30) | (size << 16) | (kind << 8) | nr


def _io(kind: int, nr: int) -> int:
    return (kind << 8) | nr


RPMSG_CREATE_EPT_IOCTL = _iow(0xB5, 0x1, ENDPOINT_INFO.size)
RPMSG_DESTROY_EPT_IOCTL = _io(0xB5, 0x2)
RPMSG_CREATE_DEV_IOCTL = _iow(0xB5, 0x3, ENDPOINT_INFO.size)
RPMSG_RELEASE_DEV_IOCTL = _iow(0xB5, 0x4, ENDPOINT_INFO.size)

STATES = {s.value: s for s in State}


@dataclass(frozen=True)
class RemoteProcDevice:
    index: int
    name: str
    path: Path


class LinuxRemoteproc:
    """One ``/sys/class/remoteproc/remoteprocN`` of the running kernel (or of a tree under ``root``)."""

    def __init__(self, device: RemoteProcDevice, root: Path) -> None:
        self.device = device
        self.root = root

    @staticmethod
    def list(root: str | Path = "/") -> list[RemoteProcDevice]:
        base = Path(root) / "sys/class/remoteproc"
        if not base.is_dir():
            return []
        out = []
        for entry in sorted(base.iterdir()):
            if entry.name.startswith("remoteproc") and entry.name[10:].isdigit():
                name = (entry / "name").read_text().strip() if (entry / "name").exists() else ""
                out.append(RemoteProcDevice(int(entry.name[10:]), name, entry))
        return out

    @classmethod
    def find(cls, which: str | int, root: str | Path = "/") -> LinuxRemoteproc:
        """By index (0 -> remoteproc0) or by the ``name`` the driver gave it."""
        devices = cls.list(root)
        for d in devices:
            if which == d.index or which == d.name or which == f"remoteproc{d.index}":
                return cls(d, Path(root))
        known = ", ".join(f"remoteproc{d.index} ({d.name})" for d in devices) or "none"
        raise RemoteprocError(
            f"no remote processor {which!r} under {Path(root) / 'sys/class/remoteproc'} "
            f"(found: {known}; is the remoteproc driver of your SoC loaded?)"
        )

    def _write(self, attr: str, value: str) -> None:
        path = self.device.path / attr
        try:
            path.write_text(value)
        except PermissionError:
            raise RemoteprocError(f"{path}: permission denied: run as root") from None
        except OSError as exc:
            hint = {errno.EBUSY: " (already running?)", errno.EINVAL: " (not allowed in this state)"}.get(
                exc.errno or 0, ""
            )
            raise RemoteprocError(f"{path}: {exc.strerror}{hint}") from None

    @property
    def state(self) -> State:
        text = (self.device.path / "state").read_text().strip()
        if text not in STATES:
            raise RemoteprocError(f"{self.device.path / 'state'}: unknown state {text!r}")
        return STATES[text]

    def firmware_dir(self) -> Path:
        """Where the kernel's firmware loader looks first: the custom path if set, else /lib/firmware."""
        custom = self.root / "sys/module/firmware_class/parameters/path"
        if custom.exists() and custom.read_text().strip():
            return self.root / custom.read_text().strip().lstrip("/")
        return self.root / "lib/firmware"

    def load(self, firmware: str | Path) -> str:
        """Copy the firmware where the kernel finds it and name it; returns the name written."""
        src = Path(firmware)
        target = self.firmware_dir() / src.name
        try:
            with open_regular(src) as fin:  # a FIFO or a device: refused, not copied forever
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as fout:
                    shutil.copyfileobj(fin, fout)
        except OSError as exc:
            raise RemoteprocError(f"{exc.filename or src}: {exc.strerror}") from None
        self._write("firmware", src.name)
        return src.name

    def start(self) -> None:
        self._write("state", "start")

    def stop(self) -> None:
        self._write("state", "stop")

    def detach(self) -> None:
        self._write("state", "detach")

    def wait_state(self, wanted: State, timeout: float = 5.0) -> State:
        """Poll ``state`` until it is ``wanted`` or ``timeout`` passes; returns the last state read."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                state = self.state
            except RemoteprocError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.01)  # a state this tool does not know (a newer kernel's): look again
                continue
            if state is wanted or time.monotonic() > deadline:
                return state
            time.sleep(0.01)


class RpmsgCtrl:
    """``/dev/rpmsg_ctrlN``: create endpoints (and, from Linux 5.18, channels the remote is told about)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
        except OSError as exc:
            raise RemoteprocError(f"{self.path}: {exc.strerror} (is rpmsg_ctrl loaded, and are you root?)") from None

    @staticmethod
    def endpoint_info(name: str, src: int = RPMSG_ADDR_ANY, dst: int = RPMSG_ADDR_ANY) -> bytes:
        raw = name.encode()
        if len(raw) >= 32:
            raise RemoteprocError(f"rpmsg name {name!r} is longer than 31 bytes")
        return ENDPOINT_INFO.pack(raw, src, dst)

    def create_endpoint(self, name: str, src: int = RPMSG_ADDR_ANY, dst: int = RPMSG_ADDR_ANY) -> None:
        """RPMSG_CREATE_EPT_IOCTL: the kernel creates /dev/rpmsgN for it."""
        self._ioctl(RPMSG_CREATE_EPT_IOCTL, self.endpoint_info(name, src, dst))

    def create_channel(self, name: str, src: int = RPMSG_ADDR_ANY, dst: int = RPMSG_ADDR_ANY) -> None:
        """RPMSG_CREATE_DEV_IOCTL: the kernel announces the channel to the remote (name-service create)."""
        self._ioctl(RPMSG_CREATE_DEV_IOCTL, self.endpoint_info(name, src, dst))

    def release_channel(self, name: str, src: int = RPMSG_ADDR_ANY, dst: int = RPMSG_ADDR_ANY) -> None:
        self._ioctl(RPMSG_RELEASE_DEV_IOCTL, self.endpoint_info(name, src, dst))

    def _ioctl(self, request: int, arg: bytes) -> None:
        try:
            fcntl.ioctl(self.fd, request, arg)
        except OSError as exc:
            raise RemoteprocError(f"{self.path}: ioctl {request:#x}: {exc.strerror}") from None

    def close(self) -> None:
        os.close(self.fd)


class RpmsgCharEndpoint:
    """``/dev/rpmsgN`` with the socket-like API of :class:`rpmsg.Endpoint` (send, recv, timeouts, fileno).

    Keep it open between a write and the read of the answer: rpmsg_char discards queued messages on close."""

    def __init__(self, path: str | Path | None = None, *, fd: int | None = None) -> None:
        self.path = Path(path) if path is not None else Path(f"fd:{fd}")
        if fd is None:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CLOEXEC)
            except OSError as exc:
                raise RemoteprocError(f"{self.path}: {exc.strerror}") from None
        self.fd = fd
        self._timeout: float | None = None
        self.closed = False

    def settimeout(self, timeout: float | None) -> None:
        self._timeout = timeout
        os.set_blocking(self.fd, timeout != 0)  # a zero timeout makes send() non-blocking too

    def setblocking(self, flag: bool) -> None:
        self.settimeout(None if flag else 0.0)

    def fileno(self) -> int:
        return self.fd

    def _ready(self, for_write: bool) -> None:
        if self.closed:
            raise EndpointClosed(f"{self.path} is closed")
        r, w, _ = select.select([] if for_write else [self.fd], [self.fd] if for_write else [], [], self._timeout)
        if not (r or w):
            if self._timeout == 0:
                raise WouldBlock(f"{self.path}: would block")
            raise RpmsgTimeout(f"{self.path}: nothing within {self._timeout} s")

    def send(self, data: bytes | bytearray | memoryview) -> int:
        """Write one message. Not gated on poll(): rpmsg_char reports POLLOUT only when the rpmsg bus has a
        poll op (rpmsg_core.c rpmsg_poll returns 0 otherwise) and Linux 6.1's virtio_rpmsg_bus has none, so the
        device never looks writable (seen against the real kernel by tests/conformance/linux/
        test_remoteproc_linux.py). A blocking write waits in the kernel for a transmit buffer (virtio_rpmsg_bus:
        up to 15 s); non-blocking (a zero timeout), no buffer is EAGAIN (rpmsg_char: trysend's ENOMEM) and
        raises WouldBlock."""
        if self.closed:
            raise EndpointClosed(f"{self.path} is closed")
        try:
            return os.write(self.fd, data)
        except BlockingIOError:
            raise WouldBlock(f"{self.path}: no transmit buffer free") from None
        except OSError as exc:
            if exc.errno == errno.EMSGSIZE:
                from rpmsg.errors import MessageTooLong

                raise MessageTooLong(f"{len(data)} bytes: {exc.strerror}", size=len(data), limit=-1) from None
            raise EndpointClosed(f"{self.path}: {exc.strerror}") from None

    def recv(self, bufsize: int = 512) -> bytes:
        self._ready(False)
        return os.read(self.fd, bufsize)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def __enter__(self) -> RpmsgCharEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
