"""The ``linux`` platform: the kernel's own remoteproc and rpmsg drivers do the work, rproc drives them.

- ``/sys/class/remoteproc/remoteprocN/{name,firmware,state}``: write the firmware's file name to ``firmware``
  (the file must be where the firmware loader looks: /lib/firmware, or the directory in
  ``/sys/module/firmware_class/parameters/path``), then ``start``/``stop`` to ``state``; read ``state`` for
  offline, running, crashed, attached, detached (Linux ``rproc_state_string``).
- rpmsg: ``/dev/rpmsg_ctrlN`` creates endpoints (``RPMSG_CREATE_EPT_IOCTL`` with ``struct rpmsg_endpoint_info
  {char name[32]; u32 src; u32 dst}``), each appearing as ``/dev/rpmsgM``: one ``write`` is one message, one
  ``read`` returns one message. :class:`RpmsgCharEndpoint` gives it the socket-like API of rproc's endpoints.

``root`` points everything at another tree, so parsing is unit-tested on a static fake sysfs (tests/remoteproc).
The behaviour is checked against Linux 6.1 and 6.12 in a UML guest (remoteproc/conformance/linux/in_guest.py,
the ``guest-linux-platform`` and ``guest-cli`` scenarios of ``rproc conformance --peer linux-remoteproc``).
"""

from __future__ import annotations

import contextlib
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
from remoteproc.lifecycle import State, StateError
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

    @property
    def label(self) -> str:
        return f"remoteproc{self.device.index} ({self.device.name})"

    def _write(self, attr: str, value: str, errors: dict[int, str] | None = None) -> None:
        """Write ``value`` to the sysfs ``attr``; an errno in ``errors`` becomes that message (what the kernel
        means by it for this attribute), any other a message naming the file and the error."""
        path = self.device.path / attr
        try:
            path.write_text(value)
        except PermissionError:
            raise RemoteprocError(f"{path}: permission denied: run as root") from None
        except OSError as exc:
            known = (errors or {}).get(exc.errno or 0)
            if known is not None:
                raise RemoteprocError(f"{self.label}: {known}") from None
            raise RemoteprocError(f"{path}: {exc.strerror} (the kernel's log, dmesg, says why)") from None

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

    @property
    def firmware(self) -> str:
        """The firmware file name the kernel will load at the next start (sysfs ``firmware``)."""
        return (self.device.path / "firmware").read_text().strip()

    def _must_be_offline(self, doing: str) -> None:
        state = self.state
        if state is not State.OFFLINE:
            raise StateError(f"{self.label} is {state.value}: {doing} only while offline (stop it first)")

    def set_firmware(self, name: str) -> None:
        """Name the firmware file the next start loads. Linux takes it only while offline (remoteproc_core.c
        rproc_set_firmware: EBUSY), and not empty or with a newline inside (EINVAL)."""
        if not name or "\n" in name or "/" in name:
            raise RemoteprocError(f"{self.label}: {name!r} is not a firmware file name (one line, no '/')")
        self._must_be_offline("the kernel changes the firmware")
        self._write(
            "firmware",
            name,
            {errno.EBUSY: "the kernel changes the firmware only while offline (stop it first)"},
        )

    def load(self, firmware: str | Path) -> str:
        """Copy the firmware where the kernel finds it and name it; returns the name written. Refused while the
        processor runs: the kernel would keep the old name (EBUSY) after the file was replaced."""
        src = Path(firmware)
        self._must_be_offline("the kernel changes the firmware")
        target = self.firmware_dir() / src.name
        try:
            with open_regular(src) as fin:  # a FIFO or a device: refused, not copied forever
                target.parent.mkdir(parents=True, exist_ok=True)
                with target.open("wb") as fout:
                    shutil.copyfileobj(fin, fout)
        except OSError as exc:
            raise RemoteprocError(f"{exc.filename or src}: {exc.strerror}") from None
        self.set_firmware(src.name)
        return src.name

    def start(self) -> None:
        """``start`` to sysfs ``state``. Refused unless offline: on a running processor Linux's rproc_boot only
        counts another user and returns success (remoteproc_core.c: ``atomic_inc_return(&rproc->power) > 1``),
        so the next stop would leave it running. A missing firmware file is ENOENT from request_firmware."""
        state = self.state
        if state not in (State.OFFLINE, State.DETACHED):
            raise StateError(f"{self.label} is already {state.value}: stop it first")
        name = self.firmware
        self._write(
            "state",
            "start",
            {
                errno.ENOENT: f"the kernel found no firmware file {name!r} (it looks in {self.firmware_dir()}, "
                "then /lib/firmware): copy it there, or give the file to `rproc start`",
            },
        )

    def stop(self) -> None:
        """``stop`` to sysfs ``state``; Linux refuses it (EINVAL) unless running, attached or crashed
        (remoteproc_core.c rproc_shutdown)."""
        state = self.state
        if state in (State.OFFLINE, State.DETACHED):
            raise StateError(f"{self.label} is {state.value}: nothing to stop")
        self._write("state", "stop", {errno.EINVAL: "the kernel refused to stop it (not running)"})

    def detach(self) -> None:
        self._write("state", "detach", {errno.EINVAL: "the kernel cannot detach it (its driver has no detach)"})

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
    """``/dev/rpmsg_ctrlN``: create endpoints (and, from Linux 5.18, channels the remote is told about).

    ``root``: the tree whose ``sys/class/rpmsg`` lists the devices the kernel makes (``/`` on a real system)."""

    def __init__(self, path: str | Path, root: str | Path = "/") -> None:
        self.path = Path(path)
        self.root = Path(root)
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

    def _char_devices(self) -> set[str]:
        base = self.root / "sys/class/rpmsg"
        return {p.name for p in base.glob("rpmsg[0-9]*")} if base.is_dir() else set()

    def create_endpoint(self, name: str, src: int = RPMSG_ADDR_ANY, dst: int = RPMSG_ADDR_ANY) -> Path:
        """RPMSG_CREATE_EPT_IOCTL: the kernel creates an rpmsg char device for it (rpmsg_char.c
        rpmsg_chrdev_eptdev_create; the endpoint itself is made when the device is opened). Returns its
        ``/dev/rpmsgN``: the ioctl does not say which, so it is the new entry of ``/sys/class/rpmsg`` with this
        ``name``. Destroy it with :meth:`RpmsgCharEndpoint.destroy`."""
        before = self._char_devices()
        self._ioctl(RPMSG_CREATE_EPT_IOCTL, self.endpoint_info(name, src, dst))
        base = self.root / "sys/class/rpmsg"
        for entry in sorted(self._char_devices() - before):
            with contextlib.suppress(OSError):
                if (base / entry / "name").read_text().strip() == name:
                    return self.root / "dev" / entry
        raise RemoteprocError(f"{self.path}: the kernel created no {base}/rpmsgN named {name!r}")

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
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> RpmsgCtrl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


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

                size = memoryview(data).nbytes  # its bytes, not len() (a view of 4-byte items)
                raise MessageTooLong(f"{size} bytes: {exc.strerror}", size=size, limit=-1) from None
            raise EndpointClosed(f"{self.path}: {exc.strerror}") from None

    def recv(self, bufsize: int = 512) -> bytes:
        """One message (at most ``bufsize`` bytes of it: rpmsg_char drops the rest). Once the endpoint is gone
        (the remote stopped, the channel removed) poll reports POLLERR and read EPIPE (rpmsg_char.c
        rpmsg_eptdev_poll, rpmsg_eptdev_read_iter): EndpointClosed."""
        self._ready(False)
        try:
            return os.read(self.fd, bufsize)
        except BlockingIOError:
            raise WouldBlock(f"{self.path}: would block") from None
        except OSError as exc:
            raise EndpointClosed(f"{self.path}: {exc.strerror} (the endpoint is gone: remote stopped?)") from None

    def destroy(self) -> None:
        """RPMSG_DESTROY_EPT_IOCTL on this device: the kernel removes an endpoint made by
        :meth:`RpmsgCtrl.create_endpoint`; a channel's own device (the one rpmsg_char binds to an announced
        channel) is refused with EINVAL (rpmsg_char.c rpmsg_eptdev_ioctl: "Don't allow to destroy a default
        endpoint"). Closes this object."""
        if self.closed:
            raise EndpointClosed(f"{self.path} is closed")
        try:
            fcntl.ioctl(self.fd, RPMSG_DESTROY_EPT_IOCTL)
        except OSError as exc:
            if exc.errno == errno.EINVAL:
                raise RemoteprocError(
                    f"{self.path}: the kernel destroys only endpoints made through rpmsg_ctrl, not a channel's "
                    "own device"
                ) from None
            raise RemoteprocError(f"{self.path}: destroying the endpoint: {exc.strerror}") from None
        self.close()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)

    def __enter__(self) -> RpmsgCharEndpoint:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
