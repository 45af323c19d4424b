"""A vhost-user back-end (the virtio *device* side) on a unix socket: any front-end that speaks vhost-user —
User-Mode Linux's ``virtio_uml``, QEMU, cloud-hypervisor — gets an rproc device, and rproc gets that guest's
virtio drivers (the Linux kernel's own rpmsg stack, for one) as its peer.

Theory of operation
-------------------
The front-end connects to our listening socket and configures the device with requests (source: QEMU
docs/interop/vhost-user.rst; Linux ``arch/um/drivers/virtio_uml.c`` for what UML sends and in which order):

1. SET_OWNER, GET_FEATURES, GET/SET_PROTOCOL_FEATURES, SET_SLAVE_REQ_FD (the back-end -> front-end channel).
2. SET_FEATURES (the driver's choice), SET_MEM_TABLE (the guest memory: file descriptors to mmap, with the
   guest-physical and front-end-virtual address of each region), and per queue SET_VRING_NUM, SET_VRING_BASE,
   SET_VRING_ADDR (front-end *virtual* addresses: we translate them to guest-physical through the table),
   SET_VRING_CALL (where we signal used buffers: 8 bytes written per call), SET_VRING_KICK (an eventfd the
   front-end writes when it adds buffers), SET_VRING_ENABLE.
3. A device never sees the virtio status byte here: the driver's first kick is the start signal (Linux's
   rpmsg posts its receive buffers on queue 0, sets DRIVER_OK, then kicks queue 0).

A service thread answers requests at once (with REPLY_ACK negotiated the front-end blocks on every request
until we reply). :meth:`VhostUserBackend.wait_ready` hands the user a :class:`VhostUserSession` — the memory as
a :class:`~transports.memory.RegionMemory` in guest-physical addresses (the addresses descriptors carry), the
ring addresses, the negotiated features and a doorbell — once every queue is configured and the first kick came.
Any later reconfiguration (a ring disabled, new memory, a reset) or the front-end's disconnect makes that
session's doorbell raise :class:`~transports.doorbell.PeerLostError`; a later ``wait_ready`` returns the next
session. Requests we do not implement are refused (status 1 with REPLY_ACK) and logged, never fatal.

The started device (mapped guest memory, translated rings, the doorbell) is :mod:`transports.vhost_user_session`;
the messages' codec :mod:`transports.vhost_user_messages`; the ``vhost-user:`` URL :mod:`transports.vhost_user`.
"""

from __future__ import annotations

import array
import contextlib
import logging
import os
import select
import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from transports import vhost_user_messages as vu
from transports.doorbell import PeerLostError
from transports.vhost_user_session import (
    GuestMapping,
    VhostUserError,
    VhostUserSession,
    VringConfig,
    make_session,
    map_mem_table,
    used_idx,
)

log = logging.getLogger(__name__)

DEFAULT_PROTOCOL_FEATURES = (1 << vu.PROTOCOL_F_REPLY_ACK) | (1 << vu.PROTOCOL_F_SLAVE_REQ)
"""What we offer: acknowledged requests (errors get back to the front-end) and the back-end request channel
(UML's virtio_uml only allocates its interrupt with it: without it Linux's rpmsg probe fails with -EBUSY)."""


class _ByteStream:
    """A byte string that answers the two socket calls :meth:`VhostUserBackend._receive` makes (without
    descriptors): how :meth:`VhostUserBackend.feed` parses a stream of any size without a socket to fill."""

    def __init__(self, data: bytes) -> None:
        self._data = memoryview(data)
        self._pos = 0

    def recv(self, size: int) -> bytes:
        chunk = bytes(self._data[self._pos : self._pos + size])
        self._pos += len(chunk)
        return chunk

    def recvmsg(self, size: int, ancbufsize: int = 0) -> tuple[bytes, list[tuple[int, int, bytes]], int, None]:
        return self.recv(size), [], 0, None


class VhostUserBackend:
    """A vhost-user device listening on ``path``: one front-end at a time, served by a background thread.

    ``device_features`` are the virtio feature bits offered (device bits, VERSION_1, EVENT_IDX...; the
    vhost-user bit 30 is added here); ``config`` is the device configuration space GET_CONFIG reads.

    Longer than the house's 400 lines: one class, because every request handler reads and changes the same
    configuration under one lock (the started device and the codec are modules of their own)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        device_features: int,
        num_queues: int,
        config: bytes = b"",
        protocol_features: int = DEFAULT_PROTOCOL_FEATURES,
        on_request: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.device_features = device_features | (1 << vu.F_PROTOCOL_FEATURES)
        self.num_queues = num_queues
        self.config = bytearray(config)
        self.offered_protocol_features = protocol_features
        if config:
            self.offered_protocol_features |= 1 << vu.PROTOCOL_F_CONFIG
        self.on_request = on_request
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._listener = self._listen(self.path)
        self._conn: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._reset_state()
        self.disconnected: str | None = None
        self.requests: list[str] = []  # names of requests seen, in order (tests and `spy` output read this)
        self.closed = False

    # --- connection ------------------------------------------------------------------------------------------
    @staticmethod
    def _listen(path: Path) -> socket.socket:
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(path.lstat().st_mode):
                path.unlink()  # a previous back-end's socket: nobody can be listening on a name we now own
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.bind(str(path))
            os.chmod(path, 0o600)
            sock.listen(1)
        except OSError as exc:
            sock.close()
            raise VhostUserError(f"vhost-user socket {path}: {exc.strerror or exc}") from None
        return sock

    def _reset_state(self) -> None:
        self.features = 0  # negotiated (SET_FEATURES), without bit 30
        self.features_set = False
        self.ring_enable_negotiated = False
        self.protocol_features = 0
        self.vrings = [VringConfig() for _ in range(self.num_queues)]
        self._maps: list[GuestMapping] = []
        self._slave: socket.socket | None = None
        self._session: VhostUserSession | None = None

    def accept(self, timeout: float | None = None) -> None:
        """Wait for a front-end to connect, then serve it in the background."""
        if self._conn is not None:
            raise VhostUserError("a front-end is already connected")
        self._listener.settimeout(timeout)
        try:
            conn, _ = self._listener.accept()
        except TimeoutError:
            raise VhostUserError(f"no vhost-user front-end connected to {self.path} within {timeout} s") from None
        conn.setblocking(True)
        with self._lock:
            self._conn = conn
            self.disconnected = None
        self._thread = threading.Thread(target=self._serve, name=f"vhost-user {self.path.name}", daemon=True)
        self._thread.start()

    @property
    def connected(self) -> bool:
        return self._conn is not None and self.disconnected is None

    def close(self) -> None:
        """Disconnect the front-end (it sees the device go away), stop serving, remove the socket."""
        if self.closed:
            return
        self.closed = True
        os.write(self._stop_w, b"x")
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._listener.close()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
        os.close(self._stop_r)
        os.close(self._stop_w)

    def __enter__(self) -> VhostUserBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the started device ----------------------------------------------------------------------------------
    def _configured(self) -> bool:
        if not self._maps or not self.features_set:
            return False
        return all(v.num and v.addr is not None and v.kick >= 0 and v.call >= 0 and v.enabled for v in self.vrings)

    def wait_ready(self, timeout: float | None = None, *, start_queue: int = 0) -> VhostUserSession:
        """The next started device: every queue configured, then the driver's first kick on ``start_queue``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                if self.disconnected is not None:
                    raise PeerLostError(f"vhost-user front-end gone: {self.disconnected}")
                if self._session is None and self._configured():
                    kick = self.vrings[start_queue].kick
                    if select.select([kick], [], [], 0)[0]:
                        self._session = make_session(self._maps, self.vrings, self.features)
                        return self._session
                    wait = 0.002  # a kick is on an eventfd we do not own yet: look again shortly
                else:
                    wait = 0.05
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        raise VhostUserError(
                            f"vhost-user device not started within {timeout} s "
                            f"(requests so far: {', '.join(self.requests[-12:]) or 'none'})"
                        )
                    wait = min(wait, left)
                self._changed.wait(wait)

    def _invalidate(self, why: str) -> None:
        """The started device changed under its user: its doorbell reports the loss."""
        if self._session is not None:
            log.info("vhost-user: device stopped: %s", why)
            self._session.doorbell.mark_lost(why)
            self._session = None  # its mappings stay alive until its user closes it

    # --- serving ---------------------------------------------------------------------------------------------
    def _serve(self) -> None:
        conn = self._conn
        assert conn is not None
        why = "the front-end disconnected"
        try:
            while True:
                ready, _, _ = select.select([conn.fileno(), self._stop_r], [], [])
                if self._stop_r in ready:
                    why = "the back-end was closed"
                    break
                try:
                    msg = self._receive(conn)
                except vu.VhostUserProtocolError as exc:
                    why = f"protocol error: {exc}"
                    log.error("vhost-user %s: %s; disconnecting", self.path, exc)
                    break
                if msg is None:
                    break
                header, payload, fds = msg
                try:
                    out = self._handle(header, payload, fds)
                except vu.VhostUserProtocolError as exc:
                    why = f"protocol error: {exc}"
                    log.error("vhost-user %s: %s; disconnecting", self.path, exc)
                    break
                finally:
                    for fd in fds:
                        if fd >= 0:
                            with contextlib.suppress(OSError):
                                os.close(fd)
                if out:
                    conn.sendall(out)
        except OSError as exc:
            why = f"socket error: {exc.strerror or exc}"
        finally:
            with self._lock:
                self.disconnected = why
                self._invalidate(why)
                for v in self.vrings:
                    v.close_fds()
                if self._slave is not None:
                    self._slave.close()
                    self._slave = None
                self._maps = []  # a session that was handed out keeps its own references
                self._changed.notify_all()
            conn.close()

    def feed(self, data: bytes) -> list[bytes]:
        """Handle a front-end's byte stream without a connection (fuzzing, tests): the replies, in order.
        Raises :class:`~transports.vhost_user_messages.VhostUserProtocolError` where the stream is malformed."""
        with self._lock:
            self._reset_state()
        stream = _ByteStream(data)  # read as the socket is, from memory: nothing to wait for, whatever the size
        replies = []
        while (msg := self._receive(stream)) is not None:
            header, payload, fds = msg
            replies.append(self._handle(header, payload, fds))
        return replies

    def _receive(self, conn: socket.socket | _ByteStream) -> tuple[vu.Header, bytes, list[int]] | None:
        fds: list[int] = []
        data = b""
        while len(data) < vu.HEADER.size:
            chunk, ancdata, _flags, _addr = conn.recvmsg(
                vu.HEADER.size - len(data), socket.CMSG_SPACE(vu.MAX_FDS * array.array("i").itemsize)
            )
            for level, kind, cdata in ancdata:
                if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
                    got = array.array("i")
                    got.frombytes(cdata[: len(cdata) - len(cdata) % got.itemsize])
                    fds.extend(got)
            if not chunk:
                for fd in fds:
                    os.close(fd)
                return None
            data += chunk
        try:
            header = vu.parse_header(data)
            payload = b""
            while len(payload) < header.size:
                chunk = conn.recv(header.size - len(payload))
                if not chunk:
                    raise vu.VhostUserProtocolError(
                        f"{vu.request_name(header.request)}: connection closed inside a {header.size}-byte payload"
                    )
                payload += chunk
        except BaseException:
            for fd in fds:
                os.close(fd)
            raise
        return header, payload, fds

    def _handle(self, header: vu.Header, payload: bytes, fds: list[int]) -> bytes:
        name = vu.request_name(header.request)
        self.requests.append(name)
        if self.on_request is not None:
            self.on_request(name)
        log.debug(
            "vhost-user %s: %s flags=%#x size=%d fds=%d", self.path.name, name, header.flags, header.size, len(fds)
        )
        with self._lock:
            try:
                value = self._apply(header, payload, fds)
                status = 0
            except VhostUserError as exc:
                log.warning("vhost-user %s: refused %s: %s", self.path.name, name, exc)
                value, status = None, 1
            self._changed.notify_all()
        if header.request in vu.VALUE_REPLIES:
            if isinstance(value, bytes):
                return value
            return vu.reply_u64(header, 0)  # a refused query still gets an answer, or the front-end hangs
        if header.need_reply and self.protocol_features >> vu.PROTOCOL_F_REPLY_ACK & 1:
            return vu.reply_u64(header, status)
        return b""

    def _vring(self, header: vu.Header, index: int) -> VringConfig:
        if not 0 <= index < self.num_queues:
            raise VhostUserError(f"queue {index} does not exist (this device has {self.num_queues})")
        return self.vrings[index]

    def _take_fd(self, header: vu.Header, fds: list[int], value: int) -> int:
        """The descriptor of SET_VRING_KICK/CALL: ours now (removed from ``fds``), or -1 with the no-fd flag."""
        if value & vu.VRING_NOFD_MASK:
            return -1
        if len(fds) != 1:
            raise vu.VhostUserProtocolError(
                f"{vu.request_name(header.request)}: {len(fds)} descriptors attached, 1 expected",
                request=header.request,
            )
        fd = fds[0]
        fds[0] = -1
        return fd

    def _apply(self, header: vu.Header, payload: bytes, fds: list[int]) -> bytes | None:
        r = header.request
        if r == vu.Request.GET_FEATURES:
            return vu.reply_u64(header, self.device_features)
        if r == vu.Request.SET_FEATURES:
            wanted = vu.parse_u64(header, payload)
            extra = wanted & ~self.device_features
            if extra:
                raise VhostUserError(f"SET_FEATURES {wanted:#x} asks for bits {extra:#x} the device never offered")
            self._invalidate("the front-end set new features")
            self.features = wanted & ~(1 << vu.F_PROTOCOL_FEATURES)
            self.features_set = True
            # With bit 30 negotiated rings start disabled until SET_VRING_ENABLE 1 (the spec, "Starting").
            self.ring_enable_negotiated = bool(wanted >> vu.F_PROTOCOL_FEATURES & 1)
            return None
        if r == vu.Request.GET_PROTOCOL_FEATURES:
            return vu.reply_u64(header, self.offered_protocol_features)
        if r == vu.Request.SET_PROTOCOL_FEATURES:
            wanted = vu.parse_u64(header, payload)
            self.protocol_features = wanted & self.offered_protocol_features
            if wanted & ~self.offered_protocol_features:
                raise VhostUserError(f"protocol features {wanted:#x} include bits never offered")
            return None
        if r == vu.Request.SET_OWNER:
            return None
        if r == vu.Request.RESET_OWNER:
            self._invalidate("the front-end reset the device (RESET_OWNER)")
            for v in self.vrings:
                v.close_fds()
            self.vrings = [VringConfig() for _ in range(self.num_queues)]
            self.features_set = False
            return None
        if r == vu.Request.SET_MEM_TABLE:
            self._set_mem_table(header, payload, fds)
            return None
        if r == vu.Request.SET_VRING_NUM:
            index, num = vu.parse_vring_state(header, payload)
            v = self._vring(header, index)
            if num <= 0 or num & (num - 1) or num > 32768:
                raise VhostUserError(f"queue {index}: size {num} is not a power of two up to 32768")
            self._invalidate(f"queue {index} resized")
            v.num = num
            return None
        if r == vu.Request.SET_VRING_BASE:
            index, base = vu.parse_vring_state(header, payload)
            self._vring(header, index).base = base
            return None
        if r == vu.Request.GET_VRING_BASE:
            index, _ = vu.parse_vring_state(header, payload)
            v = self._vring(header, index)
            self._invalidate(f"queue {index} stopped (GET_VRING_BASE)")
            base = used_idx(self._maps, v)
            v.enabled = False
            v.close_fds()
            return vu.reply(header, vu.VRING_STATE.pack(index, base))
        if r == vu.Request.SET_VRING_ADDR:
            addr = vu.parse_vring_addr(header, payload)
            v = self._vring(header, addr.index)
            self._invalidate(f"queue {addr.index} moved")
            v.addr = addr
            return None
        if r in (vu.Request.SET_VRING_KICK, vu.Request.SET_VRING_CALL, vu.Request.SET_VRING_ERR):
            value = vu.parse_u64(header, payload)
            index = value & vu.VRING_INDEX_MASK
            v = self._vring(header, index)
            fd = self._take_fd(header, fds, value)
            if r == vu.Request.SET_VRING_ERR:
                if fd >= 0:
                    os.close(fd)  # we report a broken ring as a lost device instead
                return None
            if fd < 0:
                raise VhostUserError(f"queue {index}: polling mode (no descriptor) is not supported")
            self._invalidate(f"queue {index}: new {'kick' if r == vu.Request.SET_VRING_KICK else 'call'} descriptor")
            if r == vu.Request.SET_VRING_KICK:
                if v.kick >= 0:
                    os.close(v.kick)
                v.kick = fd
                if not self.ring_enable_negotiated:
                    v.enabled = True  # without protocol features a ring starts enabled (the spec, "Starting")
            else:
                if v.call >= 0:
                    os.close(v.call)
                v.call = fd
            return None
        if r == vu.Request.SET_VRING_ENABLE:
            index, enable = vu.parse_vring_state(header, payload)
            v = self._vring(header, index)
            if not enable:
                self._invalidate(f"queue {index} disabled by the front-end")
            v.enabled = bool(enable)
            return None
        if r == vu.Request.SET_SLAVE_REQ_FD:
            if len(fds) != 1:
                raise vu.VhostUserProtocolError(f"SET_SLAVE_REQ_FD: {len(fds)} descriptors attached, 1 expected")
            if self._slave is not None:
                self._slave.close()
            self._slave = socket.socket(fileno=fds[0])
            fds[0] = -1
            return None
        if r == vu.Request.GET_CONFIG:
            offset, size, _ = vu.parse_config(header, payload)
            data = bytes(self.config[offset : offset + size]).ljust(size, b"\0")
            return vu.config_reply(header, offset, data)
        if r == vu.Request.SET_CONFIG:
            offset, size, data = vu.parse_config(header, payload)
            if offset + size > len(self.config):
                raise VhostUserError(f"SET_CONFIG {size} bytes at {offset} beyond the {len(self.config)}-byte space")
            self.config[offset : offset + size] = data
            return None
        if r == vu.Request.GET_QUEUE_NUM:
            return vu.reply_u64(header, self.num_queues)
        raise VhostUserError(f"{vu.request_name(r)} is not supported by this back-end")

    def _set_mem_table(self, header: vu.Header, payload: bytes, fds: list[int]) -> None:
        regions = vu.parse_mem_table(header, payload)
        if len(fds) != len(regions):
            raise vu.VhostUserProtocolError(
                f"SET_MEM_TABLE: {len(regions)} regions but {len(fds)} descriptors", request=header.request
            )
        self._invalidate("the front-end replaced the memory table")
        self._maps = map_mem_table(regions, fds)
        log.info("vhost-user %s: memory %s", self.path.name, "; ".join(repr(r) for r in regions))
