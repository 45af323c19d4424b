# Stub of the compiled module rpmsg/csrc/endpoint*.c (the endpoint's send/recv as C methods; see endpoint.h).
from collections.abc import Callable, Iterable
from typing import Any

from rpmsg.core import TxBuffer

class Gate:
    open: bool
    block: int  # C int fields (T_INT)
    kicks_on: int
    attached: int
    remote: int
    waiters: int  # threads waiting on the device's condition
    owner: int | None  # the ident of the thread sleeping on the doorbell
    spin_ns: int  # wait mode spin: a receive spins this long in C before it sleeps (0: not spin)
    busy_ns: int  # wait mode busy: a receive spins in C in slices this long (0: not busy)
    def attach(
        self,
        *,
        api: int,
        rx: int,
        tx: int,
        pool: int,
        npool: int,
        pool_cap: int,
        tx_size: int,
        rx_size: int,
        rx_count: int,
        max_payload: int,
        out: int,
        lens: int,
        out_cap: int,
        kick_fd: int,
        rx_kick_fd: int,
        remote: bool,
        lock: Any,
        trace_enabled: Callable[[int], bool],
        trace_level: int,
        guard: object,
        guard_attr: str,
        guard_value: object,
        hooks: tuple[Callable[..., Any], ...],
    ) -> None: ...
    def detach(self) -> None: ...
    def set_wait(self, poll_fd: int, kick_fd: int, wake_fd: int, notify_all: Callable[[], Any]) -> None: ...
    def set_zero_copy(self, tx_view: memoryview, tx_lo: int, txbuf_type: type, owner: object = None) -> None: ...

class EndpointBase:
    _gate: Gate | None
    addr: int
    peer: int | None
    _queue: Any
    _queued_bytes: int
    closed: bool
    def _handed_deadline(self) -> float | None: ...
    def send(self, data: bytes | bytearray | memoryview) -> int: ...
    def sendto(self, data: bytes | bytearray | memoryview, dst: int) -> int: ...
    def recv(self, bufsize: int = ...) -> bytes: ...
    def recvfrom(self, bufsize: int = ...) -> tuple[bytes, int]: ...
    def recvfrom_many(self, max: int = 64, bufsize: int = 65536) -> list[tuple[bytes, int]]: ...
    def recv_many(self, max: int = 64, bufsize: int = 65536) -> list[bytes]: ...
    def send_many(self, messages: Iterable[bytes | bytearray | memoryview], dst: int | None = None) -> int: ...
    def get_buffer(self) -> TxBuffer: ...
    def send_buffer(self, buf: TxBuffer, length: int, dst: int | None = None) -> None: ...
    def send_buffer_reuse(self, buf: TxBuffer, length: int, dst: int | None = None) -> bool: ...
    def get_buffers(self, max: int = 64) -> list[TxBuffer]: ...
    def send_buffers(self, bufs: Iterable[TxBuffer], lengths: int | Iterable[int], dst: int | None = None) -> None: ...
    def send_buffers_reuse(
        self, bufs: Iterable[TxBuffer], lengths: int | Iterable[int], dst: int | None = None
    ) -> int: ...

class TxBufferBase:
    addr: int
    view: memoryview
    capacity: int
    token: object
    done: bool
    def _finish(self) -> None: ...
    def __setitem__(self, key: int | slice, value: Any) -> None: ...
    def __len__(self) -> int: ...
